"""Ingest flow: every complete window of the range, fetched, validated at the door, stored or quarantined.

Thin: the work is `aiops.ingest`. Re-running resumes: windows already stored are skipped (watermarks).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import SourceError
from aiops.ingest import (
    Window, WindowOutcome, batches, check_metrics, default_range, ingest_windows, plan_windows, store_context,
)
from aiops.progress import report
from aiops.settings import load_settings
from aiops.sources import make_source
from aiops.store import Store


class IngestParams(BaseModel):
    """What to ingest. Unset start/end: the simulated span (simulator) or the last `ingest.lookback_hours`."""

    model_config = ConfigDict(extra="forbid")

    start: datetime | None = Field(None, description="first instant (UTC) to ingest")
    end: datetime | None = Field(None, description="ingest up to here (UTC, exclusive)")
    metrics: list[str] | None = Field(None, description="metric names; default: the whole catalogue")
    force: bool = Field(False, description="re-ingest windows that are already stored (replaces them)")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")


def _retry_source_errors(task, task_run, state) -> bool:
    try:
        state.result()
    except SourceError:
        return True
    except Exception:
        return False
    return False


@task(name="ingest-windows", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=_retry_source_errors, task_run_name="ingest {label}")
def ingest_windows_task(source, store: Store, windows: list[Window], metrics: list[str], step_s: int,
                        force: bool, label: str) -> list[WindowOutcome]:
    return ingest_windows(source, store, windows, metrics, step_s=step_s, force=force)


@task(name="store-context", cache_policy=NO_CACHE)
def store_context_task(source, store: Store, start: datetime, end: datetime) -> dict[str, int]:
    return store_context(source, store, start, end)


@flow(name="ingest", log_prints=True)
def ingest(params: IngestParams = IngestParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file)
    metrics = check_metrics(params.metrics)
    start, end = default_range(settings, params.start, params.end)
    windows = plan_windows(start, end, settings.ingest.window)
    store = Store(settings.data_dir)
    source = make_source(settings)
    logger.info("ingesting %d windows of %d metrics from %s, %s to %s", len(windows), len(metrics),
                source.name, start.isoformat(), end.isoformat())
    outcomes: list[WindowOutcome] = []
    pending: deque = deque()

    def collect() -> None:
        future = pending.popleft()
        for o in future.result():  # a batch that failed after its retries fails the run; stored windows stay
            outcomes.append(o)
            report("ingest", len(outcomes), len(windows), str(o.window))
            if o.quarantined:
                logger.warning("window %s: quarantined %s", o.window,
                               "; ".join(f"{m}: {r}" for m, r in o.quarantined.items()))
            logger.info("window %s: %d rows stored, %d metrics already stored (%d/%d)", o.window, o.rows,
                        len(o.skipped), len(outcomes), len(windows))

    try:
        # consecutive windows are validated together; at most `ingest.workers` batches in flight
        for group in batches(windows, settings.ingest.batch_windows):
            label = f"{group[0]}" + (f" +{len(group) - 1}" if len(group) > 1 else "")
            pending.append(ingest_windows_task.submit(source, store, group, metrics, settings.ingest.step_seconds,
                                                      params.force, label))
            if len(pending) >= settings.ingest.workers:
                collect()
        while pending:
            collect()
        context = store_context_task(source, store, start, end)
    except BaseException:
        for future in pending:  # let batches under way finish (each window is atomic) before the source closes
            future.wait()
        raise
    finally:
        source.close()
    return {
        "source": source.name, "start": start.isoformat(), "end": end.isoformat(), "windows": len(windows),
        "rows": sum(o.rows for o in outcomes),
        "windows_stored": sum(1 for o in outcomes if o.stored),
        "windows_skipped": sum(1 for o in outcomes if o.skipped and not o.stored and not o.quarantined),
        "windows_quarantined": sum(1 for o in outcomes if o.quarantined),
        "quarantined": [f"{o.window} {m}: {r}" for o in outcomes for m, r in o.quarantined.items()],
        **context,
    }
