"""Tune the HPAs of a cluster on their own recorded demand, and propose the chosen settings through the actuator.

For each selected workload with an HPA (the busiest first, at most `tune.max_workloads`):
1. its stored demand over the last `tune.history_days`, on a 1-minute grid (each stored step held for its length;
   gaps carry the last value);
2. a `WorkloadModel` of its pods from what the cluster and the data say: CPU per request and idle CPU fitted on the
   stored CPU and demand (`estimate_capacity`), the container's CPU request and limit from the Deployment;
   the latency model (service time, SLO) and the start-up delay are assumptions from `tune` settings;
3. the HPA running now as the baseline, then NSGA-II (`aiops.optimize.tuner`) with the configured rule;
4. a recommendation when the chosen point beats the current settings by at least `tune.min_gain`: an `HPAChange`
   on the HPA (the CPU request, when it changes, as a `ResourcesChange` on the Deployment).
`log_to_mlflow` records each workload's search: parameters, the before/after objectives, the Pareto front as a
plot and every evaluated candidate as a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from aiops.actuator.recommendation import Evidence, HPAChange, Proposal, ResourcesChange, Target
from aiops.errors import SchemaError
from aiops.optimize.config import TuneSettings
from aiops.optimize.prescale_inputs import CapacityError, estimate_capacity, latest_ts, load_metrics, selected
from aiops.optimize.tuner import Candidate, SearchSpace, TunerConfig, TuneResult, tune
from aiops.optimize.whatif import WorkloadModel

if TYPE_CHECKING:  # pragma: no cover
    from aiops.settings import Settings

FINE_S = 60


@dataclass
class WorkloadTuning:
    """One workload's tuning: what runs now, what was chosen, the expected effect (or why it was skipped)."""

    namespace: str
    workload: str
    container: str
    hpa: str | None = None
    status: str = "skipped"  # tuned | skipped
    reason: str = ""
    result: TuneResult | None = None
    current: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    propose: bool = False
    model: WorkloadModel | None = None
    days: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "workload": self.workload, "hpa": self.hpa, "status": self.status,
                "reason": self.reason, "current": self.current, "chosen": self.chosen, "before": self.before,
                "after": self.after, "propose": self.propose, "days": self.days,
                "seconds": round(self.result.seconds, 1) if self.result else None,
                "evaluations": len(self.result.evaluated) if self.result else 0}


def tune_workloads(settings: Settings, cfg: TuneSettings | None = None, *,
                   progress: Callable[[str, int, int], None] | None = None) -> list[WorkloadTuning]:
    """Tune the selected HPAs of `settings.cluster_name` (skipped ones say why)."""
    from aiops.actuator.kube import Cluster
    cfg = cfg or settings.tune
    latest = latest_ts(settings, cfg.metric)
    since = latest - pd.Timedelta(days=cfg.history_days)
    panel = load_metrics(settings, (cfg.metric, "cpu_usage", "replicas_available"), since)
    panel = panel.rename(columns={cfg.metric: "request_rate"})
    try:  # latency, when stored, tells the service time (see _service_time)
        lat = load_metrics(settings, ("latency_p99",), since).rename(columns={"value": "latency_p99"})
        panel = panel.merge(lat[["series", "ts", "latency_p99"]], on=["series", "ts"], how="left")
    except SchemaError:
        pass
    ids = [s for s in panel["series"].unique() if selected(s, settings.cluster_name, cfg.namespaces, cfg.workloads)]
    busy = panel[panel["series"].isin(ids)].groupby("series")["request_rate"].mean().sort_values(ascending=False)
    cluster = Cluster(settings.resolved_kubeconfig, settings.kube_context, timeout_s=settings.actuator.request_timeout_s)
    out: list[WorkloadTuning] = []
    try:
        for sid in busy.index:
            _, ns, wl, ctr = sid.split("/", 3)
            hpa_name = cluster.hpa_for(ns, wl)
            if not hpa_name:
                continue  # the tuner tunes HPAs; a workload without one is pre-scaling's
            if sum(t.status == "tuned" for t in out) >= cfg.max_workloads:
                out.append(WorkloadTuning(ns, wl, ctr, hpa_name, reason=f"over tune.max_workloads ({cfg.max_workloads})"))
                continue
            row = WorkloadTuning(ns, wl, ctr, hpa_name)
            try:
                _tune_one(row, panel[panel["series"] == sid], cluster, settings, cfg, progress)
            except (CapacityError, SchemaError, ValueError) as exc:
                row.status, row.reason = "skipped", f"not tuned: {exc}"
            out.append(row)
    finally:
        cluster.close()
    return out


