"""What pre-scaling plans from: a pod's capacity in requests/s, and the champion forecaster with its health.

Capacity: a least-squares fit of `cpu_usage ~ a * replicas + b * demand` over a workload's stored history (rows
where CPU was throttled at its limit left out: there the load says nothing about b), then
capacity = (target utilisation * CPU request per pod - a) / b.

The champion's health: `trained_at` is the end of the data its training run saw (`end` in the run's
`holdout.json`; the version's registration time when that is missing). The recent error is
mean |actual - p50| / mean actual of its own forecasts from recent origins, compared with what happened
(`recent_errors`); the caller keeps the origins after the data it was fit on, so the number is out of sample.
"""

from __future__ import annotations

import fnmatch
import json
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

if TYPE_CHECKING:  # aiops.settings can then embed PrescaleSettings without an import cycle
    from aiops.settings import Settings

CAPACITY_METRICS = ("request_rate", "cpu_usage", "replicas_available")


class CapacityError(SchemaError):
    """The per-pod capacity cannot be estimated from the data given (the message says why and what to do)."""


@dataclass(frozen=True)
class Capacity:
    """Requests/s one pod serves at the target utilisation, and the fit it came from."""

    rps_per_pod: float
    idle_cores_per_pod: float  # a
    cores_per_request: float  # b
    points: int
    r2: float


def estimate_capacity(frame: pd.DataFrame, *, cpu_request_per_pod: float, target_utilization: float,
                      cpu_limit_per_pod: float | None = None, min_points: int = 12) -> Capacity:
    """Per-pod capacity (requests/s) from rows of `request_rate`, `cpu_usage` (cores, all pods) and
    `replicas_available`: least squares of cpu = a * replicas + b * requests, capacity = (u * request - a) / b."""
    missing = [c for c in CAPACITY_METRICS if c not in frame.columns]
    if missing:
        raise CapacityError(f"capacity: missing column(s) {missing}; expected {list(CAPACITY_METRICS)} "
                            "(ingest and build features for these metrics)")
    if not cpu_request_per_pod > 0 or not 0 < target_utilization <= 1:
        raise CapacityError(f"capacity: expected a CPU request per pod > 0 and a target utilisation in (0, 1], "
                            f"received {cpu_request_per_pod!r} and {target_utilization!r}")
    q, cpu, r = (frame[c].to_numpy(dtype=np.float64) for c in CAPACITY_METRICS)
    ok = np.isfinite(q) & np.isfinite(cpu) & np.isfinite(r) & (r > 0) & (q >= 0)
    if cpu_limit_per_pod:  # a throttled pod uses its limit whatever the load: no information on b there
        ok &= cpu < 0.95 * cpu_limit_per_pod * np.where(r > 0, r, 1)
    n = int(ok.sum())
    x = np.column_stack([r[ok], q[ok]])
    if n < min_points or np.linalg.matrix_rank(x) < 2:
        raise CapacityError(f"capacity: {n} usable rows (unthrottled, with pods and demand), need {min_points} "
                            "that vary in demand; keep more history (prescale.history_hours) or wait for traffic")
    (a, b), *_ = np.linalg.lstsq(x, cpu[ok], rcond=None)
    if not b > 0:
        raise CapacityError(f"capacity: CPU does not grow with requests in this data (fitted {b:.3g} cores per "
                            "request/s); the demand metric may not drive this workload's CPU")
    a = max(float(a), 0.0)  # a little negative is noise: pods do not give CPU back
    cap = (target_utilization * cpu_request_per_pod - a) / b
    if not cap > 0:
        raise CapacityError(f"capacity: an idle pod already uses {a:.3g} cores, above {target_utilization:.0%} of "
                            f"its {cpu_request_per_pod:g}-core request; raise the CPU request first")
    resid = cpu[ok] - x @ np.array([a, b])
    tot = float(((cpu[ok] - cpu[ok].mean()) ** 2).sum())
    return Capacity(float(cap), a, float(b), n, 1 - float((resid ** 2).sum()) / tot if tot > 0 else 1.0)


# --- the champion and its recent error --------------------------------------------------------------------------

@dataclass
class Champion:
    """The loaded champion forecaster, its registry identity and what its training run saw."""

    model: Any
    registered: str
    version: str
    name: str
    trained_at: datetime
    fit_end: pd.Timestamp | None
    holdout_smape: float | None


