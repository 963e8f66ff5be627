"""Node pools: nodes with allocatable capacity and a price, request-based scheduling, and a cluster autoscaler.

Vectorised over node slots (all pools' `max_nodes` slots in one set of arrays). Scheduling is by requests,
as kube-scheduler's resource fit: a pod fits a node when the node's allocatable minus the requests of the pods
already bound to it covers the pod's requests. Pending pods of one step are placed together by a *fluid
first-fit*: the pods' cumulative requests are matched against the nodes' cumulative free capacity
(`searchsorted`), so no Python loop over pods; a pod can slightly overcommit the node at a boundary, which only
matters for node-level accounting, never for the pool's capacity.

The autoscaler follows cluster-autoscaler's defaults (https://github.com/kubernetes/autoscaler FAQ):
scale up when pods are Pending for lack of capacity (new nodes Ready after `provisioning_delay_s`); scale down
a node whose requested utilisation is below 0.5 (--scale-down-utilization-threshold) and whose pods fit on the
pool's other nodes, once it has been unneeded for 10 min (--scale-down-unneeded-time), not within 10 min of a
scale-up in that pool (--scale-down-delay-after-add), never below `min_nodes`.

A pool has a fixed number of node slots (its spec's `max_nodes`); the autoscaler's bounds (`min_nodes`,
`max_nodes`) start as the spec's and can be changed while the cluster runs (`set_bounds`, what the Cluster API
autoscaler annotations of a MachineDeployment do). New bounds are enforced at the next step (`enforce_bounds`):
a pool below its new minimum gets the missing nodes at once (as cluster-autoscaler with
--enforce-node-group-min-size), a pool above its new maximum loses the excess nodes.
"""

from __future__ import annotations

import numpy as np

from aiops.sim.spec import ClusterSpec

CPU_ALLOCATABLE = 0.94  # share of node CPU left after kube-reserved/system-reserved (EKS-like)
MEM_ALLOCATABLE = 0.88  # share of node memory left after reservations and the eviction threshold
UNNEEDED_S = 600.0
DELAY_AFTER_ADD_S = 600.0
UTIL_THRESHOLD = 0.5