def _tune_one(row: WorkloadTuning, frame: pd.DataFrame, cluster, settings: Settings, cfg: TuneSettings,
              progress: Callable[[str, int, int], None] | None) -> None:
    from aiops.actuator.changes import parse_quantity
    from aiops.sim.apiserver.autoscaling import hpa_from_v2

    dep = cluster.read_deployment(row.namespace, row.workload)
    hpa_obj = cluster.read(Target(cluster=settings.cluster_name, namespace=row.namespace,
                                  kind="HorizontalPodAutoscaler", name=row.hpa))
    _, hpa = hpa_from_v2(hpa_obj, row.hpa, 0.1)
    res = next((c.get("resources") or {} for c in dep["spec"]["template"]["spec"]["containers"]
                if c.get("name") == row.container), {})
    req, lim = ((res.get(k) or {}).get("cpu") for k in ("requests", "limits"))
    if req is None:
        raise SchemaError(f"container {row.container} of {row.namespace}/{row.workload} has no CPU request")
    request = parse_quantity(req)
    limit = parse_quantity(lim) if lim else None
    fit = estimate_capacity(frame, cpu_request_per_pod=request, target_utilization=hpa.target_cpu_utilization
                            if hpa.target_cpu_utilization <= 1 else 1.0, cpu_limit_per_pod=limit)
    model = WorkloadModel(cpu_per_request=fit.cores_per_request, cpu_idle=fit.idle_cores_per_pod, cpu_request=request,
                          cpu_limit=limit or max(1.0, request), service_time_s=_service_time(frame, cfg),
                          slo_latency_s=cfg.slo_latency_s, startup_delay_s=cfg.startup_delay_s)
    demand = fine_demand(frame, settings.train.step_seconds)
    warm = int(cfg.warmup_hours * 60)
    if len(demand) < warm + 6 * 60:
        raise SchemaError(f"{len(demand)} minutes of demand stored; need the warm-up ({warm}) plus 6 hours")
    space = SearchSpace.for_demand(demand[warm:], model)
    # requests the actuator would apply: within one guarded step of today's, and never above the limit
    g = settings.actuator.guardrails
    lo = max(0.05, request * (1 - g.max_step_down), request / 2)
    hi = min(request * (1 + g.max_step_up), limit or math.inf)
    space = space.model_copy(update={"max_replicas": max(space.max_replicas, hpa.max_replicas),
                                     # never less room for surges than the HPA running now has over the peak
                                     "min_max_replicas": max(space.min_max_replicas,
                                                             min(hpa.max_replicas, space.max_replicas)),
                                     "max_min_replicas": max(space.max_min_replicas, hpa.min_replicas),
                                     "cpu_request": (round(min(lo, hi), 3), round(hi, 3))})
    tcfg = TunerConfig(budget=cfg.budget, population=cfg.population, seed=cfg.seed, workers=cfg.workers,
                       cost=cfg.cost, rule=cfg.rule, slo_budget=cfg.slo_budget)
    current = Candidate(hpa, request)
    r = tune(demand, model=model, warmup=warm, cfg=tcfg, space=space, baseline=current,
             progress=(lambda d, t: progress(f"{row.namespace}/{row.workload}", d, t)) if progress else None)
    row.status, row.result, row.model, row.days = "tuned", r, model, (len(demand) - warm) / 1440
    row.current, row.chosen = current.as_dict(), r.chosen.candidate.as_dict()
    row.before, row.after = r.default.outcome.as_dict(), r.chosen.outcome.as_dict()
    b, a = r.default.outcome, r.chosen.outcome
    gain_v = (b.violation_minutes - a.violation_minutes) / b.violation_minutes if b.violation_minutes else 0.0
    b_c = r.default.cost(cfg.cost)
    gain_c = (b_c - r.chosen.cost(cfg.cost)) / b_c if b_c else 0.0
    row.propose = r.chosen.candidate is not current and max(gain_v, gain_c) >= cfg.min_gain
    row.reason = (f"{r.rule}: on the last {row.days:.1f} days replayed, {b.violation_minutes:.0f} -> "
                  f"{a.violation_minutes:.0f} SLO-violation minutes and {b.replica_hours:.0f} -> {a.replica_hours:.0f} "
                  f"replica-hours ({len(r.evaluated)} candidates, NSGA-II, seed {cfg.seed})")
    if not row.propose:
        row.reason += f"; no proposal: less than {cfg.min_gain:.0%} better than the current settings"