def load_champion(settings: Settings, metric: str) -> Champion | None:
    """The champion `forecast-<metric>` with when its data ended, or None when there is none."""
    from aiops import registry
    from aiops.mlflow_model import using_store

    name = f"forecast-{metric}"
    info = registry.get_alias(settings, name, registry.CHAMPION)
    if info is None:
        return None
    model, info = registry.load_model(settings, name, registry.CHAMPION)
    c = registry.client(settings)
    holdout: dict = {}
    with tempfile.TemporaryDirectory() as tmp, using_store(settings.resolved_mlflow_uri):  # no progress bar
        try:
            holdout = json.loads(Path(c.download_artifacts(info.run_id, "holdout.json", tmp)).read_text())
        except Exception:  # noqa: BLE001 - an old run without holdout.json: fall back to registration time
            holdout = {}
    end = holdout.get("end")
    trained = (pd.Timestamp(end).to_pydatetime() if end else
               datetime.fromtimestamp(c.get_model_version(name, info.version).creation_timestamp / 1000, timezone.utc))
    smape = info.metrics.get("smape")
    return Champion(model, name, info.version, info.model_name, trained,
                    pd.Timestamp(holdout["fit_end"]) if holdout.get("fit_end") else None,
                    smape / 100 if smape is not None and math.isfinite(smape) else None)


def reach(model, step: pd.Timedelta) -> pd.Timedelta:
    """How much history before an origin the model reads to forecast from it."""
    return step * max(model.context_steps, model.min_history, 2)


def recent_errors(model, panel: pd.DataFrame, *, origins: pd.DatetimeIndex, horizon: int,
                  step: pd.Timedelta) -> dict[str, float]:
    """mean |actual - p50| / mean actual per series, over the model's forecasts from `origins` (each `horizon`
    steps) where the outcome is in `panel` (series, ts, value)."""
    ts = pd.to_datetime(panel["ts"], utc=True)
    panel = panel.assign(ts=ts)
    span, out = reach(model, step), []
    for o in origins:
        hist = panel.loc[(ts <= o) & (ts > o - span)]
        try:
            out.append(model.predict(horizon, history=hist)[["series", "ts", "p50"]])
        except (SchemaError, ValueError):  # too little history before this origin: judge on the others
            continue
    if not out:
        return {}
    joined = pd.concat(out).merge(panel[["series", "ts", "value"]], on=["series", "ts"]).dropna()
    g = joined.assign(err=(joined["value"] - joined["p50"]).abs()).groupby("series")
    err, mean = g["err"].mean(), g["value"].mean()
    return {s: (float(err[s] / mean[s]) if mean[s] > 0 else math.inf) for s in err.index}


# --- stored data -----------------------------------------------------------------------------------------------

def latest_ts(settings: Settings, metric: str) -> pd.Timestamp:
    """The last stored timestamp of `metric` in the feature series (the planning instant of a replay)."""
    from aiops.store import Store

    root = settings.data_dir / "features" / "series"
    days = sorted(p.name[4:] for p in root.glob("day=*")) if root.is_dir() else []
    if not days:
        raise SchemaError(f"no stored features in {root}; run `aiops ingest` and `aiops features` first")
    rows = Store(settings.data_dir).read_table("features/series", start=pd.Timestamp(days[-1], tz="UTC"),
                                               columns=["ts"], where={"metric": [metric]})
    if rows.empty:
        raise SchemaError(f"no stored series of metric {metric!r} on {days[-1]}; check prescale.metric or tune.metric "
                          "(e.g. request_rate) and run `aiops features`")
    return pd.Timestamp(rows["ts"].max())


def load_metrics(settings: Settings, metrics: tuple[str, ...], start: pd.Timestamp) -> pd.DataFrame:
    """The stored feature series of `metrics` since `start`, one column per metric (a single one: `value`)."""
    from aiops.store import Store
    from aiops.tasks import Task, load_panel

    task = Task(f"prescale-{'+'.join(metrics)}", "forecast", metrics, ())
    return load_panel(Store(settings.data_dir), task, settings, start=start.to_pydatetime())


def selected(series: str, cluster: str, namespaces: tuple[str, ...], workloads: tuple[str, ...]) -> bool:
    """Whether series `cluster/namespace/workload/container` is of `cluster` and matches the glob patterns."""
    c, ns, wl, _ = series.split("/", 3)
    return (c == cluster and any(fnmatch.fnmatchcase(ns, p) for p in namespaces)
            and any(fnmatch.fnmatchcase(wl, p) for p in workloads))
