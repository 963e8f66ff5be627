"""Node mix: how many nodes of each instance type hold the (right-sized) pods at the lowest price per hour.

`pack(pods, config)` solves a bin-packing MILP with CBC through PuLP, in its pattern (configuration) form.
Identical pods are merged into classes with counts; a *pattern* is what one node of one type holds (pods per class
within the type's allocatable CPU, memory and pod slots); the integer z[p] is how many nodes run pattern p:

    min  sum_p price[type(p)] z[p]   s.t.  sum_p a[c, p] z[p] >= count[c]          for every class c
                                           sum_{p of type t} z[p] <= max_nodes[t]   for types that set it

Why not x[pod, node]: for 1,000 pods on a hundred-odd nodes that model has ~10^5 variables, every permutation of
identical nodes is the same solution, and its LP relaxation is no better than the fractional resource bound. The
pattern model has one row per class and no symmetry, and its LP relaxation (the Gilmore-Gomory bound) knows that
three 8-core pods and not four fit a 32-core node. Its columns cannot be listed, so (time shares of `time_limit_s`):

1. FFD (`nodemix_heuristics`: each type alone and a greedy mixed rule, nodes downsized) gives the first packing
   and the first columns;
2. column generation (up to `lp_share`, 70 %) solves the LP relaxation over all patterns and yields a valid lower
   bound even when stopped early (see `nodemix_heuristics.column_generation`);
3. the LP is rounded (floor, re-solve for the pods left, repeat; up to 10 %) into a packing;
4. CBC solves the integer model over the generated columns (the rest of the time), warm-started from the better of
   the rounding and FFD, with columns fixed out whose reduced cost exceeds that start's gap to the LP (they are in
   no cheaper solution), and with the master's exchanges "a slot of a bigger pod holds a smaller one" as
   continuous flows (the columns rarely match the counts exactly without them). The nodes CBC picks are turned
   into an assignment that realises those exchanges and downsized; if that is not cheaper than the start, the start
   is kept (`method` says which won: "milp", "lp-rounding" or "ffd"). Time CBC leaves goes back to step 2.

Restricting the integer model to the generated columns is a heuristic ("price and branch"): the gap reported is
against the bound for *all* patterns, (cost - bound) / cost, where the bound is the best of the column-generation
bound and the fractional resource bound (cheapest real-valued node counts whose allocatable covers the total
requests; always reported too, as `resource_bound`). `first_fit_decreasing(pods, config)` gives FFD alone.

The config classes use only pydantic (the lead may move them to `aiops.optimize.config`); this module imports
numpy, pandas, SciPy and PuLP at module level.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pulp

from aiops.errors import AiopsError, SchemaError
from aiops.optimize import nodemix_heuristics as h
from aiops.optimize import nodemix_lp as lp
from aiops.optimize.config import (  # noqa: F401  (re-exported: the catalog and settings live with the others)
    DEFAULT_CATALOG, NodeMixConfig, NodeType, gke_reserved_cpu, gke_reserved_memory_gib,
)

GIB = 1024**3


class Unschedulable(AiopsError):
    """Pods that no node type of the catalog can hold, or more pods than `max_nodes` leave room for."""


@dataclass(frozen=True)
class NodeMixResult:
    """A packing and how it was found. Costs and bounds in $ per hour; `gap` = (cost - bound) / cost.

    `nodes`: one row per node (node, node_type, pods, cpu/memory requested and allocatable, utilisation, price).
    `assignment`: one row per pod replica (pod, replica, node, node_type). `heuristics`: $/h of each FFD rule.
    `status`: "optimal" when the gap is within `config.gap`, else "feasible". `method`: which packing is returned,
    "milp" (CBC improved on its start), "lp-rounding" or "ffd" (CBC found nothing cheaper than that start).
    `iterations`, `columns`: master LPs solved and patterns generated; `notes`: the LP value and the rounding.
    """

    status: str
    method: str
    cost_per_hour: float
    bound: float
    bound_kind: str
    resource_bound: float
    gap: float
    ffd_cost_per_hour: float
    heuristics: Mapping[str, float]
    node_counts: Mapping[str, int]
    nodes: pd.DataFrame
    assignment: pd.DataFrame
    solve_seconds: float
    cbc_status: str = "not run"
    iterations: int = 0
    columns: int = 0
    hours_per_month: float = 730.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cost_per_month(self) -> float:
        return self.cost_per_hour * self.hours_per_month

    def summary(self) -> str:
        """One line a person can read, e.g. '3 x m5.xlarge + 1 x r5.xlarge, $0.83/h ($606/month), ...'."""
        mix = " + ".join(f"{n} x {t}" for t, n in self.node_counts.items()) or "no nodes"
        kind = "LP" if self.bound_kind.startswith("LP") else "lower"
        return (f"{mix}, ${self.cost_per_hour:.2f}/h (${self.cost_per_month:,.0f}/month), {kind} bound "
                f"${self.bound:.2f}/h, gap {self.gap:.1%}, FFD ${self.ffd_cost_per_hour:.2f}/h; "
                f"{self.method.upper()}, {self.status}, {self.solve_seconds:.1f} s")


def pack(pods, config: NodeMixConfig | None = None) -> NodeMixResult:
    """The cheapest node mix for `pods` (frame or sequence of mappings: name, cpu [cores], memory [bytes], optional
    count [identical replicas]) and which pod goes on which node. See the module docstring."""
    config = _check_config(config)
    t0, limit = time.perf_counter(), config.time_limit_s
    inst, members = _instance(pods, config)
    heur, ffd = _heuristics(inst, config)
    rbound, duals = h.resource_bound(inst)
    if inst.count.sum() == 0:
        return _result(inst, members, config, ffd, "optimal", "ffd", 0.0, "no pods", 0.0, heur, t0)
    pool = lp.Pool(inst)
    for types, content in heur.values():
        for t, row in zip(types, content):
            pool.add(int(t), row)
    cg = lp.column_generation(inst, pool, t0 + config.lp_share * limit)
    if cg.converged and cg.artificial > 1e-6:
        raise Unschedulable(f"pods: even the LP relaxation cannot place every pod within the catalog's max_nodes "
                            f"({_limits(config)}); raise max_nodes or add node types")
    notes, start, method = [], ffd, "ffd"
    rounded = lp.round_lp(inst, pool, duals, t0 + (config.lp_share + 0.1) * limit)
    if rounded is not None:
        notes.append(f"LP rounding: ${h.cost(inst, rounded[0]):.4f}/h")
        if start is None or h.cost(inst, rounded[0]) < h.cost(inst, start[0]):
            start, method = rounded, "lp-rounding"
    ub = h.cost(inst, start[0]) if start is not None else math.inf
    sol, cbc_status = _integer(inst, pool, cg, start, ub, t0 + limit, config, duals)
    if sol is not None and h.cost(inst, sol[0]) < ub - 1e-9:
        method = "milp"
    else:
        sol = start
    if sol is None:
        raise Unschedulable(f"pods: no packing found within max_nodes ({_limits(config)}) in {limit:g} s; raise "
                            f"max_nodes, add node types or raise time_limit_s")
    if not cg.converged and time.perf_counter() < t0 + limit - 0.5:
        cg = lp.column_generation(inst, pool, t0 + limit, state=cg)  # the time CBC left: for the bound
    notes.insert(0, f"column generation: {cg.iterations} master LPs, {cg.exact_rounds} exact pricing rounds, "
                 f"{pool.size} columns, restricted LP ${cg.value:.4f}/h"
                 + ("" if cg.converged else " (not converged, so not a bound)"))
    bound, kind = max(cg.bound, rbound), f"LP relaxation of the pattern model (within {lp.CG_TOLERANCE:.1%})"
    if not cg.converged:
        kind = ("Farley bound of the pattern model's LP (column generation stopped)" if cg.bound > rbound + 1e-9
                else "fractional resource bound")
    value = h.cost(inst, sol[0])
    status = "optimal" if value - bound <= config.gap * value + 1e-9 else "feasible"
    return _result(inst, members, config, sol, status, method, bound, kind, rbound, heur, t0, cbc_status,
                   cg.iterations, pool.size, notes)


def first_fit_decreasing(pods, config: NodeMixConfig | None = None) -> NodeMixResult:
    """The cheapest of the FFD rules (each node type alone, and the greedy mixed rule; see `nodemix_heuristics`),
    each node then downsized to the cheapest type that holds it. The bound is the fractional resource bound."""
    config = _check_config(config)
    t0 = time.perf_counter()
    inst, members = _instance(pods, config)
    heur, best = _heuristics(inst, config)
    if best is None:
        raise Unschedulable(f"pods: FFD found no packing within max_nodes ({_limits(config)}); raise max_nodes")
    rbound, _ = h.resource_bound(inst)
    value = h.cost(inst, best[0])
    gap = (value - rbound) / value if value > 0 else 0.0
    status = "optimal" if gap <= config.gap + 1e-9 else "feasible"
    return _result(inst, members, config, best, status, "ffd", rbound, "fractional resource bound", rbound, heur,
                   t0)


def _check_config(config) -> NodeMixConfig:
    config = config or NodeMixConfig()
    if not isinstance(config, NodeMixConfig):
        raise SchemaError(f"config: expected NodeMixConfig, got {type(config).__name__}")
    return config


def _limits(config: NodeMixConfig) -> str:
    return ", ".join(f"{t.name}: {t.max_nodes}" for t in config.catalog if t.max_nodes is not None) or "none set"


def _instance(pods, config: NodeMixConfig) -> tuple[h.Instance, list[list[tuple[str, int]]]]:
    """Check `pods`, merge identical requests into classes; members[c] lists (pod, replica) of class c."""
    frame = _pods_frame(pods)
    cpu = np.ceil(frame["cpu"].to_numpy(float) * 1000 - 1e-6).astype(np.int64)
    mem = np.ceil(frame["memory"].to_numpy(float) - 1e-6).astype(np.int64)
    cat = config.catalog
    cap_cpu = np.array([math.floor(t.allocatable_cpu_cores * 1000 + 1e-6) for t in cat], dtype=np.int64)
    cap_mem = np.array([math.floor(t.allocatable_memory_gib * GIB) for t in cat], dtype=np.int64)
    cap_pods = np.array([t.max_pods or config.max_pods_per_node for t in cat], dtype=np.int64)
    fits = (cpu[:, None] <= cap_cpu) & (mem[:, None] <= cap_mem)
    bad = np.flatnonzero(~fits.any(axis=1))
    if bad.size:
        big_cpu, big_mem = cat[int(cap_cpu.argmax())], cat[int(cap_mem.argmax())]
        shown = "; ".join(f"{frame['name'].iat[i]!r} requests {cpu[i] / 1000:g} cores and {mem[i] / GIB:.2f} GiB"
                          for i in bad[:5])
        raise Unschedulable(
            f"pods: {bad.size} pod(s) fit no node type: {shown}. Largest allocatable: {big_cpu.name} "
            f"{big_cpu.allocatable_cpu_cores:.2f} cores / {big_cpu.allocatable_memory_gib:.1f} GiB, "
            f"{big_mem.name} {big_mem.allocatable_cpu_cores:.2f} cores / {big_mem.allocatable_memory_gib:.1f} GiB. "
            f"Add a bigger type to NodeMixConfig.catalog or lower the request")
    sizes, codes = np.unique(np.stack([cpu, mem], axis=1).reshape(-1, 2), axis=0, return_inverse=True)
    codes = codes.reshape(-1)
    counts = frame["count"].to_numpy(np.int64)
    members: list[list[tuple[str, int]]] = [[] for _ in range(len(sizes))]
    for name, code, n in zip(frame["name"], codes, counts):
        members[code].extend((name, r) for r in range(n))
    ccpu, cmem = sizes[:, 0].copy(), sizes[:, 1].copy()
    ccount = np.bincount(codes, weights=counts, minlength=len(sizes)).astype(np.int64)
    maxn = np.array([h.UNLIMITED if t.max_nodes is None else t.max_nodes for t in cat], dtype=np.int64)
    price = np.array([t.price_per_hour for t in cat], dtype=float)
    return h.Instance(ccpu, cmem, ccount, cap_cpu, cap_mem, cap_pods, price, maxn), members


def _pods_frame(pods) -> pd.DataFrame:
    if isinstance(pods, pd.DataFrame):
        frame = pods
    elif isinstance(pods, Sequence) and not isinstance(pods, (str, bytes)) and all(
            isinstance(p, Mapping) for p in pods):
        frame = pd.DataFrame(list(pods), columns=None if pods else ["name", "cpu", "memory"])
    else:
        raise SchemaError(f"pods: expected a DataFrame or a sequence of mappings with name, cpu (cores), memory "
                          f"(bytes) and optional count, got {type(pods).__name__}")
    missing = [c for c in ("name", "cpu", "memory") if c not in frame.columns]
    if missing:
        raise SchemaError(f"pods: missing column(s) {missing}; expected name, cpu (cores), memory (bytes) and "
                          f"optional count, got {list(frame.columns)}")
    out = pd.DataFrame({"name": frame["name"], "cpu": pd.to_numeric(frame["cpu"], errors="coerce"),
                        "memory": pd.to_numeric(frame["memory"], errors="coerce")})
    out["count"] = frame["count"] if "count" in frame.columns else 1
    names = out["name"]
    if not names.map(lambda v: isinstance(v, str) and v != "").all():
        raise SchemaError("pods: every name must be a non-empty string")
    dup = names[names.duplicated()].unique()
    if dup.size:
        raise SchemaError(f"pods: duplicate name(s) {list(dup[:5])}; give identical replicas one row with `count`")
    for col, unit in (("cpu", "cores"), ("memory", "bytes")):
        v = out[col].to_numpy(float)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            shown = {n: _plain(frame[col].iat[i]) for n, i in zip(names[bad][:5], np.flatnonzero(bad)[:5])}
            raise SchemaError(f"pods: {col} must be a finite number of {unit} >= 0; got {shown}")
    cnt = pd.to_numeric(out["count"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(cnt) | (cnt < 0) | (cnt != np.round(cnt))
    if bad.any():
        raise SchemaError(f"pods: count must be a whole number >= 0; got "
                          f"{ {n: _plain(v) for n, v in zip(names[bad][:5], out['count'][bad][:5])} }")
    out["count"] = cnt.astype(np.int64)
    return out[out["count"] > 0].reset_index(drop=True)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _heuristics(inst: h.Instance, config: NodeMixConfig):
    """Every FFD rule's downsized packing by name, and the cheapest of them (None if none fits max_nodes)."""
    if inst.count.sum() == 0:
        empty = (np.zeros(0, np.int64), np.zeros((0, inst.cpu.size), np.int64))
        return {}, empty
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for t, nt in enumerate(config.catalog):
        sol = h.ffd_single(inst, t)
        if sol is not None:
            out[f"ffd[{nt.name}]"] = sol
    _, duals = h.resource_bound(inst)
    sol = h.ffd_mixed(inst, duals)
    if sol is not None:
        out["ffd[mixed]"] = sol
    out = {k: (h.downsize(inst, *s), s[1]) for k, s in out.items()}
    best = min(out.values(), key=lambda s: h.cost(inst, s[0])) if out else None
    return out, best


