"""Train flow: per task, fit every candidate in parallel, judge them on one holdout, register the best, promote.

Thin: the work is `aiops.tasks` (data), `aiops.training` (fit and judge) and `aiops.lifecycle` (MLflow).
"""

from __future__ import annotations

from collections import deque

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import AiopsError
from aiops.lifecycle import log_and_promote
from aiops.progress import report
from aiops.settings import load_settings
from aiops.store import Store
from aiops.tasks import incident_labels, load_panel, task_by_name, tasks
from aiops.training import plan_holdout, train_candidate, usable


class TrainParams(BaseModel):
    """Which tasks and candidates to train (default: every task and candidate in the settings)."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] | None = Field(None, description="task names, e.g. forecast-cpu_usage; default: all")
    candidates: list[str] | None = Field(None, description="candidate model names; default: the settings' list")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")


@task(name="load-panel", cache_policy=NO_CACHE, retries=1)
def load_panel_task(store, t, settings):
    panel = load_panel(store, t, settings)
    return panel, incident_labels(store, panel)


@task(name="train-candidate", cache_policy=NO_CACHE, task_run_name="train-{name}")
def train_candidate_task(t, name, panel, holdout, settings, labels):
    return train_candidate(t, name, panel, holdout, settings, labels)


@task(name="log-and-promote", cache_policy=NO_CACHE, retries=1)
def log_and_promote_task(settings, t, panel, holdout, results, labels):
    return log_and_promote(settings, t, panel, holdout, results, labels)


def _run_bounded(names, workers, submit):
    """Submit one task per name with at most `workers` in flight (each may hold a model in memory)."""
    pending, done = deque(), {}
    for n in names:
        if len(pending) >= workers:
            m, f = pending.popleft()
            done[m] = f.result()
        pending.append((n, submit(n)))
    for m, f in pending:
        done[m] = f.result()
    return [done[n] for n in names]


@flow(name="train", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=8))
def train(params: TrainParams = TrainParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file)
    store = Store(settings.data_dir)
    selected = [task_by_name(settings, n) for n in params.tasks] if params.tasks else tasks(settings)
    outcomes = {}
    for k, t in enumerate(selected):
        report("train", k, len(selected), f"{t.name}: loading data")
        try:
            panel, labels = load_panel_task(store, t, settings)
            holdout = plan_holdout(t, panel, settings)
        except (AiopsError, ValueError) as exc:  # one task without enough data must not stop the others
            logger.warning("%s: skipped: %s", t.name, exc)
            outcomes[t.name] = {"task": t.name, "skipped": str(exc)}
            continue
        names = [n for n in t.candidates if params.candidates is None or n in params.candidates]
        skipped = {n: why for n in names if (why := usable(t, n))}
        for n, why in skipped.items():
            logger.info("%s: skipping %s: %s", t.name, n, why)
        names = [n for n in names if n not in skipped]
        logger.info("%s: training %s on %d series, holdout %s .. %s (%s)", t.name, ", ".join(names),
                    len(holdout.series), holdout.fit_end, holdout.end, holdout.id)
        results = _run_bounded(names, settings.train.workers,
                               lambda n: train_candidate_task.submit(t, n, panel, holdout, settings, labels))
        for res in results:
            if res.ok:
                logger.info("%s: %s %s in %.1f s", t.name, res.model_name,
                            ", ".join(f"{m}={v:.4g}" for m, v in res.metrics.items()), res.seconds)
            else:
                logger.warning("%s: %s failed: %s", t.name, res.model_name, res.error)
        outcome = log_and_promote_task(settings, t, panel, holdout, results, labels)
        if outcome.decision:
            d = outcome.decision
            logger.info("%s: %s v%s %s (%s %s vs champion %s): %s", t.name, outcome.best, outcome.version,
                        "promoted" if d["promoted"] else "not promoted", d["metric"],
                        _fmt(d["challenger_score"]), _fmt(d["champion_score"]), d["reason"])
        outcomes[t.name] = outcome.to_dict()
    report("train", len(selected), len(selected), "done")
    return outcomes


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"
