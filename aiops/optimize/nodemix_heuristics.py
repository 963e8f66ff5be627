"""The combinatorial core of `nodemix`: the packing instance in exact integer units, the FFD rules for a
heterogeneous catalog, node downsizing and trimming, and the fractional resource bound (column generation and LP
rounding: `nodemix_lp`).

Everything works on `Instance`: identical pods merged into classes with counts; millicores, bytes and pod slots as
integers, so "fits" is exact and never depends on a solver's tolerance. A packing is `(types, content)`: the node
type of each node and a (nodes x classes) matrix of how many pods of each class sit on it.

FFD: filling one node at a time with the pods in decreasing order, taking each that still fits, gives exactly the
FFD packing (a pod lands in the first node it fits in either way), and is what is implemented; the ordering and
node-type rules are in `ffd_single` and `ffd_mixed`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

UNLIMITED = np.iinfo(np.int64).max // 4


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
