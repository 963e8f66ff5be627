"""Column generation for the node-mix pattern model's LP relaxation (HiGHS through SciPy: in process, with duals),
with Farley's valid lower bound at every exact pricing round, and the rounding of that LP into a packing.

Works on `nodemix_heuristics.Instance` (exact integer units); `nodemix` drives it (see its docstring for why the
pattern model and how the steps share the time limit).
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
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from aiops.optimize.nodemix_heuristics import UNLIMITED, Instance, finish, resource_bound, trim

PRICING_GAP = 1e-3  # relative gap the pricing MILPs stop at; the bound stays valid through their dual bounds
CG_TOLERANCE = 2e-3  # column generation stops when its bound is this close to the restricted master's value


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
