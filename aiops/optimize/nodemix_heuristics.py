"""The numeric core of `nodemix` (everything but CBC): the packing instance in exact integer units, the FFD rules
for a heterogeneous catalog, node downsizing and trimming, the fractional resource bound, column generation for the
pattern model's LP relaxation (SciPy's HiGHS, in process, for duals), and the rounding of that LP into a packing.

Everything works on `Instance`: identical pods merged into classes with counts; millicores, bytes and pod slots as
integers, so "fits" is exact and never depends on a solver's tolerance. A packing is `(types, content)`: the node
type of each node and a (nodes x classes) matrix of how many pods of each class sit on it.

FFD: filling one node at a time with the pods in decreasing order, taking each that still fits, gives exactly the
FFD packing (a pod lands in the first node it fits in either way), and is what is implemented; the ordering and
node-type rules are in `ffd_single` and `ffd_mixed`.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

UNLIMITED = np.iinfo(np.int64).max // 4
PRICING_GAP = 1e-3  # relative gap the pricing MILPs stop at; the bound stays valid through their dual bounds
CG_TOLERANCE = 2e-3  # column generation stops when its bound is this close to the restricted master's value


@dataclass(frozen=True)
class Instance:
    """Pod classes (identical requests) and node types, in integer units."""

    cpu: np.ndarray  # millicores per pod of each class
    mem: np.ndarray  # bytes per pod of each class
    count: np.ndarray  # pods per class
    cap_cpu: np.ndarray  # allocatable millicores per node type
    cap_mem: np.ndarray  # allocatable bytes per node type
    cap_pods: np.ndarray  # pod slots per node type
    price: np.ndarray  # $ per hour per node type
    max_nodes: np.ndarray  # per node type; UNLIMITED when not set

    @cached_property
    def upto(self) -> np.ndarray:
        """(classes x types) most pods of a class one node of a type can hold (0 = does not fit)."""
        with np.errstate(divide="ignore"):
            by_cpu = np.where(self.cpu[:, None] > 0, self.cap_cpu[None, :] // np.maximum(self.cpu[:, None], 1),
                              UNLIMITED)
            by_mem = np.where(self.mem[:, None] > 0, self.cap_mem[None, :] // np.maximum(self.mem[:, None], 1),
                              UNLIMITED)
        return np.minimum.reduce([by_cpu, by_mem, np.broadcast_to(self.cap_pods, by_cpu.shape),
                                  np.broadcast_to(self.count[:, None], by_cpu.shape)])

    @cached_property
    def dominance(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (bigger, smaller) of classes where the bigger requests at least as much CPU and memory: for each
        class, its nearest dominators in CPU order and in memory order (enough to chain the rest)."""
        big, small = [], []
        for key, other in ((self.cpu, self.mem), (self.mem, self.cpu)):
            order = np.lexsort((other, key))
            for i, d in enumerate(order):
                for c in order[i + 1:]:
                    if other[c] >= other[d]:
                        big.append(c)
                        small.append(d)
                        break
        pairs = sorted(set(zip(big, small)))
        return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))

    def holds(self, content: np.ndarray) -> np.ndarray:
        """(nodes x types) whether each type's allocatable holds each row of `content`."""
        content = np.atleast_2d(content)
        cpu, mem, pods = content @ self.cpu, content @ self.mem, content.sum(axis=1)
        return ((cpu[:, None] <= self.cap_cpu[None, :]) & (mem[:, None] <= self.cap_mem[None, :])
                & (pods[:, None] <= self.cap_pods[None, :]))


