"""Ingestion: cut time into windows, fetch each from a source, validate it at the door, store or quarantine it.

Plain functions, usable from a notebook; `flows/ingest.py` only sequences them. Idempotent and resumable:
a window of a metric is stored atomically with a watermark, so a killed run re-run later skips what was
stored and redoes what was not; re-running a stored window (``force``) replaces it with identical rows.
A metric whose batch fails validation is quarantined with the reason and gets no watermark: the gap stays
visible and a later run retries it.
"""

from __future__ import annotations

import ctypes
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from aiops.metrics import METRICS, get_metric
from aiops.progress import report
from aiops.store import Store
from aiops.validation import validate_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%H:%M}Z"


@dataclass
class WindowOutcome:
    window: Window
    stored: dict[str, int] = field(default_factory=dict)  # metric -> rows stored
    quarantined: dict[str, str] = field(default_factory=dict)  # metric ("*" for the whole batch) -> reason
    skipped: list[str] = field(default_factory=list)  # metrics already stored (watermarked)

    @property
    def rows(self) -> int:
        return sum(self.stored.values())


@dataclass
class IngestSummary:
    source: str
    start: datetime
    end: datetime
    windows: list[WindowOutcome] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.windows)

    @property
    def windows_stored(self) -> int:
        return sum(1 for w in self.windows if w.stored)

    @property
    def windows_skipped(self) -> int:
        return sum(1 for w in self.windows if w.skipped and not w.stored and not w.quarantined)

    @property
    def quarantined(self) -> list[tuple[Window, str, str]]:
        return [(w.window, m, r) for w in self.windows for m, r in w.quarantined.items()]


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def plan_windows(start: datetime, end: datetime, window: timedelta) -> list[Window]:
    """Windows of length `window` aligned to midnight UTC that cover [start, end).

    Alignment makes a window's identity independent of when a run starts, which is what lets a re-run
    find the windows an earlier run stored. A partial last window is not planned: it is not complete yet.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ValueError(f"ingest range: end {end.isoformat()} must be after start {start.isoformat()}")
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first = day + window * ((start - day) // window)
    out, t = [], first
    while t + window <= end:
        out.append(Window(t, t + window))
        t += window
    return out


def check_metrics(metrics: Sequence[str] | None) -> list[str]:
    """The metric names to ingest (all of the catalogue by default); an unknown name raises, listing known ones."""
    if metrics is None:
        return list(METRICS)
    for m in metrics:
        get_metric(m)
    return list(dict.fromkeys(metrics))


def ingest_window(source, store: Store, window: Window, metrics: Sequence[str], *, step_s: int,
                  force: bool = False) -> WindowOutcome:
    """Fetch, validate and store one window of `metrics` from `source`.

    Source failures raise SourceError and store nothing. A batch failing validation is quarantined: per
    metric when validation can tell which metrics are bad, otherwise whole.
    """
    return ingest_windows(source, store, [window], metrics, step_s=step_s, force=force)[0]


def ingest_windows(source, store: Store, windows: Sequence[Window], metrics: Sequence[str], *, step_s: int,
                   force: bool = False) -> list[WindowOutcome]:
    """Ingest consecutive windows, validating them together in one great-expectations run.

    Most of a validation's cost is fixed per run, so a run of windows validated at once is much cheaper than
    each on its own. Only when the joint batch fails are the windows validated one by one, so that each
    failure is pinned to its window and metric and everything valid is still stored.
    """
    outcomes, frames, todos = [], [], []
    for w in windows:
        o = WindowOutcome(w)
        todo = [m for m in metrics if force or not store.has_window(source.name, m, w.start)]
        o.skipped = [m for m in metrics if m not in todo]
        outcomes.append(o)
        todos.append(todo)
        frames.append(source.fetch(w.start, w.end, todo, step_s) if todo else None)
    live = [i for i, todo in enumerate(todos) if todo]
    if not live:
        return outcomes
    try:
        if len(live) > 1:
            joint = validate_batch(pd.concat([frames[i] for i in live], ignore_index=True),
                                   name=f"{source.name} {windows[live[0]]} +{len(live) - 1} windows")
            if joint.success:
                for i in live:
                    _store_valid(store, source.name, outcomes[i], frames[i], todos[i])
                return outcomes
        for i in live:  # one window, or a joint batch that failed: each window on its own
            _validate_and_store(store, source.name, outcomes[i], frames[i], todos[i])
        return outcomes
    finally:
        del frames
        _release_free_memory()


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only; elsewhere a no-op).

    A batch allocates and frees a few hundred MB across threads; glibc keeps such pages in per-thread arenas, so
    without this the RSS of a long ingest creeps up to several times what it holds (benchmarks/ingest_memory.py).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - present only in glibc
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _store_valid(store: Store, source_name: str, outcome: WindowOutcome, frame, metrics: Sequence[str]) -> None:
    # each metric's window is written atomically and watermarked on its own (metrics without rows: empty windows)
    w = outcome.window
    for rec in store.write_windows(source_name, w.start, w.end, frame, metrics=list(metrics)):
        outcome.stored[rec.metric] = rec.rows


def _validate_and_store(store: Store, source_name: str, outcome: WindowOutcome, frame,
                        todo: Sequence[str]) -> None:
    w = outcome.window
    name = f"{source_name} {w}"
    report_ = validate_batch(frame, name=name)
    if report_.success:
        bad: set[str] = set()
    elif report_.bad_metrics and set(report_.bad_metrics) <= set(todo):
        bad = set(report_.bad_metrics)
    else:  # the batch as a whole is unusable (wrong columns, unknown metric, ...)
        reason = "; ".join(report_.failures) or "validation failed"
        store.quarantine(source_name, None, w.start, w.end, frame, reason=reason, details=report_.result)
        outcome.quarantined["*"] = reason
        log.warning("quarantined %s: %s", name, reason)
        return
    if bad:
        parts = dict(tuple(frame.groupby("metric", sort=False, observed=True)))
        for m in sorted(bad):
            part = parts.get(m, frame.iloc[0:0])
            mine = [f for f in report_.failures if re.search(rf"\b{re.escape(m)}\b", f)]
            reason = "; ".join(mine or report_.failures)
            store.quarantine(source_name, m, w.start, w.end, part, reason=reason, details=report_.result)
            outcome.quarantined[m] = reason
            log.warning("quarantined %s %s: %s", name, m, reason)
        frame = frame[~frame["metric"].isin(bad)]
    _store_valid(store, source_name, outcome, frame, [m for m in todo if m not in bad])


def batches(windows: Sequence[Window], size: int) -> list[list[Window]]:
    """Consecutive windows in runs of at most `size` (the unit validated together)."""
    return [list(windows[i:i + size]) for i in range(0, len(windows), max(1, size))]


def ingest_range(source, store: Store, start: datetime, end: datetime, *, window: timedelta, step_s: int,
                 metrics: Sequence[str] | None = None, force: bool = False, workers: int = 1,
                 batch_windows: int = 1) -> IngestSummary:
    """Ingest every complete window in [start, end); resumes where an earlier (killed) run stopped.

    `batch_windows` consecutive windows are validated together (see `ingest_windows`); `workers` > 1 processes
    that many batches at once (one validates while another writes: Parquet encoding runs without the GIL).
    Each window stays atomic, so a kill at any point leaves only whole windows behind. A source error stops
    the run after the batches already under way.
    """
    metrics = check_metrics(metrics)
    windows = plan_windows(start, end, window)
    summary = IngestSummary(source.name, _utc(start), _utc(end))
    groups = batches(windows, batch_windows)

    def done(outcomes: list[WindowOutcome]) -> None:
        summary.windows.extend(outcomes)
        report("ingest", len(summary.windows), len(windows), str(outcomes[-1].window))

    if workers <= 1:
        for g in groups:
            done(ingest_windows(source, store, g, metrics, step_s=step_s, force=force))
        return summary
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        futures = [pool.submit(ingest_windows, source, store, g, metrics, step_s=step_s, force=force) for g in groups]
        try:
            for fut in futures:
                done(fut.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return summary


def default_range(settings, start: datetime | None = None, end: datetime | None = None) -> tuple[datetime, datetime]:
    """The range a run covers when not told: the simulated span for the simulator; for a live source the last
    `ingest.lookback_hours` up to now (windows already stored in it are skipped, so a scheduled run fills gaps)."""
    if settings.source == "simulator":
        s0 = settings.sim.resolved_start()
        s1 = s0 + timedelta(days=settings.sim.days)
    else:
        s1 = datetime.now(timezone.utc)
        s0 = s1 - timedelta(hours=settings.ingest.lookback_hours)
    return _utc(start) if start else s0, _utc(end) if end else s1


def store_context(source, store: Store, start: datetime, end: datetime) -> dict[str, int]:
    """Store what a source knows besides metrics: Kubernetes events and, for the simulator, incident labels."""
    out: dict[str, int] = {}
    events = getattr(source, "events", None)
    if events is not None:
        frame = events(start, end)
        store.write_table("events", frame)
        out["events"] = len(frame)
    labels = getattr(source, "labels", None)
    if labels is not None:
        frame = labels()
        store.write_table("labels/incidents", frame)
        out["incident_labels"] = len(frame)
    return out