def _integer(inst: h.Instance, pool: lp.Pool, cg: lp.CGResult, start, ub: float, deadline: float,
             config: NodeMixConfig, duals: np.ndarray):
    """The pattern model over the generated columns, with CBC: (packing or None, CBC's status)."""
    left = deadline - time.perf_counter()
    if left < 0.2:
        return None, "not run: no time left"
    start_cols = [pool.add(int(t), r) for t, r in zip(*start)] if start is not None else []
    start_count = np.bincount(np.array(start_cols, dtype=np.int64), minlength=pool.size)
    types, rows = pool.arrays()
    # reduced-cost fixing: a column whose reduced cost exceeds (incumbent - LP) is in no cheaper solution
    reduced = inst.price[types] - rows @ cg.pi - cg.lam[types]
    slack = (ub - cg.value) if math.isfinite(ub) else math.inf
    keep = np.flatnonzero((reduced <= slack + 1e-9) | (start_count > 0))
    limit = np.minimum(inst.max_nodes[types[keep]], int(inst.count.sum()))
    prob = pulp.LpProblem("nodemix", pulp.LpMinimize)
    z = [pulp.LpVariable(f"z_{j}", lowBound=0, upBound=int(u), cat=pulp.LpInteger) for j, u in zip(keep, limit)]
    prob += pulp.LpAffineExpression([(v, float(inst.price[types[j]])) for v, j in zip(z, keep)])
    by_class: list[list] = [[] for _ in range(inst.cpu.size)]
    for v, j in zip(z, keep):
        for c in np.flatnonzero(rows[j]):
            by_class[c].append((v, int(rows[j, c])))
    # the master's exchanges, "a slot of a bigger pod holds a smaller one", as continuous flows: without them the
    # generated columns, built around the LP's duals, rarely fit the counts exactly. Integral z admit integral
    # flows (a network matrix), and `finish` realises them by refilling the room freed
    for i, (c, d) in enumerate(zip(*inst.dominance)):
        y = pulp.LpVariable(f"y_{i}", lowBound=0)
        by_class[d].append((y, 1))
        by_class[c].append((y, -1))
    for c, terms in enumerate(by_class):
        prob += pulp.LpAffineExpression(terms) >= int(inst.count[c]), f"cover_{c}"
    for t in np.flatnonzero(inst.max_nodes < h.UNLIMITED):
        terms = [(v, 1) for v, j in zip(z, keep) if types[j] == t]
        if terms:
            prob += pulp.LpAffineExpression(terms) <= int(inst.max_nodes[t]), f"max_nodes_{t}"
    for v, j in zip(z, keep):
        v.setInitialValue(int(start_count[j]))
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=max(left, 1.0), gapRel=config.gap,
                                 warmStart=start is not None))
    # PuLP reports "Optimal" for a solution found before the time limit too; its solution status tells them apart
    status = {pulp.LpSolutionOptimal: f"optimal within gap {config.gap:g} (generated columns)",
              pulp.LpSolutionIntegerFeasible: "time limit, solution found"}.get(
        prob.sol_status, f"no solution ({pulp.LpStatus[prob.status]})")
    values = [v.varValue for v in z]
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible) or any(
            x is None for x in values):
        return None, status
    counts = np.rint(values).astype(np.int64)
    return h.finish(inst, np.repeat(types[keep], counts), np.repeat(rows[keep], counts, axis=0), duals), status