def fill(inst: Instance, t: int, rem: list[int], order: list[int], used: tuple[int, int, int] = (0, 0, 0)
         ) -> dict[int, int]:
    """Pods per class put on one node of type `t` (already holding `used` millicores, bytes, pods): classes in
    `order`, as many of each as still fit."""
    c_left, m_left, p_left = (int(inst.cap_cpu[t]) - used[0], int(inst.cap_mem[t]) - used[1],
                              int(inst.cap_pods[t]) - used[2])
    cpu, mem = inst.cpu, inst.mem
    take: dict[int, int] = {}
    for c in order:
        r = rem[c]
        if r == 0:
            continue
        k = min(r, p_left)
        if cpu[c]:
            k = min(k, c_left // int(cpu[c]))
        if mem[c]:
            k = min(k, m_left // int(mem[c]))
        if k > 0:
            take[c] = k
            c_left -= k * int(cpu[c])
            m_left -= k * int(mem[c])
            p_left -= k
            if p_left == 0:
                break
    return take


def _pack(inst: Instance, choose, order: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Open nodes one at a time (`choose(rem, order, used)` -> (type, fill) or None) until every pod is placed."""
    rem = [int(x) for x in inst.count]
    left = sum(rem)
    used = np.zeros(inst.price.size, dtype=np.int64)
    types, rows = [], []
    while left:
        order = [c for c in order if rem[c]]
        picked = choose(rem, order, used)
        if picked is None:
            return None
        t, take = picked
        row = np.zeros(inst.cpu.size, dtype=np.int64)
        for c, k in take.items():
            row[c] = k
            rem[c] -= k
            left -= k
        used[t] += 1
        types.append(t)
        rows.append(row)
    return np.array(types, dtype=np.int64), np.array(rows, dtype=np.int64).reshape(len(rows), inst.cpu.size)


def ffd_single(inst: Instance, t: int) -> tuple[np.ndarray, np.ndarray] | None:
    """FFD with node type `t` only: pods in decreasing order of their larger share of the node's allocatable CPU or
    memory (pod slots as a third dimension; ties by the sum of shares). None when a pod does not fit `t`, or more
    than its `max_nodes` would be needed."""
    if (inst.upto[:, t] == 0).any():
        return None
    shares = np.stack([inst.cpu / inst.cap_cpu[t], inst.mem / inst.cap_mem[t],
                       np.full(inst.cpu.size, 1 / inst.cap_pods[t])])
    order = np.lexsort((-shares.sum(axis=0), -shares.max(axis=0))).tolist()

    def choose(rem, order, used):
        if used[t] >= inst.max_nodes[t]:
            return None
        return t, fill(inst, t, rem, order)
    return _pack(inst, choose, order)


def ffd_mixed(inst: Instance, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Greedy FFD over the whole catalog: pods in decreasing order of their value `weights` (cpu, memory, pod
    prices, from the resource bound's duals), and each new node of the type whose FFD fill carries the most value
    per dollar (ties: the more value). None when `max_nodes` leave no type for the pods left."""
    value = weights[0] * inst.cpu + weights[1] * inst.mem + weights[2]
    # a small share of each normalised dimension so that a resource with a zero dual price still orders the pods
    norm = inst.cpu / inst.cap_cpu.max() + inst.mem / inst.cap_mem.max()
    value = value + 1e-6 * norm * max(value.max(), 1e-12)
    order = np.argsort(-value, kind="stable").tolist()
    fits = inst.upto > 0

    def choose(rem, order, used):
        best, best_key = None, None
        for t in range(inst.price.size):
            if used[t] >= inst.max_nodes[t] or not fits[order[0], t]:
                continue  # the largest pod left must be placeable, or it would never be
            take = fill(inst, t, rem, order)
            v = sum(value[c] * k for c, k in take.items())
            key = (v / inst.price[t] if inst.price[t] > 0 else np.inf, v)
            if best_key is None or key > best_key:
                best, best_key = (t, take), key
        return best
    return _pack(inst, choose, order)


def downsize(inst: Instance, types: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Each node moved to the cheapest type whose allocatable holds its pods (within `max_nodes`; the dearest
    nodes are re-typed first); returns the new types."""
    if types.size == 0:
        return types
    ok = inst.holds(content)
    out = types.copy()
    if (inst.max_nodes >= UNLIMITED).all():
        price = np.where(ok, inst.price[None, :], np.inf)
        cheaper = price.min(axis=1) < inst.price[types]
        out[cheaper] = price.argmin(axis=1)[cheaper]
        return out
    used = np.bincount(types, minlength=inst.price.size)
    for i in np.argsort(-inst.price[types], kind="stable"):
        for t in np.argsort(inst.price, kind="stable"):
            if inst.price[t] >= inst.price[out[i]]:
                break
            if ok[i, t] and used[t] < inst.max_nodes[t]:
                used[out[i]] -= 1
                used[t] += 1
                out[i] = t
                break
    return out


def resource_bound(inst: Instance) -> tuple[float, np.ndarray]:
    """The fractional bound: cheapest node counts (real numbers) whose total allocatable CPU, memory and pod slots
    cover the totals requested, ignoring how pods split across nodes. Returns ($/h, duals per millicore, per byte,
    per pod). A lower bound on every packing, and weaker than the pattern model's LP relaxation."""
    need = np.array([inst.cpu @ inst.count, inst.mem @ inst.count, inst.count.sum()], dtype=float)
    if need[2] == 0:
        return 0.0, np.zeros(3)
    scale = np.maximum(need, 1.0)  # rows in units of the totals keep the LP well conditioned
    caps = np.stack([inst.cap_cpu, inst.cap_mem, inst.cap_pods]).astype(float) / scale[:, None]
    ub = np.where(inst.max_nodes >= UNLIMITED, np.inf, inst.max_nodes.astype(float))
    res = linprog(inst.price, A_ub=-caps, b_ub=-need / scale, bounds=list(zip(np.zeros_like(ub), ub)),
                  method="highs")
    if res.status != 0:
        return float("inf"), np.zeros(3)
    return float(res.fun), -res.ineqlin.marginals / scale


def cost(inst: Instance, types: np.ndarray) -> float:
    """$ per hour of the nodes."""
    return float(inst.price[types].sum())


def trim(inst: Instance, types: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pods covered more than once dropped (the dearest nodes keep theirs), the room freed refilled with pods not
    yet placed (largest first), empty nodes removed. Returns (types, content, pods per class still unplaced)."""
    order = np.argsort(-inst.price[types], kind="stable")
    types, content = types[order], content[order].copy()
    rem = inst.count.copy()
    for i in range(len(types)):
        content[i] = np.minimum(content[i], rem)
        rem -= content[i]
    if rem.any():  # e.g. a slot the LP gave a smaller pod through an exchange column
        big = np.maximum(inst.cpu / inst.cap_cpu.max(), inst.mem / inst.cap_mem.max())
        todo = [c for c in np.argsort(-big, kind="stable").tolist() if rem[c]]
        left = rem.tolist()
        for i in range(len(types)):
            row = content[i]
            take = fill(inst, int(types[i]), left, todo, (int(row @ inst.cpu), int(row @ inst.mem), int(row.sum())))
            for c, k in take.items():
                row[c] += k
                left[c] -= k
        rem = np.array(left, dtype=np.int64)
    used = content.sum(axis=1) > 0
    return types[used], content[used], rem


def round_lp(inst: Instance, pool: Pool, weights: np.ndarray,
             deadline: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A packing by iterated rounding of the pattern LP over the columns in `pool`: solve the LP for the pods still
    unplaced, keep each column's nodes rounded down (or, when all round to zero, one node of the largest), repeat;
    past `deadline` the rest is left to `finish`. None if max_nodes leave no room."""
    types_all, rows_all = pool.arrays()
    got_t, got_c = np.zeros(0, np.int64), np.zeros((0, inst.cpu.size), np.int64)
    rem, left = inst.count.copy(), inst.max_nodes.copy()
    while rem.sum() and time.perf_counter() < deadline:
        sub = replace(inst, count=rem, max_nodes=left)
        sub.__dict__["dominance"] = inst.dominance  # depends on sizes only
        _, _, _, unplaced, z = _master(sub, pool)
        if unplaced > 1e-6:
            break
        n = np.floor(z + 1e-6).astype(np.int64)
        if not n.any():
            n[int(np.argmax(z))] = 1
        t, c, _ = trim(sub, np.repeat(types_all, n), np.repeat(rows_all, n, axis=0))
        if not c.any():
            break
        got_t, got_c = np.r_[got_t, t], np.vstack([got_c, c])
        rem = rem - c.sum(axis=0)
        left = np.where(inst.max_nodes >= UNLIMITED, UNLIMITED, inst.max_nodes - np.bincount(
            got_t, minlength=inst.price.size))
    return finish(inst, got_t, got_c, weights)


def realise(inst: Instance, types: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Nodes whose slots cover the pods only through exchanges (a slot of a bigger pod holds a smaller one, as in
    the master and CBC's model): the exchanges as an integral flow down the dominance pairs (a network LP, so its
    vertex is integral), then each pod put in a slot of its own class or one passed down to it. None if the slots
    cannot cover the pods that way."""
    supply = content.sum(axis=0)
    big, small = inst.dominance
    k = inst.cpu.size
    if big.size:
        flow = sparse.csc_matrix((np.r_[np.ones(big.size), -np.ones(big.size)],
                                  (np.r_[small, big], np.r_[np.arange(big.size), np.arange(big.size)])),
                                 shape=(k, big.size))
        res = linprog(np.ones(big.size), A_ub=-flow, b_ub=supply - inst.count, bounds=(0, None), method="highs-ds")
        if res.status != 0:
            return None
        y = np.rint(res.x).astype(np.int64)
    elif (supply < inst.count).any():
        return None
    else:
        y = np.zeros(0, np.int64)
    pools: list[list[list[int]]] = [[[i, int(n)] for i, n in enumerate(content[:, c]) if n] for c in range(k)]
    out = np.zeros_like(content)
    for c in np.argsort(-(inst.cpu / inst.cap_cpu.max() + inst.mem / inst.cap_mem.max()), kind="stable"):
        for e in np.flatnonzero((big == c) & (y > 0)):  # pass slots down, biggest classes first (topological)
            _move(pools[c], pools[small[e]], int(y[e]))
        need = int(inst.count[c])
        for slot in pools[c]:
            take = min(need, slot[1])
            out[slot[0], c] += take
            need -= take
        if need:
            return None
    used = out.sum(axis=1) > 0
    return types[used], out[used]


def _move(src: list[list[int]], dst: list[list[int]], n: int) -> None:
    while n:
        node, have = src[-1]
        m = min(n, have)
        dst.append([node, m])
        n -= m
        if m == have:
            src.pop()
        else:
            src[-1][1] -= m


def finish(inst: Instance, types: np.ndarray, content: np.ndarray,
           weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A packing from nodes that may cover some pods twice and miss others: `realise` their exchanges or else
    `trim`, the pods still unplaced packed on new nodes by the mixed FFD (`weights` as there), every node
    downsized. None if max_nodes leave no room."""
    exact = realise(inst, types, content)
    if exact is not None:
        types, content = exact
    types, content, rem = trim(inst, types, content)
    if rem.any():
        used = np.bincount(types, minlength=inst.price.size)
        left = np.where(inst.max_nodes >= UNLIMITED, UNLIMITED, np.maximum(inst.max_nodes - used, 0))
        rest = ffd_mixed(replace(inst, count=rem, max_nodes=left), weights)
        if rest is None:
            return None
        types, content = np.r_[types, rest[0]], np.vstack([content, rest[1]])
    return downsize(inst, types, content), content


# ---- column generation for the pattern model's LP relaxation (HiGHS through SciPy: in process, with duals) ----

class Pool:
    """The columns (patterns: one node of one type and the pods per class it holds) generated so far, unique."""

    def __init__(self, inst: Instance):
        self.inst, self.types, self.rows, self.index = inst, [], [], {}

    @property
    def size(self) -> int:
        return len(self.types)

    def add(self, t: int, row: np.ndarray) -> int:
        """The column index of (t, row), added if new."""
        key = (int(t), row.tobytes())
        if key not in self.index:
            self.index[key] = len(self.types)
            self.types.append(int(t))
            self.rows.append(np.asarray(row, dtype=np.int64).copy())
        return self.index[key]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(type per column, (columns x classes) pods per class)."""
        return (np.array(self.types, dtype=np.int64),
                np.array(self.rows, dtype=np.int64).reshape(self.size, self.inst.cpu.size))

    def matrix(self) -> sparse.csc_matrix:
        """(classes x columns) pods per class in each pattern."""
        return sparse.csc_matrix(self.arrays()[1].T.astype(float))


@dataclass
class CGResult:
    """Where column generation stands (resumable): the restricted master's value, duals and solution, the best
    valid lower bound and the duals that gave it."""

    value: float = math.inf  # the restricted master LP's optimum
    bound: float = 0.0  # a valid lower bound on every packing
    converged: bool = False
    artificial: float = 0.0  # pods the LP could not place (max_nodes too tight)
    iterations: int = 0
    exact_rounds: int = 0
    pi: np.ndarray = field(default_factory=lambda: np.zeros(0))  # duals of the cover rows
    lam: np.ndarray = field(default_factory=lambda: np.zeros(0))  # duals of the max_nodes rows, per type (<= 0)
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the master's solution, nodes per column
    history: list = field(default_factory=list)  # master values since the last exact round
    center: tuple = ()  # the duals with the best bound so far (pi, lam, bound): where pricing is smoothed towards


def column_generation(inst: Instance, pool: Pool, deadline: float, state: CGResult | None = None) -> CGResult:
    """Solve the LP relaxation of the pattern model over all patterns by column generation, from the columns in
    `pool`, until its bound is within `CG_TOLERANCE` of the restricted master's value or `deadline` (perf_counter)
    passes; `state` continues an earlier call.

    Pricing is a knapsack per node type (CPU, memory, pod slots). Cheap rounds: its LP relaxation, that solution
    rounded down, and combinations of big pods, each filled greedily; duals are smoothed (Wentges) towards the
    best-bound duals so far, which start at the resource bound's, since the restricted master's degenerate duals
    stall. When cheap rounds stop moving the LP, an exact round solves the knapsacks as MILPs (HiGHS, to within
    `PRICING_GAP`). Each exact round gives a valid lower bound (Farley's: the duals scaled down until no pattern of
    any type, at the MILPs' dual bounds, prices out); the master's value is the LP optimum only once they meet."""
    out = state or CGResult()
    if state is None:
        out.center = _resource_duals(inst)
        out.bound = out.center[2]
    while True:
        center_pi, center_lam, _ = out.center
        out.value, out.pi, out.lam, out.artificial, out.z = _master(inst, pool)
        out.iterations += 1
        out.converged = out.bound >= out.value * (1 - CG_TOLERANCE)
        if out.converged or time.perf_counter() >= deadline:
            return out
        out.history.append(out.value)
        added = 0
        # cheap rounds while they still move the LP (by 0.1 % over the last 5 masters), else an exact round
        if len(out.history) < 6 or out.history[-6] - out.value > 1e-3 * out.value:
            for a in (0.5, 0.0):  # smoothed first; on a mis-pricing, the master's own duals
                best = _price(inst, a * center_pi + (1 - a) * out.pi, a * center_lam + (1 - a) * out.lam)
                added = _add(inst, pool, best, out.pi, out.lam)
                if added:
                    break
        if added:
            continue
        out.history.clear()
        upper, best = _price_exact(inst, out.pi, out.lam, deadline)
        out.exact_rounds += 1
        bound = _farley(inst, out.pi, out.lam, upper)
        if bound > out.bound:
            out.center, out.bound = (out.pi, out.lam, bound), bound
        if not _add(inst, pool, best, out.pi, out.lam):
            out.converged = out.bound >= out.value * (1 - CG_TOLERANCE)
            return out  # nothing left that prices out (within the pricing gap): no progress possible


def _resource_duals(inst: Instance) -> tuple[np.ndarray, np.ndarray, float]:
    """Duals feasible for the pattern LP from the resource bound: a pod is worth its CPU, memory and slot at the
    resource LP's shadow prices, so no pattern is worth more than its node (types with max_nodes absorb any
    excess in their own dual)."""
    value, p = resource_bound(inst)
    if not np.isfinite(value):
        return np.zeros(inst.cpu.size), np.zeros(inst.price.size), 0.0
    pi = p[0] * inst.cpu + p[1] * inst.mem + p[2]
    worth = p[0] * inst.cap_cpu + p[1] * inst.cap_mem + p[2] * inst.cap_pods
    limited = inst.max_nodes < UNLIMITED
    lam = np.where(limited, np.minimum(0.0, inst.price - worth), 0.0)
    pi = pi * min([1.0] + [inst.price[t] / worth[t] for t in np.flatnonzero(~limited) if worth[t] > 0])
    return pi, lam, float(pi @ inst.count + lam[limited] @ inst.max_nodes[limited])


def _add(inst: Instance, pool: Pool, best: dict[int, list[np.ndarray]], pi: np.ndarray, lam: np.ndarray) -> int:
    """Add the patterns with a negative reduced cost for the master's duals, each on the cheapest type that holds
    it (never a worse column; also on its own type when the cheapest is capped by max_nodes)."""
    added = 0
    for t, rows in best.items():
        for row in rows:
            if pi @ row <= (inst.price[t] - lam[t]) * (1 + 1e-9) + 1e-12:
                continue
            cheapest = int(np.argmin(np.where(inst.holds(row)[0], inst.price, np.inf)))
            for u in ({t, cheapest} if inst.max_nodes[cheapest] < UNLIMITED else {cheapest}):
                before = pool.size
                pool.add(u, row)
                added += pool.size > before
    return added


def _farley(inst: Instance, pi: np.ndarray, lam: np.ndarray, upper: dict[int, float]) -> float:
    """A lower bound from any duals: scale the cover duals by theta so that no pattern of any type (value at most
    `upper[t]`) has a negative reduced cost; (theta pi, lam) is then feasible for the full dual LP."""
    theta = min([1.0] + [(inst.price[t] - lam[t]) / u for t, u in upper.items() if u > 0])
    limited = inst.max_nodes < UNLIMITED
    return theta * float(pi @ inst.count) + float(lam[limited] @ inst.max_nodes[limited])


def _master(inst: Instance, pool: Pool) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray]:
    """The restricted master LP: (value, cover duals >= 0, per-type max_nodes duals <= 0, unplaced pods, nodes
    per column)."""
    k, n = inst.cpu.size, pool.size
    types = np.array(pool.types, dtype=np.int64)
    limited = np.flatnonzero(inst.max_nodes < UNLIMITED)
    big, small = inst.dominance
    # free exchange columns "a slot of a bigger pod takes a smaller one" are the dual-optimal inequalities
    # pi[big] >= pi[small]: they leave the LP's value alone and cut the degenerate duals that stall the pricing.
    # Artificial columns (a pod left out, dearer than any node) keep the LP feasible when max_nodes are too tight.
    swap = sparse.csc_matrix((np.r_[np.ones(big.size), -np.ones(big.size)],
                              (np.r_[big, small], np.r_[np.arange(big.size), np.arange(big.size)])),
                             shape=(k, big.size))
    rows, rhs = [sparse.hstack([-pool.matrix(), -sparse.identity(k), swap])], [-inst.count.astype(float)]
    if limited.size:
        lim = sparse.csr_matrix((types[None, :] == limited[:, None]).astype(float))
        rows.append(sparse.hstack([lim, sparse.csr_matrix((limited.size, k + big.size))]))
        rhs.append(inst.max_nodes[limited].astype(float))
    cost = np.r_[inst.price[types], np.full(k, 1e3 * max(float(inst.price.max()), 1.0)), np.zeros(big.size)]
    res = linprog(cost, A_ub=sparse.vstack(rows).tocsc(), b_ub=np.concatenate(rhs), bounds=(0, None),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"HiGHS could not solve the master LP: {res.message}")
    marg = res.ineqlin.marginals
    lam = np.zeros(inst.price.size)
    lam[limited] = marg[k:]
    return (float(res.fun), np.maximum(-marg[:k], 0.0), np.minimum(lam, 0.0), float(res.x[n:n + k].sum()),
            res.x[:n])


def _candidates(inst: Instance, pi: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes worth packing on type t, their sizes as shares of the node (cpu, memory, slot), their caps."""
    cand = np.flatnonzero((pi > 1e-12) & (inst.upto[:, t] > 0))
    share = np.stack([inst.cpu[cand] / inst.cap_cpu[t], inst.mem[cand] / inst.cap_mem[t],
                      np.full(cand.size, 1.0 / inst.cap_pods[t])])
    return cand, share, inst.upto[cand, t]


def _price(inst: Instance, pi: np.ndarray, lam: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Heuristic pricing: for each node type whose knapsack LP bound beats its price, greedy patterns started from
    the LP solution rounded down, from empty in two orders, and from the best combinations of big pods."""
    best: dict[int, list[np.ndarray]] = {}
    for t in range(inst.price.size):
        worth = inst.price[t] - lam[t]  # what a pattern of this type must beat
        cand, share, upto = _candidates(inst, pi, t)
        if pi[cand] @ upto <= worth * (1 + 1e-9):
            continue  # even every pod that fits, ignoring capacity, is not worth the node
        res = linprog(-pi[cand], A_ub=share, b_ub=np.ones(3), bounds=np.stack([np.zeros(cand.size), upto], axis=1),
                      method="highs")
        if res.status != 0 or -res.fun <= worth * (1 + 1e-9):
            continue
        density = pi[cand] / share.sum(axis=0)
        best[t] = [_greedy(inst, t, cand, upto, start, key) for start, key in (
            (np.floor(res.x + 1e-9), density), (np.zeros(cand.size), density),
            (np.zeros(cand.size), pi[cand] / share.max(axis=0)))]
        best[t] += [_greedy(inst, t, cand, upto, start, density)
                    for start in _big_combos(pi[cand], share, upto, -res.ineqlin.marginals)]
    return best


def _big_combos(value: np.ndarray, share: np.ndarray, upto: np.ndarray, mu: np.ndarray,
                top: int = 24, keep: int = 3) -> list[np.ndarray]:
    """Starts for the greedy: sets of big pods (over a fifth of the node, so at most 4 fit). Up to 3 from the `top`
    classes by reduced profit at the knapsack LP's duals `mu` (value - mu . size), valued with the room they leave
    at `mu`; and the same sets completed by the most valuable big pod that still fits, whatever its rank. Greedy
    orders miss the combinations of big pods that fill a node exactly, which pricing needs most."""
    big = np.flatnonzero(share.max(axis=0) > 0.2)
    if big.size == 0:
        return []
    top_ = big[np.argsort(-(value[big] - mu @ share[:, big]), kind="stable")[:top]]
    plain, completed = [], []  # (score, classes of the set)
    for m in range(1, 4):
        idx = top_[_combos(top_.size, m)]  # (sets, m) class positions
        mult = (idx[:, :, None] == idx[:, None, :]).sum(axis=2)
        used = share[:, idx].sum(axis=2)  # (3, sets)
        ok = (used <= 1 + 1e-12).all(axis=0) & (mult <= upto[idx]).all(axis=1)
        idx, used = idx[ok], used[:, ok]
        base = value[idx].sum(axis=1)
        score = base + mu @ (1 - used)
        plain += [(score[i], idx[i]) for i in np.argsort(-score, kind="stable")[:keep]]
        fits = ((used[:, :, None] + share[:, None, big]) <= 1 + 1e-12).all(axis=0)  # (sets, big)
        fits &= (idx[:, :, None] == big[None, None, :]).sum(axis=1) < upto[big]
        gain = np.where(fits, value[big][None, :], -np.inf)
        j = gain.argmax(axis=1)
        total = base + gain[np.arange(j.size), j]
        completed += [(total[i], np.r_[idx[i], big[j[i]]]) for i in np.argsort(-total, kind="stable")[:keep]
                      if np.isfinite(total[i])]
    out = []
    for sets in (plain, completed):
        for _, row in sorted(sets, key=lambda p: -p[0])[:keep]:
            out.append(np.bincount(row, minlength=value.size).astype(float))
    return out


@lru_cache(maxsize=16)
def _combos(n: int, m: int) -> np.ndarray:
    return np.array(list(itertools.combinations_with_replacement(range(n), m)), dtype=np.int64).reshape(-1, m)


def _greedy(inst: Instance, t: int, cand: np.ndarray, upto: np.ndarray, start: np.ndarray,
            key: np.ndarray) -> np.ndarray:
    """A pattern: `start` pods per candidate class, then as many more as fit, classes by decreasing `key`."""
    k = np.minimum(start.astype(np.int64), upto)
    cpu, mem = inst.cpu[cand], inst.mem[cand]
    c_left, m_left = int(inst.cap_cpu[t] - k @ cpu), int(inst.cap_mem[t] - k @ mem)
    p_left = int(inst.cap_pods[t] - k.sum())
    for i in np.argsort(-key, kind="stable").tolist():
        n = min(int(upto[i] - k[i]), p_left)
        if cpu[i]:
            n = min(n, c_left // int(cpu[i]))
        if mem[i]:
            n = min(n, m_left // int(mem[i]))
        if n > 0:
            k[i] += n
            c_left, m_left, p_left = c_left - n * int(cpu[i]), m_left - n * int(mem[i]), p_left - n
            if p_left == 0:
                break
    row = np.zeros(inst.cpu.size, dtype=np.int64)
    row[cand] = k
    return row


def _price_exact(inst: Instance, pi: np.ndarray, lam: np.ndarray,
                 deadline: float) -> tuple[dict[int, float], dict[int, list[np.ndarray]]]:
    """Exact pricing: each type's knapsack as a MILP (HiGHS, to within `PRICING_GAP`), within the deadline.
    Returns an upper bound on the best pattern's value per type (the MILP's dual bound, or every fitting pod's
    value when out of time) and the patterns found."""
    upper: dict[int, float] = {}
    best: dict[int, list[np.ndarray]] = {}
    for t in range(inst.price.size):
        cand, share, upto = _candidates(inst, pi, t)
        upper[t] = float(pi[cand] @ upto)
        left = deadline - time.perf_counter()
        if upper[t] <= (inst.price[t] - lam[t]) * (1 + 1e-9) or left <= 0:
            continue
        options = {"time_limit": max(min(left, 2.0), 0.05), "mip_rel_gap": PRICING_GAP, "disp": False}
        with _quiet_stdout():
            res = milp(-pi[cand], integrality=np.ones(cand.size), bounds=Bounds(0, upto.astype(float)),
                       constraints=LinearConstraint(share, -np.inf, np.ones(3)), options=options)
        dual = getattr(res, "mip_dual_bound", None)
        if dual is not None and np.isfinite(dual):
            upper[t] = min(upper[t], -float(dual) * (1 + 1e-7) + 1e-12)  # a hair up: the MILP's own tolerance
        if res.x is not None:
            row = np.zeros(inst.cpu.size, dtype=np.int64)
            row[cand] = np.rint(res.x).astype(np.int64)
            while not inst.holds(row)[0, t]:  # the solver's tolerance may overfill by a hair
                j = cand[row[cand] > 0][np.argmin(pi[cand][row[cand] > 0])]
                row[j] -= 1
            best[t] = [row]
    return upper, best


_STDOUT = threading.Lock()
_LIBC = ctypes.CDLL(None) if os.name == "posix" else None


@contextmanager
def _quiet_stdout():
    """Keep file descriptor 1 quiet: the HiGHS bundled with SciPy prints a debug line from C++ on some MIPs
    ("transformNewIntegerFeasibleSolution"), which would land in a caller's stdout (e.g. a CLI's JSON output)."""
    if _LIBC is None:
        yield
        return
    with _STDOUT:  # one redirection at a time, or a second one would restore the first's /dev/null
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                try:
                    yield
                finally:
                    _LIBC.fflush(None)
                    os.dup2(saved, 1)
        finally:
            os.close(saved)
