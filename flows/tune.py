"""Tune flow: search each busy HPA's settings on its recorded demand, log the search, propose the chosen point.

Thin: the work is `aiops.optimize.tune` (search) and `aiops.optimize.tune_report` (MLflow). Whether anything is
applied is the actuator's decision (its mode, the automation's role, guardrails), never this flow's.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.actuator.automation import propose_all
from aiops.optimize.tune import proposals, tune_workloads
from aiops.optimize.tune_report import log_to_mlflow
from aiops.settings import load_settings


class TuneParams(BaseModel):
    """Which HPAs to tune and how hard; whether to act on the proposals at once."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] | None = Field(None, description="namespaces (glob patterns); default: tune.namespaces")
    budget: int | None = Field(None, ge=8, description="simulator evaluations per workload; default: tune.budget")
    act: bool = Field(True, description="dry-run or apply the new proposals at once (per actuator.mode)")
    dry_run: bool | None = Field(None, description="force a dry-run; default: follow actuator.mode")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")
    kubeconfig: str | None = Field(None, description="kubeconfig of the cluster; default: the settings'")


@task(name="tune-hpas", cache_policy=NO_CACHE)
def tune_task(settings, cfg):
    logger = get_run_logger()
    seen: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        # a line per generation is enough in the Prefect log
        if done - seen.get(name, 0) >= cfg.population or done == total:
            seen[name] = done
            logger.info("%s: %d/%d candidates evaluated", name, done, total)

    return tune_workloads(settings, cfg, progress=progress)


@task(name="log-search", cache_policy=NO_CACHE)
def log_task(settings, rows):
    return log_to_mlflow(settings, rows)


@task(name="propose", cache_policy=NO_CACHE)
def propose_task(settings, rows, act, dry_run):
    run_id = "tune-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M")
    return propose_all(settings, proposals(settings, rows, run_id=run_id), act=act, dry_run=dry_run, supersede=True)


@flow(name="tune", log_prints=True)
def tune(params: TuneParams = TuneParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file, **({"kubeconfig": params.kubeconfig} if params.kubeconfig else {}))
    cfg = settings.tune
    update = {k: v for k, v in (("namespaces", tuple(params.namespaces) if params.namespaces else None),
                                ("budget", params.budget)) if v is not None}
    cfg = cfg.model_copy(update=update)
    rows = tune_task(settings, cfg)
    runs = log_task(settings, rows)
    results = propose_task(settings, rows, params.act, params.dry_run)
    for w in rows:
        logger.info("%s/%s (%s): %s; %s", w.namespace, w.workload, w.hpa, w.status, w.reason)
    for r in results:
        level = logger.info if r["exit_code"] == 0 else logger.warning
        level("recommendation %s %s: %s (%s)", r["id"], r["target"], r["outcome"], r["reason"])
    return {"workloads": [w.as_dict() for w in rows], "mlflow_runs": runs, "results": results}
