"""Learning tasks and their data: which registered model learns what, from which stored series.

A task is one registered model in MLflow (`forecast-cpu_usage`, `detect-workload`): a global model or a bundle of
per-series fits over every container's series of one metric (or, for the multivariate detector, several metrics of
each workload together). Panels come from the stored feature table `features/series` (only what passed
validation), resampled to the models' step; ids are `cluster/namespace/workload/container`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from aiops.errors import SchemaError, UnknownNameError
from aiops.settings import Settings
from aiops.store import Store
from models.panel import regularize

ID_PARTS = ("cluster", "namespace", "workload", "container")
BASELINE = {"forecast": "seasonal_naive", "detect": "robust_mad"}


@dataclass(frozen=True)
class Task:
    name: str  # the registered model's name
    kind: Literal["forecast", "detect"]
    metrics: tuple[str, ...]
    candidates: tuple[str, ...]

    @property
    def multivariate(self) -> bool:
        return len(self.metrics) > 1

    @property
    def experiment(self) -> str:
        return f"aiops/{self.name}"


def tasks(settings: Settings) -> list[Task]:
    """Every task the settings ask for, baselines always among the candidates."""
    t = settings.train
    out = []
    for m in t.forecast_metrics:
        out.append(Task(f"forecast-{m}", "forecast", (m,), _with_baseline(t.forecasters, "forecast")))
    if t.detect_metrics:
        out.append(Task("detect-workload", "detect", tuple(t.detect_metrics), _with_baseline(t.detectors, "detect")))
    for m in t.detect_univariate:
        out.append(Task(f"detect-{m}", "detect", (m,), _with_baseline(t.detectors, "detect")))
    return out


def task_by_name(settings: Settings, name: str) -> Task:
    for t in tasks(settings):
        if t.name == name:
            return t
    raise UnknownNameError("task", name, [t.name for t in tasks(settings)])


def _with_baseline(names: tuple[str, ...], kind: str) -> tuple[str, ...]:
    base = BASELINE[kind]
    return (base, *[n for n in names if n != base])


def series_id(frame: pd.DataFrame) -> pd.Series:
    return frame["cluster"].astype(str) + "/" + frame["namespace"].astype(str) + "/" + \
        frame["workload"].astype(str) + "/" + frame["container"].astype(str)


def load_panel(store: Store, task: Task, settings: Settings, *, start: datetime | None = None,
               end: datetime | None = None) -> pd.DataFrame:
    """The task's panel frame: series, ts, then `value` (one metric) or one column per metric.

    Unobserved grid buckets are NaN (gaps, never zeros); series are resampled to `settings.train.step_seconds`.
    Raises SchemaError naming the task when the store has none of its metrics.
    """
    rows = store.read_table("features/series", start, end, columns=[*ID_PARTS, "metric", "ts", "value", "observed"],
                            where={"metric": list(task.metrics)})
    if rows.empty:
        raise SchemaError(
            f"task {task.name}: no stored series of {list(task.metrics)} between {start or 'the start'} and "
            f"{end or 'the end'}; run `aiops ingest` and `aiops features` first"
        )
    value = rows["value"].where(rows["observed"].astype(bool), np.nan)
    long = pd.DataFrame({"series": series_id(rows).to_numpy(), "metric": rows["metric"].astype(str).to_numpy(),
                         "ts": rows["ts"].to_numpy(), "value": value.to_numpy(dtype=np.float64)})
    if task.multivariate:
        wide = long.pivot_table(index=["series", "ts"], columns="metric", values="value", aggfunc="mean",
                                dropna=False).reset_index()
        present = [m for m in task.metrics if m in wide.columns]
        # a workload may lack one metric altogether (no restarts ever reported): zero it only for counters
        for m in task.metrics:
            if m not in wide.columns:
                wide[m] = np.nan
        frame = wide[["series", "ts", *task.metrics]]
        if not present:
            raise SchemaError(f"task {task.name}: none of {list(task.metrics)} is stored")
    else:
        frame = long[["series", "ts", "value"]]
    step = pd.Timedelta(seconds=settings.train.step_seconds)
    out = regularize(frame, step, how="mean")
    cols = [c for c in out.columns if c not in ("series", "ts")]
    # a column never observed for a series (e.g. restarts of a workload that never restarted) would make the
    # series unusable for every multivariate model; counters that were never reported are zero
    for c in cols:
        if c in ("restarts", "oom_kills"):
            out[c] = out[c].fillna(0.0)
    dead = out.groupby("series")[cols].apply(lambda g: g.isna().all().any())
    if dead.any():
        out = out.loc[~out["series"].isin(dead[dead].index)]
    if out.empty:
        raise SchemaError(f"task {task.name}: every series lacks one of {cols} entirely")
    return out.reset_index(drop=True)


def incident_labels(store: Store, panel: pd.DataFrame) -> pd.Series:
    """1 where a panel row falls inside a labelled incident of its workload, else 0 (aligned with `panel`)."""
    try:
        inc = store.read_table("labels/incidents")
    except UnknownNameError:  # a store without labels (a real cluster) has no ground truth
        return pd.Series(np.zeros(len(panel), dtype=np.int8), index=panel.index)
    parts = panel["series"].str.split("/", expand=True)
    ns, wl = parts[1].to_numpy(), parts[2].to_numpy()
    ts = pd.to_datetime(panel["ts"], utc=True).dt.tz_localize(None).to_numpy()
    lab = np.zeros(len(panel), dtype=np.int8)
    for row in inc.itertuples():
        t0, t1 = (np.datetime64(pd.Timestamp(t).tz_convert(None)) for t in (row.start, row.end))
        hit = (ns == row.namespace) & (wl == row.workload) & (ts >= t0) & (ts < t1)
        lab[hit] = 1
    return pd.Series(lab, index=panel.index)


def label_windows(store: Store) -> pd.DataFrame:
    """Incident windows as (namespace, workload, start, end), empty when the store has none."""
    try:
        return store.read_table("labels/incidents")[["namespace", "workload", "start", "end", "kind"]]
    except UnknownNameError:
        return pd.DataFrame(columns=["namespace", "workload", "start", "end", "kind"])
