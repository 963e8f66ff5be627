"""The cost optimizer on a cluster: right-size every selected container from its stored usage, and propose the
new requests and limits (and node-pool bounds, `cost_nodes`) through the actuator.

1. `cost_inputs.load_inputs`: per-pod usage over the last `cost.history_days`, and the requests, limits and
   replicas running now (read from the cluster's API; the cluster is never written here);
2. `rightsize.rightsize` over all containers at once (the PuLP model; CPU risk kept out of sample; the memory
   request at the history's p99.9 and the limit above its peak with a margin, both raised by OOM kills;
   namespace budgets and quotas; `cost.rightsize`);
3. each container's monthly OpenCost cost now and after (`opencost.allocation_cost` over the history, per pod,
   times its mean pods, scaled to a 730-hour month), and the share of intervals its CPU usage was above the
   request now against the risk the new request is expected to keep;
4. a `ResourcesChange` per container whose cost moves by at least `cost.min_saving_per_month` (or whose request
   rises for risk), stepped toward the recommendation within the actuator's guardrails (max step, request bounds;
   the next run continues a stepped change) and saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.actuator.policy import Guardrails
from aiops.actuator.recommendation import Evidence, Proposal, ResourcesChange
from aiops.optimize.config import CostSettings
from aiops.optimize.cost_inputs import Container, CostInputs, as_dict, load_inputs
from aiops.optimize.opencost import allocation_cost
from aiops.optimize.rightsize import HOURS_PER_MONTH, RightsizeConfig, RightsizeResult, rightsize

if TYPE_CHECKING:  # pragma: no cover
    from aiops.actuator.kube import Cluster
    from aiops.settings import Settings

SOURCE = "cost"
FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")


@dataclass
class ContainerPlan:
    """One container: what runs now, what the optimiser recommends, what is proposed (stepped), and the money."""

    container: Container
    status: str = "skipped"  # recommended | unchanged | skipped
    reason: str = ""
    recommended: dict[str, float | None] = field(default_factory=dict)
    proposed: dict[str, float] = field(default_factory=dict)  # the fields the change sets (empty: no proposal)
    note: str = ""  # how the proposal was stepped, or why there is none
    cost_now: float = math.nan  # $ per month, all pods
    cost_new: float = math.nan
    cpu_risk_now: float = math.nan  # share of intervals above the current request (the last window)
    cpu_risk_expected: float = math.nan

    @property
    def saving(self) -> float:
        return self.cost_now - self.cost_new

    def as_dict(self) -> dict[str, Any]:
        nan = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
        return {**as_dict(self.container), "status": self.status, "reason": self.reason,
                "recommended": self.recommended, "proposed": self.proposed, "note": self.note,
                **{k: nan(getattr(self, k)) for k in ("cost_now", "cost_new", "cpu_risk_now", "cpu_risk_expected")},
                "saving": nan(self.saving)}


@dataclass
class CostPlan:
    """Every container's plan, the solve, and the totals (dollars per month)."""

    containers: list[ContainerPlan]
    skipped: dict[str, str]
    solve: dict[str, Any]
    start: pd.Timestamp
    end: pd.Timestamp
    pool_inputs: dict[str, Any] = field(default_factory=dict)  # cost_inputs.Pool by name: the pools as they run
    pools: list[Any] = field(default_factory=list)  # cost_nodes.PoolPlan
    mix: dict[str, Any] = field(default_factory=dict)  # the cheapest catalog mix for the right-sized pods

    def totals(self) -> dict[str, float]:
        """Monthly cost now and with every recommendation (and with only the proposed steps' targets)."""
        done = [c for c in self.containers if c.status != "skipped"]
        return {"containers": len(done), "proposed": sum(bool(c.proposed) for c in done),
                "cost_now": float(sum(c.cost_now for c in done)), "cost_new": float(sum(c.cost_new for c in done)),
                "saving": float(sum(c.saving for c in done))}

    def as_dict(self) -> dict[str, Any]:
        return {"history": [str(self.start), str(self.end)], "solve": self.solve, "totals": self.totals(),
                "containers": [c.as_dict() for c in self.containers], "skipped": self.skipped,
                "pools": [p.as_dict() for p in self.pools], "mix": self.mix}




def plan_costs(settings: Settings, cfg: CostSettings | None = None, *, cluster: Cluster | None = None) -> CostPlan:
    """Right-size the selected containers of `settings.cluster_name` (see the module docstring)."""
    from aiops.actuator.kube import Cluster as _Cluster

    cfg = cfg or settings.cost
    rcfg = cfg.rightsize
    own = cluster is None
    cluster = cluster or _Cluster(settings.resolved_kubeconfig, settings.kube_context,
                                  timeout_s=settings.actuator.request_timeout_s)
    try:
        inputs = load_inputs(settings, cluster, cfg)
    finally:
        if own:
            cluster.close()
    result = rightsize(inputs.usage, rcfg, classes={s: c.cls for s, c in inputs.containers.items()},
                       namespaces={s: c.namespace for s, c in inputs.containers.items()},
                       ooms={s: c.ooms for s, c in inputs.containers.items()}, current=inputs.current())
    plans = _plans(inputs, result, rcfg, settings.actuator.guardrails, cfg, settings.train.step_seconds)
    solve = {"status": result.status, "objective": result.objective, "bound": result.bound, "gap": result.gap,
             "seconds": round(result.solve_seconds, 3), "notes": list(result.notes)}
    return CostPlan(plans, inputs.skipped, solve, inputs.start, inputs.end, inputs.pools)


