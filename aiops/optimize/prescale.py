"""Predictive pre-scaling: each workload's replica plan from the champion forecaster, as recommendations.

Per workload (series `cluster/namespace/workload/container` of the demand metric, `request_rate` by default,
read from the stored `features/series`): the champion `forecast-<metric>`'s quantile forecast from the recent
history, its health and a pod's capacity (`prescale_inputs`), then `planner.plan`, whose target is raised to the
most its schedule needs before the next run (`every`: nothing moves the replicas in between).

Each plan that needs a change becomes one proposal: `HPAChange(min_replicas)` on the HorizontalPodAutoscaler
that owns the deployment (it would undo a replica change), else `ReplicasChange` on the Deployment, stepped toward
the target within the actuator's guardrails (max step, bounds, least significant change) and saying so. A reactive
plan leaves an HPA alone: the HPA is the reactive behaviour. Nothing here writes: the actuator decides and applies
(STYLE.md 9); the cluster is only read, through the actuator's client.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from aiops.actuator.policy import Guardrails
from aiops.actuator.recommendation import Evidence, HPAChange, Proposal, ReplicasChange, Target
from aiops.errors import SchemaError
from aiops.optimize.config import PrescaleSettings
from aiops.optimize.planner import ModelHealth, ReplicaPlan, plan
from aiops.optimize.prescale_inputs import (
    Capacity, CapacityError, Champion, estimate_capacity, latest_ts, load_champion, load_metrics, reach, recent_errors,
    selected,
)

if TYPE_CHECKING:  # aiops.settings can then embed PrescaleSettings without an import cycle
    from aiops.settings import Settings

SOURCE = "prescale"


@dataclass
class WorkloadPlan:
    """One workload's plan and what would be proposed (a row of `plan_rows`)."""

    namespace: str
    workload: str
    container: str
    kind: Literal["Deployment", "HorizontalPodAutoscaler"] | None = None
    object: str | None = None
    mode: Literal["predictive", "reactive", "skipped"] = "skipped"
    reason: str = ""
    current: int | None = None
    target: int | None = None
    proposed: int | None = None  # None: nothing to propose (see note)
    note: str = ""
    peak: int | None = None
    capacity_rps: float | None = None
    model: str | None = None
    version: str | None = None
    recent_error: float | None = None
    error_source: str | None = None
    trained_at: datetime | None = None
    hpa_max: int | None = None
    planned_at: datetime | None = None  # the plan's `now`: the last stored observation unless told
    schedule: list[tuple[datetime, int]] = field(default_factory=list)


# --- planning ---------------------------------------------------------------------------------------------------

def plan_workloads(settings: Settings, cfg: PrescaleSettings | None = None, *,
                   now: datetime | None = None) -> list[WorkloadPlan]:
    """The plan of every selected workload of `settings.cluster_name` (skipped ones with their reason).

    `now` defaults to the last stored observation of the demand metric (the simulator's data lies in the past).
    """
    from aiops.actuator.kube import Cluster

    cfg = cfg or prescale_settings(settings)
    step = pd.Timedelta(seconds=settings.train.step_seconds)
    t_now = _utc(now) if now is not None else latest_ts(settings, cfg.metric)
    champ = load_champion(settings, cfg.metric)
    context = reach(champ.model, step) if champ else step
    back = max(pd.Timedelta(hours=cfg.history_hours), pd.Timedelta(hours=cfg.error_window_hours) + context)
    demand = load_metrics(settings, (cfg.metric,), t_now - back)
    demand = demand.loc[pd.to_datetime(demand["ts"], utc=True) <= t_now]
    try:
        usage: pd.DataFrame | str = load_metrics(settings, (cfg.metric, "cpu_usage", "replicas_available"),
                                           t_now - pd.Timedelta(hours=cfg.history_hours))
        usage = usage.loc[pd.to_datetime(usage["ts"], utc=True) <= t_now].rename(columns={cfg.metric: "request_rate"})
    except SchemaError as exc:  # every row says why it has no plan, instead of one error for the whole run
        usage = f"capacity: {exc}"
    ids = [s for s in demand["series"].unique() if selected(s, settings.cluster_name, cfg.namespaces, cfg.workloads)]
    fcs = _forecasts(champ, demand, ids, t_now, cfg, step)
    cluster = Cluster(settings.resolved_kubeconfig, settings.kube_context, timeout_s=settings.actuator.request_timeout_s)
    try:
        return [_plan_one(s, cfg, settings, cluster, champ, demand, usage, fcs, t_now) for s in sorted(ids)]
    finally:
        cluster.close()