class NodeBank:
    """All nodes of all pools as arrays; index j is a node slot."""

    def __init__(self, spec: ClusterSpec, rng: np.random.Generator):
        types = {t.name: t for t in spec.instance_types}
        self.pools = spec.node_pools
        self.pool_index = {p.name: i for i, p in enumerate(self.pools)}
        sizes = [p.max_nodes for p in self.pools]
        n = sum(sizes)
        self.pool = np.repeat(np.arange(len(self.pools)), sizes)
        self._in_pool = [self.pool == p for p in range(len(self.pools))]
        it = [types[p.instance_type] for p in self.pools]
        self.cpu_cap = np.repeat([t.cpu_cores for t in it], sizes).astype(float)
        self.mem_cap = np.repeat([t.memory_bytes for t in it], sizes).astype(float)
        self.price = np.repeat([t.price_per_hour for t in it], sizes).astype(float)
        self.type_name = [t.name for t in it]
        self.cpu_alloc = self.cpu_cap * CPU_ALLOCATABLE
        self.mem_alloc = self.mem_cap * MEM_ALLOCATABLE
        self.alive = np.zeros(n, bool)
        self.ready_at = np.full(n, np.inf)
        self.created = np.zeros(n)
        self.cpu_used = np.zeros(n)
        self.mem_used = np.zeros(n)
        self.disk_pressure = np.zeros(n, bool)
        self.unneeded_since = np.full(n, np.inf)
        self.last_add = np.full(len(self.pools), -np.inf)
        self.addr = np.zeros(n, np.int64)
        self._rng = rng
        self._next_addr = int(rng.integers(0, 65536))
        self.delay = np.array([p.provisioning_delay_s for p in self.pools], float)
        self.slots = np.array(sizes)  # fixed: the spec's max_nodes
        # the autoscaler's bounds, within the slots; `set_bounds` changes them
        self.min_nodes = np.array([p.min_nodes for p in self.pools])
        self.max_nodes = np.array([p.max_nodes for p in self.pools])
        self.bounds_changed = False
        # bumped whenever node capacity or usage changes: a scale-down check that found no candidate need not
        # run again until something changed or a provisioning node becomes Ready
        self.version = 0
        self._quiet: tuple[int, float] | None = None
        self.first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        for i, p in enumerate(self.pools):
            self._add(i, p.initial_nodes, now=0.0, ready_at=0.0)

    # --- names and bookkeeping ---------------------------------------------------------------------------
    def name(self, j: int) -> str:
        """EKS-style private DNS name of node slot j, e.g. ip-10-0-37-201.ec2.internal."""
        a = int(self.addr[j])
        return f"ip-10-0-{a // 256}-{a % 256}.ec2.internal"

    def _add(self, p: int, k: int, *, now: float, ready_at: float) -> np.ndarray:
        lo, hi = self.first[p], self.first[p] + self.slots[p]
        free = np.flatnonzero(~self.alive[lo:hi])[:k] + lo
        self.alive[free] = True
        self.ready_at[free] = ready_at
        self.created[free] = now
        self.cpu_used[free] = 0.0
        self.mem_used[free] = 0.0
        self.disk_pressure[free] = False
        self.unneeded_since[free] = np.inf
        self.version += 1
        for j in free:  # a few nodes at a time: unique addresses (odd stride is a bijection mod 2^16)
            self.addr[j] = self._next_addr % 65536
            self._next_addr += 40503
        return free

    def count(self) -> np.ndarray:
        """Alive nodes per pool (provisioning ones included: they are billed from launch)."""
        return np.bincount(self.pool[self.alive], minlength=len(self.pools))

    def cost_per_hour(self) -> float:
        return float(self.price[self.alive].sum())

    def schedulable(self, now: float) -> np.ndarray:
        # DiskPressure adds the node.kubernetes.io/disk-pressure:NoSchedule taint
        return self.alive & (self.ready_at <= now) & ~self.disk_pressure

    # --- scheduling -------------------------------------------------------------------------------------
    def schedule(self, pool: np.ndarray, cpu: np.ndarray, mem: np.ndarray, now: float) -> np.ndarray:
        """Bind pending pods (their pool, cpu and memory requests, in priority order) to nodes; -1 = no fit."""
        out = np.full(len(pool), -1, np.int64)
        ok = self.schedulable(now)
        first = pool[0] if len(pool) else 0
        for p in (first,) if (pool == first).all() else np.unique(pool):
            pods = np.flatnonzero(pool == p)
            nodes = np.flatnonzero(ok & self._in_pool[p])
            if len(nodes) == 0:
                continue
            free_c = np.maximum(self.cpu_alloc[nodes] - self.cpu_used[nodes], 0.0)
            free_m = np.maximum(self.mem_alloc[nodes] - self.mem_used[nodes], 0.0)
            # least-allocated first (kube-scheduler's default scoring spreads load)
            order = np.argsort(-(free_c / self.cpu_alloc[nodes]), kind="stable")
            nodes, free_c, free_m = nodes[order], free_c[order], free_m[order]
            cc, cm = np.cumsum(cpu[pods]), np.cumsum(mem[pods])
            jc = np.searchsorted(np.cumsum(free_c), cc - 1e-9)
            jm = np.searchsorted(np.cumsum(free_m), cm - 1e-6)
            j = np.maximum(jc, jm)
            fit = j < len(nodes)
            # once one pod does not fit, the later ones of this pool wait too (queue order)
            fit = np.logical_and.accumulate(fit)
            out[pods[fit]] = nodes[j[fit]]
        placed = out >= 0
        if placed.any():
            self.version += 1
            np.add.at(self.cpu_used, out[placed], cpu[placed])
            np.add.at(self.mem_used, out[placed], mem[placed])
        return out

    def release(self, node: np.ndarray, cpu: np.ndarray, mem: np.ndarray) -> None:
        """Pods bound to `node` went away: free their requests."""
        m = node >= 0
        self.version += 1
        np.subtract.at(self.cpu_used, node[m], cpu[m])
        np.subtract.at(self.mem_used, node[m], mem[m])

    # --- cluster autoscaler -----------------------------------------------------------------------------
    def scale_up(self, pending_cpu: np.ndarray, pending_mem: np.ndarray, now: float) -> list[tuple[int, int, int]]:
        """Add nodes for pods that do not fit; returns (pool, old count, new count) per pool that grew."""
        out = []
        coming = self.alive & (self.ready_at > now)
        for p in np.flatnonzero((pending_cpu > 0) | (pending_mem > 0)):
            in_p = self.pool == p
            c_cpu = (self.cpu_alloc * (coming & in_p)).sum()
            c_mem = (self.mem_alloc * (coming & in_p)).sum()
            j0 = self.first[p]
            need = max(np.ceil((pending_cpu[p] - c_cpu) / self.cpu_alloc[j0]),
                       np.ceil((pending_mem[p] - c_mem) / self.mem_alloc[j0]), 0)
            have = int((self.alive & in_p).sum())
            k = int(min(need, self.max_nodes[p] - have))
            if k > 0:
                self._add(int(p), k, now=now, ready_at=now + self.delay[p])
                self.last_add[p] = now
                out.append((int(p), have, have + k))
        return out

    def scale_down(self, now: float) -> np.ndarray:
        """Node slots to remove now (at most one per pool per check, as the autoscaler drains one at a time)."""
        if self._quiet is not None and self._quiet[0] == self.version and now < self._quiet[1]:
            return np.zeros(0, np.int64)  # nothing changed since the last check, which removed nothing
        ready = self.alive & (self.ready_at <= now)
        util = np.maximum(self.cpu_used / self.cpu_alloc, self.mem_used / self.mem_alloc)
        cand = ready & (util < UTIL_THRESHOLD)
        remove: list[int] = []
        if not cand.any():
            self.unneeded_since[:] = np.inf
            self._quiet = (self.version, self._next_change(now, ready))
            return np.asarray(remove, np.int64)
        pools = np.unique(self.pool[cand])
        self.unneeded_since[~np.isin(self.pool, pools)] = np.inf  # pools without a candidate (as below)
        for p in pools.tolist():
            in_p = self._in_pool[p]
            c = np.flatnonzero(cand & in_p)
            n_alive = int((self.alive & in_p).sum())
            if len(c) == 0 or n_alive <= self.min_nodes[p] or now - self.last_add[p] < DELAY_AFTER_ADD_S:
                self.unneeded_since[in_p] = np.inf
                continue
            j = c[np.argmin(util[c])]
            others = ready & in_p & ~self.disk_pressure
            others[j] = False
            free_c = np.maximum(self.cpu_alloc[others] - self.cpu_used[others], 0).sum()
            free_m = np.maximum(self.mem_alloc[others] - self.mem_used[others], 0).sum()
            fits = self.cpu_used[j] <= free_c and self.mem_used[j] <= free_m
            keep = self.unneeded_since[j]
            self.unneeded_since[in_p] = np.inf
            if not fits:
                continue
            self.unneeded_since[j] = min(keep, now)
            if now - self.unneeded_since[j] >= UNNEEDED_S:
                remove.append(j)
        # with the same nodes and usage, later checks repeat this one (timers already set) until a provisioning
        # node becomes Ready, a pool's delay after a scale-up ends or an unneeded timer expires
        self._quiet = None if remove else (self.version, self._next_change(now, ready))
        return np.asarray(remove, np.int64)

    def _next_change(self, now: float, ready: np.ndarray) -> float:
        times = [self.ready_at[self.alive & ~ready], self.last_add + DELAY_AFTER_ADD_S,
                 self.unneeded_since + UNNEEDED_S]
        later = np.concatenate(times)
        later = later[later > now]
        return float(later.min()) if later.size else np.inf

    def set_bounds(self, p: int, min_nodes: int, max_nodes: int) -> None:
        """New autoscaler bounds for pool index `p`; `enforce_bounds` brings the pool inside them."""
        if not 0 <= min_nodes <= max_nodes <= self.slots[p]:
            raise ValueError(f"node pool {self.pools[p].name!r}: need 0 <= min_nodes <= max_nodes <= "
                             f"{int(self.slots[p])} (its slots); got min_nodes={min_nodes}, max_nodes={max_nodes}")
        self.min_nodes[p], self.max_nodes[p] = min_nodes, max_nodes
        self.bounds_changed = True
        self.version += 1  # a scale-down check that found nothing may find something under a lower minimum

    def enforce_bounds(self, now: float) -> tuple[list[tuple[int, int, int]], np.ndarray]:
        """Bring every pool inside its bounds: add the nodes missing up to `min_nodes` (Ready after the pool's
        provisioning delay) and choose the nodes above `max_nodes` to remove, provisioning ones first, then the
        least utilised. Returns (pool, old count, new count) per pool grown and the node slots to remove (the
        caller drains their pods, then calls `remove`)."""
        self.bounds_changed = False
        grown: list[tuple[int, int, int]] = []
        remove: list[np.ndarray] = []
        util = np.maximum(self.cpu_used / self.cpu_alloc, self.mem_used / self.mem_alloc)
        for p, have in enumerate(self.count().tolist()):
            lo, hi = int(self.min_nodes[p]), int(self.max_nodes[p])
            if have < lo:
                self._add(p, lo - have, now=now, ready_at=now + self.delay[p])
                self.last_add[p] = now
                grown.append((p, have, lo))
            elif have > hi:
                nodes = np.flatnonzero(self.alive & self._in_pool[p])
                ready = self.ready_at[nodes] <= now
                remove.append(nodes[np.lexsort((util[nodes], ready))][: have - hi])
        return grown, (np.concatenate(remove) if remove else np.zeros(0, np.int64))

    def remove(self, j: np.ndarray) -> None:
        self.version += 1
        self.alive[j] = False
        self.ready_at[j] = np.inf
        self.cpu_used[j] = 0.0
        self.mem_used[j] = 0.0
        self.disk_pressure[j] = False
        self.unneeded_since[j] = np.inf
