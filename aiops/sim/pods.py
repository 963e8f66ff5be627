"""Pod slots and the kubelet's side of a pod's life: creation, deletion, readiness, container failures.

Pods live in W x S slot arrays (`p_*`, one row per workload). A pod's container goes through, at most once per
container instance: waiting (Pending, or CrashLoopBackOff after a failure) -> started (running, not yet Ready,
uses its idle CPU) -> Ready (serves its share of the traffic). The engine classifies every pod at each step's
instant `t * step_s`, after the controllers acted; `_refresh` keeps the per-workload counts of that
classification (`n_ready`, `n_started`) and the sums of requests and limits.

Per-pod counters (CPU seconds, CFS periods) belong to a container instance, as cAdvisor's do: a restarted
container starts again from 0. They are kept as baselines against per-workload cumulative integrals (every
started or Ready container of a workload uses the same CPU), set by `DeriveMixin._derive` at the step each
container started and became Ready.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np

from aiops.sim.state import SimEvent

N_COUNTERS = 3  # per-container counters: CPU seconds, CFS periods, CFS throttled periods
RES_CPU_REQ, RES_CPU_LIM, RES_MEM_REQ, RES_MEM_LIM = range(4)  # p_res[..., k]; limits 0 when unset

# slot field -> (dtype, fill, trailing shape)
_SLOTS = {
    "alive": (bool, False, ()), "tpl": (np.int64, 0, ()), "node": (np.int64, -1, ()), "created": (float, 0.0, ()),
    "ready_at": (float, np.inf, ()), "started": (float, 0.0, ()), "restarts": (np.int64, 0, ()),
    "backoff": (np.int64, 0, ()), "reason": (np.int8, 0, ()), "waiting": (np.int8, 0, ()),
    "pod_id": (np.int64, 0, ()), "res": (float, 0.0, (4,)), "mem_lim": (float, np.inf, ()),
    "leaked": (float, 0.0, ()), "crash_u": (float, 1.0, ()), "fs_sent": (bool, False, ()),
    # counter baselines: at the container's start (started class) and at its first Ready step (ready class)
    "b_start": (float, 0.0, (N_COUNTERS,)), "b_ready": (float, 0.0, (N_COUNTERS,)),
}


class PodsMixin:
    """Pod slots, names, events, and the pod lifecycle (create, delete, recount, container failures)."""

    # --- slots --------------------------------------------------------------------------------------------
    def _slots_alloc(self, w: int, s: int) -> None:
        """(Re)allocate the W x S pod-slot arrays (`p_*`), keeping existing pods."""
        old = self.S
        for f, (dt, fill, extra) in _SLOTS.items():
            a = np.full((w, s, *extra), fill, dtype=dt)
            if old:
                a[:, :old] = getattr(self, "p_" + f)
            setattr(self, "p_" + f, a)
        # views of the stacked resources (scheduler and node bookkeeping index them per pod)
        self.p_cpu_req = self.p_res[..., RES_CPU_REQ]
        self.p_mem_req = self.p_res[..., RES_MEM_REQ]
        self.S = s

    def _ensure_slots(self, s: int) -> None:
        if s > self.S:
            self._slots_alloc(len(self.spec.workloads), max(s, 2 * self.S))
            self._stale = True

    # --- names and events ---------------------------------------------------------------------------------
    def rs_name(self, i: int, tpl: int) -> str:
        """ReplicaSet name `<deployment>-<pod-template-hash>` of template `tpl` of workload i."""
        got = self._rs_cache.get((i, tpl))
        if got is None:
            w = self.spec.workloads[i]
            image, res = self._templates[i][tpl]
            got = f"{w.name}-{_hash10(w.namespace, w.name, w.container, image, res.model_dump_json())}"
            self._rs_cache[(i, tpl)] = got
        return got

    def pod_name(self, i: int, s: int) -> str:
        return f"{self.rs_name(i, int(self.p_tpl[i, s]))}-{_suffix(int(self.p_pod_id[i, s]))}"

    def _event(self, ns: str, kind: str, name: str, reason: str, message: str, now: float, warn: bool = False) -> None:
        if self._quiet:
            return
        if now != self._event_now:  # many events share an instant
            self._event_now, self._event_time = now, self.start + timedelta(seconds=now)
        self.events.append(SimEvent(self._event_time, ns, kind, name, reason, message, "Warning" if warn else "Normal"))

    # --- create, delete, recount --------------------------------------------------------------------------
    def _create(self, k: np.ndarray, now: float) -> None:
        """Create k[w] new pods of each workload's current template (Pending until scheduled)."""
        rows = np.flatnonzero(k)
        self._ensure_slots(int((self.p_alive[rows].sum(axis=1) + k[rows]).max()))
        free = ~self.p_alive[rows]
        sub, si = np.nonzero(free & (np.cumsum(free, axis=1) <= k[rows, None]))
        wi = rows[sub]
        self.p_alive[wi, si] = True
        self.p_tpl[wi, si] = self.cur_tpl[wi]
        self.p_node[wi, si] = -1
        self.p_created[wi, si] = now
        self.p_ready_at[wi, si] = np.inf
        self.p_started[wi, si] = now
        self.p_restarts[wi, si] = 0
        self.p_backoff[wi, si] = 0
        self.p_reason[wi, si] = 0
        self.p_waiting[wi, si] = 1
        self.p_leaked[wi, si] = 0.0
        self.p_fs_sent[wi, si] = False
        self.p_pod_id[wi, si] = self._rng_pods.integers(0, 27**5, size=len(wi))
        self.p_crash_u[wi, si] = self._rng_pods.random(len(wi))
        self.p_res[wi, si] = self._tpl_res[wi]
        self.p_mem_lim[wi, si] = self._tpl_mem_lim[wi]
        self._stale = True
        self._n_pending += len(wi)  # the scheduler binds new pods in the step they are created
        if not self._quiet:
            for w in rows.tolist():
                ws, t = self.spec.workloads[w], int(self.cur_tpl[w])
                n = int((self.p_alive[w] & (self.p_tpl[w] == t)).sum())
                self._event(ws.namespace, "Deployment", ws.name, "ScalingReplicaSet",
                            f"Scaled up replica set {self.rs_name(w, t)} to {n}", now)

    def _delete(self, kill: np.ndarray, now: float, reason: str, message: str = "") -> None:
        """Pods in `kill` are deleted (scale-down, eviction, drain): free their node resources."""
        wi, si = np.nonzero(kill)
        if not self._quiet:
            for w, s in zip(wi.tolist(), si.tolist()):
                ws = self.spec.workloads[w]
                msg = f"Stopping container {ws.container}" if reason == "Killing" else message
                self._event(ws.namespace, "Pod", self.pod_name(w, s), reason, msg, now, warn=reason == "Evicted")
        self.nodes.release(self.p_node[wi, si], self.p_cpu_req[wi, si], self.p_mem_req[wi, si])
        self.p_alive[wi, si] = False
        self.p_node[wi, si] = -1
        self.p_ready_at[wi, si] = np.inf
        self.p_leaked[wi, si] = 0.0
        self._mark(wi)
        self._stale = True

    def _refresh(self, now: float) -> None:
        """Classify the pods at `now` (started, Ready) after a change or when a container starts or becomes
        ready; recount requests and limits only when pods changed."""
        if self._stale:
            a = self.p_alive
            run = a & (self.p_node >= 0)
            self._run = run
            self.n_alive = a.sum(axis=1)
            self.n_run = run.sum(axis=1)
            # one matmul for the four sums over alive pods (requests, limits; no limit counts 0)
            self._sums = np.matmul(a[:, None, :].astype(float), self.p_res)[:, 0]
            self._n_pending = int(self.n_alive.sum() - self.n_run.sum())
            # the smallest memory limit of each workload's pods: a bound for the OOM pre-check (which only needs
            # to be conservative: the Ready pods' smallest limit is never below it)
            self._mem_lim_min = np.where(a, self.p_mem_lim, np.inf).min(axis=1)
        elif now == self._refreshed_at:
            return
        ready_at = self.p_ready_at
        ready = ready_at <= now  # unscheduled and deleted pods are never ready (inf)
        later = ready_at[ready_at > now]
        nxt = float(later.min()) if later.size else np.inf
        if now >= self._max_started:  # no container waiting to start: every scheduled pod's container runs
            started, n_started = self._run, self.n_run
        else:
            started = self._run & (self.p_started <= now)
            n_started = started.sum(axis=1)
            waiting = self.p_started[self._run & ~started]
            if waiting.size:
                nxt = min(nxt, float(waiting.min()))
        self._ready, self._started = ready, started
        self.n_ready = ready.sum(axis=1)
        self.n_started = n_started
        self._n_unready = self.n_alive - self.n_ready  # Pending or not yet Ready, for the HPA
        self._ready_div = np.maximum(self.n_ready, 1)
        self._rec_dirty = True
        self._next_ready = nxt  # the next instant a container starts or becomes ready
        # the demand above which a pod's working set may pass the smallest limit, with a 1e-9 margin: a cheap,
        # conservative per-step pre-check of `_oom` (which decides exactly)
        with np.errstate(divide="ignore", invalid="ignore"):
            self._d_oom = (self._mem_lim_min * (1.0 - 1e-9) - self._mem_base) / (self._mem_rps / self._ready_div)
        self._stale = False
        self._refreshed_at = now

    # --- kubelet: container failures ----------------------------------------------------------------------
    def _oom(self, now: float, mem_pod: np.ndarray, restarts: np.ndarray, ooms: np.ndarray) -> None:
        mem = mem_pod[:, None] + self.p_leaked
        kill = self._ready & (mem > self.p_mem_lim)
        if kill.any():
            c = self._terminate(kill, now, 1)
            restarts += c
            ooms += c

    def _crash(self, now: float, frac: np.ndarray, restarts: np.ndarray) -> None:
        kill = self._ready & (self.p_crash_u < frac[:, None])
        if kill.any():
            restarts += self._terminate(kill, now, 2)

    def _terminate(self, kill: np.ndarray, now: float, code: int) -> np.ndarray:
        """Containers in `kill` exit (1 OOMKilled, 2 Error): restart after the CrashLoopBackOff delay, as a new
        container instance (its counters start again from 0)."""
        wi, si = np.nonzero(kill)
        # the kubelet resets the back-off after a container ran 10 min without failing
        ran_long = now - self.p_started[wi, si] >= 600.0
        n_prev = np.where(ran_long, 0, self.p_backoff[wi, si])
        delay = np.minimum(10.0 * 2.0 ** n_prev, 300.0)  # 10 s, 20 s, 40 s ... capped at 5 min
        self.p_backoff[wi, si] = n_prev + 1
        self.p_restarts[wi, si] += 1
        self.p_started[wi, si] = now + delay
        self._max_started = max(self._max_started, now + float(delay.max()))
        self.p_ready_at[wi, si] = now + delay + self._startup[wi]
        self.p_reason[wi, si] = code
        self.p_waiting[wi, si] = 2
        self.p_leaked[wi, si] = 0.0
        self._stale = True
        if not self._quiet:
            for w, s, dl in zip(wi.tolist(), si.tolist(), delay.tolist()):
                ws, pod = self.spec.workloads[w], self.pod_name(w, s)
                if code == 1:
                    node = self.nodes.name(int(self.p_node[w, s]))
                    self._event("default", "Node", node, "OOMKilling",
                                f"Memory cgroup out of memory: Killed process ({ws.container}) in pod {ws.namespace}/{pod}",
                                now, warn=True)
                self._event(ws.namespace, "Pod", pod, "BackOff",
                            f"Back-off {dl:g}s restarting failed container {ws.container} in pod {pod}", now, warn=True)
        return np.bincount(wi, minlength=len(self.spec.workloads)).astype(np.int32)


_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet (no vowels, no 0/1/3)


def _suffix(x: int) -> str:
    out = []
    for _ in range(5):
        x, r = divmod(x, 27)
        out.append(_ALNUM[r])
    return "".join(out)


def _hash10(*parts: str) -> str:
    h = int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")
    out = []
    for _ in range(10):
        h, r = divmod(h, 27)
        out.append(_ALNUM[r])
    return "".join(out)