def _utc(when: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def prescale_settings(settings: Settings) -> PrescaleSettings:
    """`settings.prescale` once Settings has that field, else the defaults."""
    return getattr(settings, "prescale", None) or PrescaleSettings()


@dataclass
class _Forecasts:
    by_series: dict[str, pd.DataFrame] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    error_source: str = ""
    failed: str | None = None  # why the champion produced no forecast at all


def _forecasts(champ: Champion | None, demand: pd.DataFrame, ids: list[str], now: pd.Timestamp,
               cfg: PrescaleSettings, step: pd.Timedelta) -> _Forecasts:
    """Forecasts and recent errors of the series the champion knows (a bundle of per-series fits knows only those
    it was fit on)."""
    out = _Forecasts()
    if champ is None:
        return out
    from aiops.detection import known_series

    panel, _new = known_series(champ.model, demand.loc[demand["series"].isin(ids)])
    if panel.empty:
        return out
    ts = pd.to_datetime(panel["ts"], utc=True)
    try:
        fc = champ.model.predict(cfg.horizon_steps, history=panel.loc[ts > now - reach(champ.model, step)])
    except (SchemaError, ValueError) as exc:
        out.failed = f"the champion {champ.registered} v{champ.version} could not forecast ({exc})"
        return out
    out.by_series = {s: g.rename(columns={"ts": "time"}) for s, g in fc.groupby("series")}
    first = now - pd.Timedelta(hours=cfg.error_window_hours)
    if champ.fit_end is not None:
        first = max(first, champ.fit_end - step)  # out of sample only: never judge it on what it was fit on
    origins = pd.date_range(first.ceil(step), now - step, freq=pd.Timedelta(hours=cfg.error_every_hours))
    out.errors = recent_errors(champ.model, panel, origins=origins, horizon=cfg.horizon_steps, step=step)
    out.error_source = (f"backtest: forecasts from {len(origins)} origin(s) after {first:%Y-%m-%d %H:%M} UTC "
                        "against what happened")
    return out


def _plan_one(sid: str, cfg: PrescaleSettings, settings: Settings, cluster, champ: Champion | None,
              demand: pd.DataFrame, usage: pd.DataFrame | str, fcs: _Forecasts, now: pd.Timestamp) -> WorkloadPlan:
    from aiops.actuator.changes import parse_quantity
    from aiops.actuator.kube import NotFound

    _, ns, wl, ctr = sid.split("/", 3)
    row = WorkloadPlan(ns, wl, ctr, planned_at=now.to_pydatetime())
    try:
        dep = cluster.read_deployment(ns, wl)
        hpa_name = cluster.hpa_for(ns, wl)
    except NotFound as exc:
        row.reason = f"no plan: not on the cluster any more ({exc})"
        return row
    if hpa_name:
        hpa = cluster.read(Target(cluster=settings.cluster_name, namespace=ns, kind="HorizontalPodAutoscaler",
                                  name=hpa_name))["spec"]
        row.kind, row.object = "HorizontalPodAutoscaler", hpa_name
        row.current, row.hpa_max = int(hpa.get("minReplicas", 1)), int(hpa["maxReplicas"])
        util = next((m["resource"]["target"].get("averageUtilization") for m in hpa.get("metrics") or []
                     if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"), None)
        util = util / 100 if util else cfg.default_target_utilization
    else:
        row.kind, row.object = "Deployment", wl
        row.current, util = int(dep["spec"].get("replicas", 1)), cfg.default_target_utilization
    res = next((c.get("resources") or {} for c in dep["spec"]["template"]["spec"]["containers"]
                if c.get("name") == ctr), {})
    req, lim = ((res.get(k) or {}).get("cpu") for k in ("requests", "limits"))
    try:
        if isinstance(usage, str):
            raise CapacityError(usage)
        if req is None:
            raise CapacityError(f"capacity: container {ctr} of {ns}/{wl} has no CPU request; set one")
        cap = estimate_capacity(usage.loc[usage["series"] == sid], cpu_request_per_pod=parse_quantity(req),
                                target_utilization=util, cpu_limit_per_pod=parse_quantity(lim) if lim else None,
                                min_points=cfg.min_fit_points)
    except CapacityError as exc:
        row.reason = f"no plan: {exc}"
        return row
    row.capacity_rps = cap.rps_per_pod
    d = demand.loc[demand["series"] == sid].dropna(subset=["value"])
    observed = pd.Series(d["value"].to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(d["ts"], utc=True)))
    window = cfg.planner.scale_in_hold + cfg.every
    observed = observed[observed.index > now - window]
    if observed.empty:
        row.reason = f"no plan: no {cfg.metric} observed in the {window} before {now:%Y-%m-%d %H:%M} UTC"
        return row
    health, distrust = _health(sid, champ, fcs, row)
    fc = fcs.by_series.get(sid, pd.DataFrame(columns=["time", cfg.planner.quantile]))
    p = plan(fc, observed, capacity=cap.rps_per_pod, now=now.to_pydatetime(), health=health, cfg=cfg.planner)
    if distrust:
        p = ReplicaPlan("reactive", f"reactive: {distrust}; provisioning for the observed demand", p.target, [],
                        p.target)
    until = now + cfg.every  # nothing changes the replicas before the next run: cover the plan until then
    row.target = max([p.target, *(n for t, n in p.schedule if pd.Timestamp(t) <= until)])
    row.mode, row.reason, row.peak, row.schedule = p.mode, p.reason, p.peak, p.schedule
    if row.target > p.target:
        row.reason += f"; {row.target} to cover the plan until the next run ({cfg.every} from now)"
    return row


def _health(sid: str, champ: Champion | None, fcs: _Forecasts, row: WorkloadPlan
            ) -> tuple[ModelHealth | None, str | None]:
    """The champion's health for this workload, or (None, why it cannot be trusted here)."""
    if champ is None:
        return None, None  # the planner says: no champion forecaster
    row.model, row.version, row.trained_at = champ.registered, champ.version, champ.trained_at
    if fcs.failed:
        return None, fcs.failed
    if sid not in fcs.by_series:
        return None, (f"the champion {champ.registered} v{champ.version} ({champ.name}) was not fit on this "
                      "workload (new since its training); the next train run fits it")
    err, row.error_source = fcs.errors.get(sid), fcs.error_source
    if err is None and champ.holdout_smape is not None:
        err, row.error_source = champ.holdout_smape, "holdout sMAPE (no out-of-sample forecast has an outcome yet)"
    row.recent_error = err
    if err is None:
        return None, f"the recent error of {champ.registered} v{champ.version} cannot be measured yet"
    return ModelHealth(f"{champ.registered}[{champ.name}]", champ.version, champ.trained_at, err), None


def plan_rows(plans: list[WorkloadPlan]) -> pd.DataFrame:
    """The plans as a table (for the summary or a notebook): what would be pre-scaled and why."""
    cols = ["namespace", "workload", "kind", "object", "mode", "current", "target", "proposed", "peak",
            "capacity_rps", "model", "version", "recent_error", "planned_at", "reason", "note"]
    return pd.DataFrame([{k: getattr(p, k) for k in cols} for p in plans], columns=cols)


# --- proposals --------------------------------------------------------------------------------------------------

def step_toward(current: int, target: int, g: Guardrails, *, floor: int = 0,
                ceiling: int | None = None) -> tuple[int, str]:
    """The value one change may move `current` to on the way to `target` under the guardrails, and why it stops
    short (empty when it does not): at most x(1 + max_step_up) up, x(1 - max_step_down) down, within bounds."""
    lo = max(g.min_replicas, floor)
    hi = min(g.max_replicas, ceiling) if ceiling is not None else g.max_replicas
    want, notes = min(max(target, lo), hi), []
    if want != target:
        notes.append(f"{target} is outside [{lo}, {hi}] (guardrails / the HPA's maxReplicas): aiming for {want}")
    if want > current:
        most = 1 if current == 0 else math.floor(current * (1 + g.max_step_up) + 1e-9)
        v = min(want, most)
        if v < want:
            notes.append(f"stepping {current} -> {v} toward {want}: the actuator allows at most "
                         f"+{g.max_step_up:.0%} per change; the next run continues")
    elif want < current:
        least = math.ceil(current * (1 - g.max_step_down) - 1e-9)
        v = max(want, least)
        if v > want:
            notes.append(f"stepping {current} -> {v} toward {want}: the actuator allows at most "
                         f"-{g.max_step_down:.0%} per change; the next run continues")
    else:
        v = want
    return v, "; ".join(notes)


def decide(plans: list[WorkloadPlan], g: Guardrails) -> list[WorkloadPlan]:
    """Fill `proposed` and `note` of each plan: the stepped value, or None with the reason nothing is proposed."""
    for p in plans:
        if p.mode == "skipped" or p.target is None or p.current is None:
            continue
        hpa = p.kind == "HorizontalPodAutoscaler"
        if hpa and p.mode == "reactive":
            # the HPA is the reactive behaviour: a floor raised earlier stays until a predictive plan moves it
            # (or `aiops rollback`), rather than pre-scaling guessing which floor the owner had set
            p.note = "the HPA scales it reactively; its minReplicas is left as it is"
            continue
        v, p.note = step_toward(p.current, p.target, g, floor=1 if hpa else 0, ceiling=p.hpa_max if hpa else None)
        if v == p.current:
            p.note = "; ".join(filter(None, [p.note, f"nothing to change: {p.current} already"]))
        elif p.current and abs(v - p.current) / p.current < g.min_relative_change:
            p.note = f"{p.current} -> {v} is below the actuator's min_relative_change {g.min_relative_change:.0%}"
        else:
            p.proposed = v
    return plans


def make_proposals(settings: Settings, plans: list[WorkloadPlan], *, run_id: str,
                   cfg: PrescaleSettings | None = None) -> list[Proposal]:
    """One proposal per plan with a `proposed` value (run `decide` first)."""
    cfg = cfg or prescale_settings(settings)
    out = []
    for p in plans:
        if p.proposed is None:
            continue
        target = Target(cluster=settings.cluster_name, namespace=p.namespace, kind=p.kind, name=p.object)
        change = HPAChange(min_replicas=p.proposed) if p.kind == "HorizontalPodAutoscaler" else \
            ReplicasChange(replicas=p.proposed)
        what = "minReplicas" if p.kind == "HorizontalPodAutoscaler" else "replicas"
        reason = f"{p.reason}; {what} {p.current} -> {p.proposed}" + (f" ({p.note})" if p.note else "")
        out.append(Proposal(target=target, change=change, reason=reason[:2000], run_id=run_id,
                            evidence=Evidence(source=SOURCE, model=p.model, model_version=p.version,
                                              details=_details(p, cfg)),
                            expected_effect=_effect(p)))
    return out


def _effect(p: WorkloadPlan) -> str:
    if p.mode == "reactive":
        return f"{p.proposed} replicas serve the demand observed now"
    peak_at = next((t for t, n in p.schedule if n == p.peak), None)
    when = f" (needed from {peak_at:%Y-%m-%d %H:%M} UTC)" if peak_at else ""
    return (f"{p.proposed} replicas in place ahead of the forecast demand; the plan peaks at {p.peak}{when}, "
            f"{p.capacity_rps:.3g} req/s per pod")


def _details(p: WorkloadPlan, cfg: PrescaleSettings) -> dict[str, Any]:
    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else round(float(x), 6)

    changes, last = [], None  # the schedule where it changes: the HPA minReplicas schedule in short
    for t, n in p.schedule:
        if n != last:
            changes.append([pd.Timestamp(t).isoformat(), int(n)])
            last = n
    return {"mode": p.mode, "current": p.current, "target": p.target, "peak": p.peak,
            "capacity_rps_per_pod": num(p.capacity_rps), "recent_error": num(p.recent_error),
            "error_source": p.error_source, "trained_at": p.trained_at.isoformat() if p.trained_at else None,
            "quantile": cfg.planner.quantile, "headroom": cfg.planner.headroom, "burst": cfg.planner.burst,
            "hold": f"{cfg.planner.hold_statistic} over {cfg.planner.scale_in_hold.total_seconds():g} s",
            "lead_s": cfg.planner.lead.total_seconds(), "horizon_steps": cfg.horizon_steps, "schedule": changes}


def run_id_for(plans: list[WorkloadPlan]) -> str:
    """One run id per planning instant: re-running on the same data proposes nothing new (same fingerprints)."""
    stamp = next((p.planned_at for p in plans if p.planned_at), None) or datetime.now(timezone.utc)
    return f"{SOURCE}-{stamp:%Y%m%dT%H%M%S}"


def open_duplicates(settings: Settings, plans: list[WorkloadPlan], proposals: list[Proposal]) -> list[Proposal]:
    """The proposals not already open from pre-scaling with the same change to the same object (their plan's note
    names the open one instead)."""
    from aiops.actuator.actuator import Actuator
    from aiops.actuator.recommendation import OPEN_STATES

    a = Actuator.open(settings)
    try:
        open_recs = {(r.target.object_key, r.change.model_dump_json()): r.id for r in a.store.list(OPEN_STATES)
                     if r.evidence.source == SOURCE}
    finally:
        a.close()
    by_object = {(p.namespace, p.object): p for p in plans if p.proposed is not None}
    fresh = []
    for prop in proposals:
        dup = open_recs.get((prop.target.object_key, prop.change.model_dump_json()))
        if dup is None:
            fresh.append(prop)
            continue
        p = by_object.get((prop.target.namespace, prop.target.name))
        if p is not None:
            p.note = "; ".join(filter(None, [p.note, f"already open as recommendation {dup}"]))
    return fresh


def propose(settings: Settings, cfg: PrescaleSettings | None = None, *, act: bool = False,
            dry_run: bool | None = None, now: datetime | None = None, on_result=None
            ) -> tuple[list[WorkloadPlan], list[dict]]:
    """Plan, decide and submit through the actuator (`propose_all`: with `act`, dry-run or apply per
    actuator.mode). What the prescale flow does, for notebooks and tests."""
    from aiops.actuator.automation import propose_all

    cfg = cfg or prescale_settings(settings)
    plans = decide(plan_workloads(settings, cfg, now=now), settings.actuator.guardrails)
    proposals = open_duplicates(settings, plans, make_proposals(settings, plans, run_id=run_id_for(plans), cfg=cfg))
    return plans, propose_all(settings, proposals, act=act, dry_run=dry_run, on_result=on_result, supersede=True)


def as_dicts(plans: list[WorkloadPlan]) -> list[dict[str, Any]]:
    """JSON-able plans (flow results)."""
    out = []
    for p in plans:
        d = asdict(p)
        d["schedule"] = [[t.isoformat(), n] for t, n in p.schedule]
        d["trained_at"] = p.trained_at.isoformat() if p.trained_at else None
        out.append(d)
    return out


__all__ = ["SOURCE", "Capacity", "CapacityError", "PrescaleSettings", "WorkloadPlan",
           "as_dicts", "decide", "estimate_capacity", "load_champion", "make_proposals", "open_duplicates",
           "plan_rows", "plan_workloads", "prescale_settings", "propose", "recent_errors", "run_id_for", "step_toward"]
