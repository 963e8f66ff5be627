"""Prescale flow: plan each workload's replicas ahead of its forecast demand, and submit the changes.

Thin: the work is `aiops.optimize.prescale`. Whether anything is applied is the actuator's decision (its mode, the
automation's role, guardrails), never this flow's.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.actuator.automation import propose_all
from aiops.optimize.prescale import as_dicts, decide, make_proposals, open_duplicates, plan_workloads, \
    prescale_settings, run_id_for
from aiops.settings import load_settings


class PrescaleParams(BaseModel):
    """Which workloads to plan for, and whether to act on the proposals at once."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] | None = Field(None, description="namespaces (glob patterns); default: prescale.namespaces")
    act: bool = Field(True, description="dry-run or apply the new proposals at once (per actuator.mode)")
    dry_run: bool | None = Field(None, description="force a dry-run; default: follow actuator.mode")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")
    kubeconfig: str | None = Field(
        None, description="kubeconfig of the cluster to act on; default: the settings' (the demo passes the one "
        "aiops.sim.serve_local.local_api writes)")


@task(name="plan-workloads", cache_policy=NO_CACHE, retries=1)
def plan_task(settings, cfg):
    return decide(plan_workloads(settings, cfg), settings.actuator.guardrails)


@task(name="propose", cache_policy=NO_CACHE)
def propose_task(settings, cfg, plans, act, dry_run):
    proposals = open_duplicates(settings, plans, make_proposals(settings, plans, run_id=run_id_for(plans), cfg=cfg))
    return propose_all(settings, proposals, act=act, dry_run=dry_run, supersede=True)


@flow(name="prescale", log_prints=True)
def prescale(params: PrescaleParams = PrescaleParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file, **({"kubeconfig": params.kubeconfig} if params.kubeconfig else {}))
    cfg = prescale_settings(settings)
    if params.namespaces:
        cfg = cfg.model_copy(update={"namespaces": tuple(params.namespaces)})
    plans = plan_task(settings, cfg)
    results = propose_task(settings, cfg, plans, params.act, params.dry_run)
    for p in plans:
        logger.info("%s/%s: %s, %s %s -> %s: %s%s", p.namespace, p.workload, p.mode, p.kind or "-", p.current,
                    "-" if p.proposed is None else p.proposed, p.reason, f" ({p.note})" if p.note else "")
    for r in results:
        level = logger.info if r["exit_code"] == 0 else logger.warning
        level("recommendation %s %s: %s (%s)", r["id"], r["target"], r["outcome"], r["reason"])
    logger.info("%d workload(s) planned, %d proposal(s): %s", len(plans), len(results),
                ", ".join(f"{o} {sum(r['outcome'] == o for r in results)}" for o in sorted({r["outcome"]
                                                                                           for r in results})) or "-")
    return {"plans": as_dicts(plans), "results": results}
