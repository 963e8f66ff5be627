"""Right-sizing by a PuLP model over all workloads at once that keeps the CPU risk it promises out of sample.

`rightsize(usage, config)` picks for every series one CPU request from a millicore grid (binary x[w, c]) and one
memory request from a MiB grid (binary y[w, m]; both geometric, 2 % apart, multiples of 5 m and 8 MiB: 10 % apart
cost 3 % more on Bitbrains, for a realised risk further below the target) minimising the OpenCost cost
(max(request, usage) x price over the history's intervals, scaled to a 730-hour month; `opencost.Prices`), plus an
optional price on unmet CPU, subject to:
- CPU: each workload's *expected out-of-sample* share of intervals with usage above the request <= its class's
  target (`cpu_risk`). The in-sample share is not used for that: a request at the in-sample p95 is exceeded more
  often afterwards. `rightsize_risk` estimates each candidate's later risk by a rolling backtest inside the history
  (train on a window, measure the next horizon, several splits; see its docstring), i.e. it learns per workload,
  shrunk towards its class, how far the in-sample level must be raised, and applies that to the last window;
- memory: the request carries the cost and the limit the safety. Requests are what is scheduled and paid for
  (OpenCost charges max(request, usage)); the limit only decides when the kernel kills the container. So the request
  is the `memory_quantile` (default p99.9) of the whole history's samples x (1 + `memory_margin`), and the limit is
  never below the history's *peak* x (1 + `memory_limit_margin`) nor below the request x `memory_limit_ratio`. Each
  OOM kill of the series adds `oom_margin_step` to both margins. The decision and its figures are below;
- optional namespace budgets ($ per month) and quotas (requested cores / GiB). Infeasible ones raise
  `InfeasibleBudget` naming the namespace and the shortfall; they are never dropped.

Memory on Bitbrains VMs 1-100 (`benchmarks/rightsize.py`: July -> August, July-August -> September): OpenCost
memory cost, memory risk (share of intervals above the request: mean, p95 over VMs), OOM proxy (VMs ever above
the limit; the limit at the history's peak x 1.5 unless said):     August                 September
    peak x 1.15, limit = request   $4,740  0.01 % (p95 0.05 %)  19    $4,777  0.02 % (p95 0.05 %)  16
    peak x 1.15                    $4,740  0.01 % (p95 0.05 %)   6    $4,777  0.02 % (p95 0.05 %)   9
    peak                           $4,116  0.08 % (p95 0.13 %)   6    $4,152  0.10 % (p95 0.32 %)   9
    p99.9 (the default)            $3,321  0.82 % (p95 0.58 %)   6    $3,268  0.49 % (p95 2.93 %)   9
    p99                            $2,316  2.24 % (p95 4.22 %)   6    $2,199  1.84 % (p95 6.04 %)   9
    14-day peak                    $3,498  0.73 % (p95 0.27 %)   6    $3,707  1.28 % (p95 2.15 %)   9
    KRR: 14-day peak x 1.15        $4,022  0.39 % (p95 0.14 %)  49    $4,263  1.02 % (p95 0.22 %)  40 (limit = request)
    VPA target                     $2,431  4.53 % (p95 36.9 %)  80    $2,904  1.38 % (p95 6.74 %)  87 (limit = request)
A two-month peak is set by minutes of spikes that a request covering them pays for all month: the p99.9 leaves
out the top 0.1 % of samples (1.5 hours in two months), costs a fifth less than the peak, and has 0.5-0.8 % of
intervals above the request, not killed (the limit covers them) but first to be evicted if a node runs short of
memory: the risk the request prices. A recent window (KRR's 14 days) misses the levels memory returns to after
weeks, and is riskier for more money. The limit: at the peak x 1.15, 16-21 VMs exceed it the next month, x 1.3
11-13, x 1.5 6-9; inside July-August alone (splits July 18-30, 30 days ahead) the peak so far x 1.15 was exceeded
by 22-30 % of the VMs, x 1.5 by 7-11 %. A limit costs nothing in OpenCost; one far above the request lets a node
be overcommitted, which the memory risk measures.

Without budgets the problem separates per workload; dominated candidates (infeasible, or costlier with no lower
objective) are pruned first, so thousands of workloads solve in seconds, and the model is still one model since
budgets couple workloads. Input: the long usage frame of `rightsize_baselines` (history only: the caller must not
pass the evaluation period; `now` cuts it explicitly). Output: the baselines' columns plus `cpu_risk_in_sample`,
`cpu_risk_expected`, `memory_peak`, `monthly_cost`; the `why` column is written by `rightsize_explain`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
import pulp

from aiops.errors import AiopsError, InfeasibleBudget, SchemaError, UnknownNameError
from aiops.optimize import rightsize_risk as risk
from aiops.optimize.config import RightsizeConfig
from aiops.optimize.opencost import GIB
from aiops.optimize.rightsize_baselines import MIB, OUTPUT_COLUMNS, check_current, check_usage
from aiops.optimize.rightsize_explain import recommendations_frame

HOURS_PER_MONTH = 730.0  # OpenCost's month
EXTRA_COLUMNS = ("cpu_risk_in_sample", "cpu_risk_expected", "memory_peak", "monthly_cost")


def grid(lo: float, hi: float, ratio: float, unit: float) -> np.ndarray:
    """Geometric candidate sizes from `lo` to at least `hi`, rounded to multiples of `unit`, unique and sorted."""
    n = int(np.ceil(np.log(hi / lo) / np.log(ratio))) + 1
    return np.unique(np.maximum(np.round(lo * ratio ** np.arange(n) / unit), 1) * unit)


def cpu_grid(config: RightsizeConfig) -> np.ndarray:
    """CPU candidates in cores (multiples of 5 m)."""
    return grid(config.cpu_min_millicores / 1000, config.cpu_max_cores, config.cpu_ratio, 0.005)


def memory_grid(config: RightsizeConfig) -> np.ndarray:
    """Memory candidates in bytes (multiples of 8 MiB)."""
    return grid(config.memory_min_mib * MIB, config.memory_max_gib * GIB, config.memory_ratio, 8 * MIB)


@dataclass(frozen=True)
class RightsizeResult:
    """The recommendations and how the model was solved (objective and bound in $ per month)."""

    recommendations: pd.DataFrame
    status: str
    objective: float
    bound: float
    gap: float
    solve_seconds: float
    notes: tuple[str, ...] = ()


@dataclass
class _Workload:
    name: str
    cls: str
    namespace: str | None
    ooms: int = 0
    cand: np.ndarray = field(default_factory=lambda: np.zeros(0))  # CPU candidates (cores)
    r_in: np.ndarray = field(default_factory=lambda: np.zeros(0))  # in-sample exceedance on the recent window
    expected: np.ndarray = field(default_factory=lambda: np.zeros(0))  # estimated out-of-sample exceedance
    cost: np.ndarray = field(default_factory=lambda: np.zeros(0))  # monthly CPU cost per candidate over the history
    unmet: np.ndarray = field(default_factory=lambda: np.zeros(0))  # monthly core-hours above it, recent window
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0))  # candidate indices put in the model
    recent_peak: float = np.nan
    mem: float = np.nan  # memory request (bytes)
    mem_limit: float = np.nan
    mem_level: float = np.nan  # the history's memory quantile the request is read from
    mem_cost: float = np.nan
    peak: float = np.nan  # the history's memory peak
    current_cost: float = np.nan
    splits: int = 0
    first: int = 0  # smallest candidate meeting the risk bound
    best: int = 0  # cost optimum without budgets
    chosen: int = 0
    unreachable: bool = False
    undefined: str = ""
    window_days: float = 0.0  # the recent window the CPU level is read from, as far as the data reaches


def rightsize(usage: pd.DataFrame, config: RightsizeConfig | None = None, *,
              classes: Mapping[str, str] | None = None, namespaces: Mapping[str, str] | None = None,
              ooms: Mapping[str, int] | None = None, current: pd.DataFrame | None = None,
              now: pd.Timestamp | None = None) -> RightsizeResult:
    """Recommend CPU / memory requests and limits for every series of `usage` (history only; samples after `now`
    are ignored). `classes`, `namespaces`, `ooms`: optional series -> class / namespace / OOM-kill count.
    `current` (the baselines' `current` columns) adds the expected saving to `why`. See the module docstring."""
    config = config or RightsizeConfig()
    if not isinstance(config, RightsizeConfig):
        raise SchemaError(f"config: expected RightsizeConfig, got {type(config).__name__}")
    u = check_usage(usage)
    if now is not None:
        u, _ = u.within(now, None)
    cls_of = _mapping(classes, "classes", str, u.names)
    ns_of = _mapping(namespaces, "namespaces", str, u.names)
    oom_of = _mapping(ooms, "ooms", int, u.names)
    for name, c in cls_of.items():
        if c not in config.cpu_risk:
            raise UnknownNameError("workload class", c, list(config.cpu_risk))
    if "default" not in config.cpu_risk and len(cls_of) < len(u.names):
        raise SchemaError("cpu_risk: some series have no class and there is no 'default' target; add "
                          "'default' to cpu_risk or give every series a class")
    limited = set(config.budgets) | set(config.cpu_quota_cores) | set(config.memory_quota_gib)
    unknown = sorted(limited - set(ns_of.values()))
    if unknown:
        raise SchemaError(f"budgets/quotas name namespace(s) {unknown} that no series belongs to (namespaces has "
                          f"{sorted(set(ns_of.values()))}); pass `namespaces` mapping each series to its namespace")
    if any(v < 0 for v in oom_of.values()):
        raise SchemaError(f"ooms: counts must be >= 0, got {({k: v for k, v in oom_of.items() if v < 0})}")
    cur = check_current(current, u.names) if current is not None else None
    work, notes = _workloads(u, config, cls_of, ns_of, oom_of, limited, cur)
    _check_limits(work, config)
    t0 = time.perf_counter()
    status, objective, bound, gap = _solve(work, config)
    seconds = time.perf_counter() - t0
    frame = recommendations_frame(work, config, cur, EXTRA_COLUMNS)
    return RightsizeResult(frame, status, objective, bound, gap, seconds, tuple(notes))


def _mapping(m, name: str, kind: type, names: np.ndarray) -> dict:
    if m is None:
        return {}
    if isinstance(m, pd.Series):
        m = m.to_dict()
    if not isinstance(m, Mapping):
        raise SchemaError(f"{name}: expected a mapping series -> {kind.__name__} (dict or pandas Series), "
                          f"got {type(m).__name__}")
    known = set(names)
    out = {}
    for k, v in m.items():
        if k not in known:
            continue  # mappings usually cover the whole cluster; usage may hold a subset
        if kind is int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SchemaError(f"{name}: value for {k!r} must be a whole number, got {v!r}")
            v = int(v)
        elif not isinstance(v, str):
            raise SchemaError(f"{name}: value for {k!r} must be a string, got {v!r}")
        out[k] = v
    return out

def _workloads(u, config: RightsizeConfig, cls_of: dict, ns_of: dict, oom_of: dict, limited: set,
               cur: dict | None) -> tuple[list[_Workload], list[str]]:
    """Candidates, costs and expected risks per workload; pruned to the ones the model needs."""
    same = u.code[1:] == u.code[:-1]
    steps = np.diff(u.ts)[same]
    ok = np.isfinite(u.cpu)
    if steps.size == 0 or not ok.any():
        raise SchemaError("usage: no series has two CPU samples; pass at least `min_points` samples per series "
                          "on a regular grid")
    end, start = int(u.ts[ok].max()), int(u.ts[ok].min())
    splits = risk.make_splits(start, end, pd.Timedelta(config.window).value, pd.Timedelta(config.horizon).value,
                              config.n_splits)
    notes = []
    if splits.shrunk:
        notes.append(f"history of {(end - start) / 864e11:.1f} days is short for window + horizon: backtest on "
                     f"{splits.window / 864e11:.1f}-day windows and {splits.horizon / 864e11:.1f}-day horizons")
    cgrid, mgrid = cpu_grid(config), memory_grid(config)
    pc, pm = config.prices.cpu_price_per_core_hour, config.prices.memory_price_per_gib_hour
    work, tests, deploy = [], [], []
    for i, name in enumerate(u.names):
        a, b = u.start[i], u.start[i + 1]
        keep = np.isfinite(u.cpu[a:b])
        ts, cpu = u.ts[a:b][keep], u.cpu[a:b][keep]
        mem = u.memory[a:b][np.isfinite(u.memory[a:b])]
        w = _Workload(name, cls_of.get(name, "default"), ns_of.get(name), ooms=oom_of.get(name, 0))
        work.append(w)
        recent = np.sort(cpu[ts > end - splits.window])
        if ts.size:
            w.window_days = (end - max(end - splits.window, int(ts.min()))) / 864e11
        if min(cpu.size, mem.size, recent.size) < config.min_points:
            w.undefined = (f"not enough data: {cpu.size} CPU and {mem.size} memory samples, {recent.size} in the "
                           f"last window; need {config.min_points}")
            tests.append(None)
            deploy.append(None)
            continue
        lo = max(int(np.searchsorted(cgrid, cpu.min(), side="right")) - 1, 0)
        hi = min(int(np.searchsorted(cgrid, cpu.max() * config.max_headroom)), cgrid.size - 1)
        w.cand = cand = cgrid[lo:hi + 1]
        srt = np.sort(cpu)
        w.cost = _mean_max(srt, cand) * HOURS_PER_MONTH * pc
        w.unmet = (_mean_max(recent, cand) - cand) * HOURS_PER_MONTH
        w.r_in = 1.0 - np.searchsorted(recent, cand, side="right") / recent.size
        w.recent_peak = float(recent[-1])
        _memory(w, mem, mgrid, config)
        w.mem_cost = w.mem / GIB * HOURS_PER_MONTH * pm
        if cur is not None:
            creq, mreq = (np.nan_to_num(cur[k][i]) for k in ("cpu_request", "memory_request"))
            w.current_cost = (_mean_max(srt, np.array([creq]))[0] * pc
                              + np.fmax(mreq, mem).mean() / GIB * pm) * HOURS_PER_MONTH
        tests.append(risk.backtest(ts, cpu, cand, splits, config.min_points))
        deploy.append(risk.scores(recent, cand))
    priors = {c: risk.class_curve([t for t, w in zip(tests, work) if t is not None and w.cls == c])
              for c in {w.cls for w in work}}
    pen = config.unmet_cpu_price_per_core_hour
    for w, bt, sc in zip(work, tests, deploy):
        if w.undefined:
            continue
        w.expected, w.splits = risk.expected_risk(bt, priors[w.cls], sc, config.prior_splits)
        feas, w.unreachable = risk.feasible(w.expected, config.cpu_risk[w.cls])
        if w.unreachable:
            notes.append(f"{w.name}: CPU risk target {config.cpu_risk[w.cls]:.1%} unreachable within "
                         f"{config.max_headroom:g} x peak; the least expected, {w.expected[-1]:.1%}, from "
                         f"{w.cand[feas[0]]:g} cores")
        obj = w.cost + pen * w.unmet
        w.first, w.best = int(feas[0]), int(feas[np.argmin(obj[feas])])
        if w.namespace in limited:  # keep the Pareto front of (budget use, objective) up to the optimum
            front, low = [], np.inf
            for j in feas[feas <= w.best]:
                if obj[j] < low - 1e-12:
                    front.append(int(j))
                    low = obj[j]
            w.keep = np.array(front)
        else:
            w.keep = np.array([w.best])
    return work, notes


def _memory(w: _Workload, mem: np.ndarray, mgrid: np.ndarray, config: RightsizeConfig) -> None:
    """The memory rule of the module docstring: request from the history's quantile, limit from its peak."""
    bump = config.oom_margin_step * w.ooms
    w.peak = float(mem.max())
    w.mem_level = float(np.quantile(mem, config.memory_quantile, method="higher"))  # an observed sample
    need = w.mem_level * (1 + config.memory_margin + bump)
    j = int(np.searchsorted(mgrid, need))
    w.mem = float(mgrid[j]) if j < mgrid.size else float(np.ceil(need / (8 * MIB)) * 8 * MIB)
    limit = max(w.peak * (1 + config.memory_limit_margin + bump), w.mem * config.memory_limit_ratio)
    w.mem_limit = float(np.ceil(limit / MIB) * MIB)


def _mean_max(srt: np.ndarray, c: np.ndarray) -> np.ndarray:
    """mean over samples of max(c, usage) for each c, from the sorted usage."""
    csum = np.r_[0.0, np.cumsum(srt)]
    k = np.searchsorted(srt, c, side="right")
    return (c * k + csum[-1] - csum[k]) / srt.size


def _check_limits(work: list[_Workload], config: RightsizeConfig) -> None:
    """Raise `InfeasibleBudget` for every namespace whose cheapest feasible choice breaks its budget or quota."""
    problems = []
    for kind, limits, unit in (("budget", config.budgets, "$/month"), ("CPU quota", config.cpu_quota_cores, "cores"),
                               ("memory quota", config.memory_quota_gib, "GiB")):
        for ns, limit in sorted(limits.items()):
            ws = [w for w in work if w.namespace == ns and not w.undefined]
            need = sum(w.cost[w.keep[0]] + w.mem_cost if kind == "budget" else
                       w.cand[w.keep[0]] if kind == "CPU quota" else w.mem / GIB for w in ws)
            if need > limit * (1 + 1e-9):
                problems.append(f"namespace {ns!r}: {kind} {limit:.4g} {unit}, but its {len(ws)} workload(s) need "
                                f"at least {need:.4g} {unit} at their CPU risk targets and memory margins "
                                f"(short by {need - limit:.4g} {unit}, {need / max(limit, 1e-12) - 1:.0%})")
    if problems:
        raise InfeasibleBudget("; ".join(problems) + ". Raise the limit, or loosen `cpu_risk` / `memory_margin` "
                               "for the classes in that namespace")


def _solve(work: list[_Workload], config: RightsizeConfig) -> tuple[str, float, float, float]:
    """Build the one MILP, solve its LP relaxation (the bound) and then the MILP with CBC; set each `chosen`."""
    prob = pulp.LpProblem("rightsize", pulp.LpMinimize)
    pen = config.unmet_cpu_price_per_core_hour
    objective, budget, cpu_q, mem_q = [], {}, {}, {}
    xs = {}
    for wi, w in enumerate(work):
        if w.undefined:
            continue
        x = [pulp.LpVariable(f"x_{wi}_{j}", cat=pulp.LpBinary) for j in w.keep]
        y = pulp.LpVariable(f"y_{wi}_0", cat=pulp.LpBinary)  # memory: the only undominated size
        xs[wi] = x
        prob += pulp.LpAffineExpression([(v, 1) for v in x]) == 1, f"one_cpu_{wi}"
        prob += pulp.LpAffineExpression([(y, 1)]) == 1, f"one_memory_{wi}"
        objective += [(v, w.cost[j] + pen * w.unmet[j]) for v, j in zip(x, w.keep)] + [(y, w.mem_cost)]
        budget.setdefault(w.namespace, []).extend([(v, w.cost[j]) for v, j in zip(x, w.keep)] + [(y, w.mem_cost)])
        cpu_q.setdefault(w.namespace, []).extend([(v, w.cand[j]) for v, j in zip(x, w.keep)])
        mem_q.setdefault(w.namespace, []).append((y, w.mem / GIB))
    if not xs:
        return "no workload with enough data", 0.0, 0.0, 0.0
    prob += pulp.LpAffineExpression(objective)
    for limits, terms, label in ((config.budgets, budget, "budget"), (config.cpu_quota_cores, cpu_q, "cpu_quota"),
                                 (config.memory_quota_gib, mem_q, "memory_quota")):
        for ns, limit in limits.items():
            prob += pulp.LpAffineExpression(terms.get(ns, [])) <= limit, f"{label}_{len(prob.constraints)}"
    prob.solve(pulp.PULP_CBC_CMD(msg=False, mip=False, timeLimit=config.time_limit_s))
    bound = float(pulp.value(prob.objective))
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=config.time_limit_s, gapRel=config.gap))
    status = pulp.LpStatus[prob.status]
    for wi, x in xs.items():
        values = [v.varValue for v in x]
        if any(v is None for v in values):
            raise AiopsError(f"CBC returned no solution (status {status}) within time_limit_s="
                             f"{config.time_limit_s:g}; raise time_limit_s or gap")
        work[wi].chosen = int(work[wi].keep[int(np.argmax(values))])
    value = float(pulp.value(prob.objective))
    return status, value, bound, (value - bound) / max(abs(value), 1e-12)


__all__ = ["EXTRA_COLUMNS", "HOURS_PER_MONTH", "InfeasibleBudget", "OUTPUT_COLUMNS", "RightsizeConfig",
           "RightsizeResult", "cpu_grid", "memory_grid", "rightsize"]
