"""Features flow: stored raw series -> regular grid, calendar, lags, rolling stats, demand and utilisation tables.

Thin: the work is `aiops.featurize` over the pure functions in `features/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.featurize import compute_features, read_raw, write_features
from aiops.progress import report
from aiops.settings import load_settings
from aiops.store import Store


class FeaturesParams(BaseModel):
    """Which stored span to build features for (default: everything stored)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime | None = Field(None, description="first instant (UTC); default: the first stored")
    end: datetime | None = Field(None, description="up to here (UTC, exclusive); default: the last stored")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")


@task(name="read-raw", cache_policy=NO_CACHE)
def read_raw_task(store: Store, start, end):
    return read_raw(store, start, end)


@task(name="compute-features", cache_policy=NO_CACHE)
def compute_task(raw, step: timedelta):
    return compute_features(raw, step)


@task(name="write-features", cache_policy=NO_CACHE, retries=1)
def write_task(store: Store, tables) -> dict[str, int]:
    return write_features(store, tables)


@flow(name="features", log_prints=True)
def features(params: FeaturesParams = FeaturesParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file)
    store = Store(settings.data_dir)
    step = timedelta(seconds=settings.ingest.step_seconds)
    report("features", 0, 3, "reading raw series")
    raw = read_raw_task(store, params.start, params.end)
    logger.info("read %d raw rows", len(raw))
    report("features", 1, 3, "computing feature tables")
    tables = compute_task(raw, step)
    report("features", 2, 3, "writing feature tables")
    written = write_task(store, tables)
    report("features", 3, 3, "done")
    logger.info("feature tables written: %s", ", ".join(f"{k}={v} rows" for k, v in written.items()))
    return {"input_rows": len(raw), "tables": written}
