"""Detect flow: score the data stored since the last run with each champion detector; store scores and anomalies.

Thin: the work is `aiops.detection`.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.detection import detect_task
from aiops.progress import report
from aiops.settings import load_settings
from aiops.store import Store
from aiops.tasks import tasks


class DetectParams(BaseModel):
    """Which data to score (default: everything stored since the last scored timestamp)."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(None, description="score rows after this instant (UTC) instead of the watermark")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")


@task(name="detect-task", cache_policy=NO_CACHE, retries=1, task_run_name="detect-{t.name}")
def detect_task_task(settings, t, store, since):
    return detect_task(settings, t, store=store, since=since)


@flow(name="detect", log_prints=True)
def detect(params: DetectParams = DetectParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file)
    store = Store(settings.data_dir)
    selected = [t for t in tasks(settings) if t.kind == "detect"]
    out = {}
    for k, t in enumerate(selected):
        report("detect", k, len(selected), t.name)
        res = detect_task_task(settings, t, store, params.since)
        if res.new_series:
            logger.warning("%s: %d series not in the champion's fit, scored after the next training: %s", t.name,
                           len(res.new_series), ", ".join(res.new_series[:5]) + (" ..." if len(res.new_series) > 5 else ""))
        if res.skipped:
            logger.info("%s: %s", t.name, res.skipped)
        else:
            logger.info("%s: %s v%s scored %d points from %s: %d anomalies", t.name, res.model, res.version,
                        res.points, res.scored_from, res.anomalies)
        out[t.name] = res.__dict__
    report("detect", len(selected), len(selected), "done")
    return out