def _monthly(requests: pd.DataFrame, usage: pd.DataFrame, rcfg: RightsizeConfig, step_s: int) -> pd.Series:
    """Per series, the OpenCost cost of one pod per 730-hour month over the history's intervals."""
    c = allocation_cost(requests, usage, step=pd.Timedelta(seconds=step_s), **rcfg.prices.model_dump())
    return (c["total_cost"] / c["hours"].where(c["hours"] > 0) * HOURS_PER_MONTH).set_axis(c["series"])


def _plans(inputs: CostInputs, result: RightsizeResult, rcfg: RightsizeConfig, g: Guardrails, cfg: CostSettings,
           step_s: int) -> list[ContainerPlan]:
    rec = result.recommendations.set_index("series")
    cur = inputs.current().set_index("series")
    now = _monthly(cur.reset_index(), inputs.usage, rcfg, step_s)
    new = _monthly(rec.reset_index()[["series", "cpu_request", "memory_request"]], inputs.usage, rcfg, step_s)
    last = inputs.usage[inputs.usage["ts"] > inputs.end - pd.Timedelta(rcfg.window)]
    plans = []
    for series, c in inputs.containers.items():
        p = ContainerPlan(c)
        plans.append(p)
        r = rec.loc[series]
        if not np.isfinite(r["cpu_request"]):
            p.reason = str(r["why"])
            continue
        p.status, p.reason = "recommended", str(r["why"])
        p.recommended = {k: (None if not np.isfinite(r[k]) else float(r[k])) for k in FIELDS}
        p.cost_now, p.cost_new = float(now[series]) * c.pods_mean, float(new[series]) * c.pods_mean
        cpu = last.loc[last["series"] == series, "cpu"].dropna()
        if np.isfinite(c.cpu_request) and len(cpu):
            p.cpu_risk_now = float((cpu > c.cpu_request).mean())
        p.cpu_risk_expected = float(r["cpu_risk_expected"])
        p.proposed, p.note = _step(c, p.recommended, g)
        raises = any(p.proposed.get(k, 0) > (getattr(c, k) if np.isfinite(getattr(c, k)) else math.inf)
                     for k in ("cpu_request", "memory_request"))
        if p.proposed and abs(p.saving) < cfg.min_saving_per_month and not raises:
            p.proposed, p.note = {}, (f"no proposal: moves the cost by ${abs(p.saving):.2f}/month, under "
                                      f"cost.min_saving_per_month ${cfg.min_saving_per_month:g}")
        if not p.proposed:
            p.status = "unchanged"
    return plans


def _step(c: Container, rec: dict[str, float | None], g: Guardrails) -> tuple[dict[str, float], str]:
    """The fields to set, each moved toward its recommendation by at most one guarded step and kept within the
    request bounds; a limit is never left below its request. The note says what was held back."""
    bounds = {"cpu_request": (g.cpu_request_min, g.cpu_request_max),
              "memory_request": (g.memory_request_min, g.memory_request_max)}
    out, held = {}, []
    for k in ("cpu_request", "memory_request", "memory_limit", "cpu_limit"):
        want, old = rec.get(k), getattr(c, k)
        if want is None:  # the model sets no limit: keep today's, raised if the new request would pass it
            continue
        lo, hi = bounds.get(k, (0.0, math.inf))
        v = min(max(want, lo), hi)
        if np.isfinite(old) and old > 0:
            v = min(max(v, old * (1 - g.max_step_down)), old * (1 + g.max_step_up))
        if not math.isclose(v, want, rel_tol=1e-6):
            held.append(f"{k} {_fmt(k, want)} reached over several runs ({_fmt(k, v)} now)")
        if not (np.isfinite(old) and math.isclose(v, old, rel_tol=g.min_relative_change)):
            out[k] = v
    for r in ("cpu", "memory"):
        req = out.get(f"{r}_request", getattr(c, f"{r}_request"))
        lim = out.get(f"{r}_limit", getattr(c, f"{r}_limit"))
        if np.isfinite(lim) and np.isfinite(req) and lim < req:
            out[f"{r}_limit"] = req  # Kubernetes rejects a request above its limit
    return out, "; ".join(held)


def _fmt(k: str, v: float) -> str:
    return f"{v * 1000:.0f}m" if k.startswith("cpu") else f"{v / 2**20:.0f}Mi"


def proposals(settings: Settings, plan: CostPlan, *, run_id: str) -> list[Proposal]:
    """One `ResourcesChange` per container with a proposal (node pools: `cost_nodes.pool_proposals`)."""
    out = []
    for p in plan.containers:
        if not p.proposed:
            continue
        c = p.container
        effect = (f"${p.cost_now:.2f} -> ${p.cost_new:.2f} per month at {c.pods_mean:.1f} pods (OpenCost, "
                  f"{plan.start:%Y-%m-%d}..{plan.end:%Y-%m-%d}); CPU above the request {p.cpu_risk_now:.1%} of the "
                  f"time now, expected {p.cpu_risk_expected:.1%}")
        reason = p.reason + (f"; {p.note}" if p.note else "")
        out.append(Proposal(
            target=c.target, change=ResourcesChange(**p.proposed), reason=reason[:2000],
            evidence=Evidence(source=SOURCE, details={
                "recommended": p.recommended, "current": {k: _none(getattr(c, k)) for k in FIELDS},
                "cost_now": round(p.cost_now, 4), "cost_new": round(p.cost_new, 4),
                "cpu_risk_now": _none(p.cpu_risk_now), "cpu_risk_expected": _none(p.cpu_risk_expected),
                "class": c.cls, "ooms": c.ooms, "solve": plan.solve}),
            expected_effect=effect[:2000], run_id=run_id))
    return out


def _none(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v