def _service_time(frame: pd.DataFrame, cfg: TuneSettings) -> float:
    """A request's latency on an idle pod, from the quietest p99 latencies observed (p99 = service x ln 100 in an
    M/M/1 queue at low load); the `tune.service_time_s` assumption when no latency is stored."""
    from aiops.sim.demand import LN100

    p99 = frame["latency_p99"].to_numpy(np.float64) if "latency_p99" in frame else np.array([])
    p99 = p99[np.isfinite(p99) & (p99 > 0)]
    if len(p99) < 12:
        return cfg.service_time_s
    # below the SLO: a workload must be able to meet it when idle, or no setting can
    return float(min(np.percentile(p99, 5) / LN100, 0.9 * cfg.slo_latency_s / LN100))


def fine_demand(frame: pd.DataFrame, step_s: int) -> np.ndarray:
    """The stored demand on a 1-minute grid: each stored step held for its length, gaps carry the last value."""
    s = pd.Series(frame["request_rate"].to_numpy(np.float64), index=pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)))
    s = s.sort_index()
    s = s[~s.index.duplicated()]
    if s.notna().sum() == 0:
        raise SchemaError("no observed demand in the stored history")
    grid = pd.date_range(s.index[0], s.index[-1] + pd.Timedelta(seconds=step_s - FINE_S), freq=f"{FINE_S}s")
    return s.reindex(grid, method="ffill").ffill().bfill().clip(lower=0).to_numpy()


def proposals(settings: Settings, rows: list[WorkloadTuning], *, run_id: str) -> list[Proposal]:
    """An HPAChange (and a ResourcesChange when the CPU request changes) per workload worth changing."""
    out = []
    for r in rows:
        if not r.propose or r.result is None:
            continue
        c = r.result.chosen.candidate
        ev = Evidence(source="tune", model="deap-nsga2", model_version=_deap_version(),
                      details={"before": r.before, "after": r.after, "rule": r.result.rule, "days": round(r.days, 2),
                               "evaluations": len(r.result.evaluated), "assumptions": r.model.model_dump() if r.model
                               else {}})
        effect = (f"expected on the replayed demand: SLO-violation minutes {r.before['violation_minutes']:.0f} -> "
                  f"{r.after['violation_minutes']:.0f}, replica-hours {r.before['replica_hours']:.0f} -> "
                  f"{r.after['replica_hours']:.0f}")
        out.append(Proposal(target=Target(cluster=settings.cluster_name, namespace=r.namespace,
                                          kind="HorizontalPodAutoscaler", name=r.hpa),
                            change=hpa_change(c), reason=f"tuned HPA settings: {r.reason}", evidence=ev,
                            expected_effect=effect, run_id=run_id))
        if not math.isclose(c.cpu_request, r.result.default.candidate.cpu_request, rel_tol=1e-6):
            out.append(Proposal(target=Target(cluster=settings.cluster_name, namespace=r.namespace, kind="Deployment",
                                              name=r.workload, container=r.container),
                                change=ResourcesChange(cpu_request=c.cpu_request),
                                reason=f"CPU request tuned together with its HPA: {r.reason}", evidence=ev,
                                expected_effect=effect, run_id=run_id))
    return out


def hpa_change(c: Candidate) -> HPAChange:
    """The HPA settings of `c` as the actuator's change (behavior policies included where it can set them)."""
    h = c.hpa
    kw: dict[str, Any] = dict(min_replicas=h.min_replicas, max_replicas=h.max_replicas,
                              target_cpu_utilization=max(1, int(round(h.target_cpu_utilization * 100))),
                              scale_up_stabilization_s=h.scale_up.stabilization_window_s,
                              scale_down_stabilization_s=h.scale_down.stabilization_window_s)
    fields = HPAChange.model_fields
    for side, rules in (("up", h.scale_up), ("down", h.scale_down)):
        if f"scale_{side}_policies" in fields:
            kw[f"scale_{side}_policies"] = tuple({"type": p.type, "value": p.value, "period_s": p.period_s}
                                                 for p in rules.policies)
        if f"scale_{side}_select" in fields:
            kw[f"scale_{side}_select"] = rules.select_policy
    return HPAChange(**kw)


def _deap_version() -> str:
    import deap

    return deap.__version__