def _result(inst, members, config, sol, status, method, bound, kind, rbound, heur, t0, cbc_status="not run",
            iterations=0, columns=0, notes=()) -> NodeMixResult:
    types, content = sol
    cat = config.catalog
    order = np.lexsort((-(content @ inst.cpu), types))
    types, content = types[order], content[order]
    seen: dict[int, int] = {}
    names = []
    for t in types:
        seen[int(t)] = seen.get(int(t), 0) + 1
        names.append(f"{cat[t].name}-{seen[int(t)]}")
    cpu, mem = content @ inst.cpu, content @ inst.mem
    nodes = pd.DataFrame({
        "node": names, "node_type": [cat[t].name for t in types], "pods": content.sum(axis=1),
        "cpu_requested": cpu / 1000.0, "cpu_allocatable": inst.cap_cpu[types] / 1000.0,
        "memory_requested": mem, "memory_allocatable": inst.cap_mem[types],
        "cpu_utilisation": cpu / inst.cap_cpu[types], "memory_utilisation": mem / inst.cap_mem[types],
        "price_per_hour": inst.price[types]})
    pods, reps, where = [], [], []
    nxt = [0] * len(members)
    for i, row in enumerate(content):
        for c in np.flatnonzero(row):
            for name, r in members[c][nxt[c]:nxt[c] + row[c]]:
                pods.append(name)
                reps.append(r)
                where.append(i)
            nxt[c] += int(row[c])
    where = np.array(where, dtype=np.int64)
    assignment = pd.DataFrame({"pod": pods, "replica": np.array(reps, dtype=np.int64),
                               "node": np.array(names, dtype=object)[where] if where.size else [],
                               "node_type": nodes["node_type"].to_numpy()[where] if where.size else []})
    value = h.cost(inst, types)
    counts = {cat[t].name: int((types == t).sum()) for t in range(len(cat)) if (types == t).any()}
    costs = {k: h.cost(inst, s[0]) for k, s in heur.items()}
    gap = (value - bound) / value if value > 0 else 0.0
    return NodeMixResult(status, method, value, bound, kind, rbound, gap, min(costs.values(), default=math.nan),
                         costs, counts, nodes, assignment,
                         time.perf_counter() - t0, cbc_status, iterations, columns, config.hours_per_month,
                         tuple(notes))


__all__ = ["DEFAULT_CATALOG", "NodeMixConfig", "NodeMixResult", "NodeType", "Unschedulable",
           "first_fit_decreasing", "gke_reserved_cpu", "gke_reserved_memory_gib", "pack"]
