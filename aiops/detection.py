"""Score fresh data with the champion detectors and store the scores and the anomalies they raise.

The work behind `flows/detect.py`. Per detection task: load the `champion` version from MLflow, score every row
stored since the task's last scored timestamp (with the detector's context before it, so scores stay causal and
equal to a one-pass scoring), keep the scores in `anomaly_scores` and the merged alarms in `anomalies`, each row
with the model name and version that produced it. Re-running scores nothing twice: both tables are upserted on
their keys, and the watermark is read from what was stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from aiops import registry
from aiops.errors import UnknownNameError
from aiops.settings import Settings
from aiops.store import Store
from aiops.tasks import Task, load_panel, tasks

SCORES = "anomaly_scores"
ANOMALIES = "anomalies"


@dataclass
class DetectOutcome:
    task: str
    model: str | None = None
    version: str | None = None
    scored_from: str | None = None
    points: int = 0
    anomalies: int = 0
    skipped: str | None = None
    events: list[dict] = field(default_factory=list)
    new_series: list[str] = field(default_factory=list)  # not in the champion's fit: scored after the next training


def watermark(store: Store, task: Task) -> pd.Timestamp | None:
    """The last timestamp already scored for the task (None before the first run)."""
    try:
        scores = store.read_table(SCORES)
    except UnknownNameError:
        return None
    mine = scores.loc[scores["task"] == task.name, "ts"]
    return None if mine.empty else pd.Timestamp(mine.max())


def detect_task(settings: Settings, task: Task, *, store: Store | None = None,
                since: datetime | None = None) -> DetectOutcome:
    from models.thresholds import alarms

    store = store or Store(settings.data_dir)
    out = DetectOutcome(task.name)
    if registry.get_alias(settings, task.name, "champion") is None:
        out.skipped = f"no champion for {task.name} yet; run the train flow first"
        return out
    model, info = registry.load_model(settings, task.name, "champion")
    out.model, out.version = info.model_name, info.version
    last = _utc(since) if since is not None else watermark(store, task)
    step = pd.Timedelta(seconds=settings.train.step_seconds)
    ctx_start = None if last is None else last - step * (max(model.context_steps, 1) + 1)
    panel, out.new_series = known_series(model, load_panel(store, task, settings, start=ctx_start))
    if panel.empty:
        out.skipped = (f"every series is new to the champion ({info.model_name} v{info.version}); the next run "
                       "of the train flow fits them")
        return out
    scores = model.score(panel)
    scores = scores.assign(ts=pd.to_datetime(scores["ts"], utc=True))
    if last is not None:
        scores = scores.loc[scores["ts"] > last]
    scores = scores.dropna(subset=["score"])
    if scores.empty:
        out.skipped = "no new data since the last run"
        return out
    out.scored_from = scores["ts"].min().isoformat()
    out.points = len(scores)
    rows = scores.assign(task=task.name, model=info.model_name, version=str(info.version))
    store.write_table(SCORES, rows[["task", "series", "ts", "score", "model", "version"]], key=["task", "series", "ts"])
    events = alarms(scores, settings.train.threshold)
    ev = _event_frame(events, task, info)
    if len(ev):
        store.write_table(ANOMALIES, ev, key=["task", "series", "ts"])
    out.anomalies = len(ev)
    out.events = ev.drop(columns=["ts"]).astype({"start": str, "end": str}).to_dict("records")[:20] if len(ev) else []
    return out


def _utc(when: datetime) -> pd.Timestamp:
    """A naive datetime is UTC; an aware one is converted."""
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def known_series(model, panel: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(the rows of series the model can score, the names of the others).

    A detector fitted per series (scalers, calibration, seasonal profiles) refuses a series it has not seen; a
    workload deployed since the last training must not stop the scoring of every other one. Its rows stay in the
    store and are scored once the next training has fitted it.
    """
    if getattr(model, "global_model", False):
        return panel, []
    known = set(model.ids_)
    new = sorted(set(panel["series"].astype(str)) - known)
    return (panel.loc[~panel["series"].astype(str).isin(new)] if new else panel), new


def _event_frame(events, task: Task, info) -> pd.DataFrame:
    frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame([e.__dict__ for e in events])
    if frame.empty:
        return pd.DataFrame(columns=["task", "series", "ts", "start", "end", "peak_score", "model", "version"])
    frame = frame.rename(columns={"peak": "peak_score", "max_score": "peak_score"})
    frame = frame.assign(task=task.name, ts=pd.to_datetime(frame["start"], utc=True), model=info.model_name,
                         version=str(info.version))
    keep = ["task", "series", "ts", "start", "end", "peak_score", "model", "version"]
    return frame[[c for c in keep if c in frame.columns]]


def detect(settings: Settings, *, since: datetime | None = None) -> list[DetectOutcome]:
    store = Store(settings.data_dir)
    return [detect_task(settings, t, store=store, since=since) for t in tasks(settings) if t.kind == "detect"]
