"""Cost flow: right-size every selected container from its stored usage, pack the result onto node pools, and
submit the requests/limits and node-pool bounds as recommendations.

Thin: the work is `aiops.optimize.cost` (right-sizing) and `aiops.optimize.cost_nodes` (packing). Whether anything
is applied is the actuator's decision (its mode, the automation's role, guardrails), never this flow's; the
recommendations of one history (its last stored step) are submitted once, so a re-run is a no-op.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from aiops.actuator.automation import propose_all
from aiops.optimize.cost import plan_costs, proposals
from aiops.optimize.cost_nodes import plan_pools, pool_proposals
from aiops.settings import load_settings


class CostParams(BaseModel):
    """Which containers to size; whether to act on the proposals at once."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] | None = Field(None, description="namespaces (glob patterns); default: cost.namespaces")
    act: bool = Field(True, description="dry-run or apply the new proposals at once (per actuator.mode)")
    dry_run: bool | None = Field(None, description="force a dry-run; default: follow actuator.mode")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")
    kubeconfig: str | None = Field(None, description="kubeconfig of the cluster; default: the settings'")


@task(name="rightsize", cache_policy=NO_CACHE, retries=1)
def rightsize_task(settings, cfg):
    return plan_costs(settings, cfg)


@task(name="pack-nodes", cache_policy=NO_CACHE)
def pack_task(settings, plan):
    return plan_pools(settings, plan)


@task(name="propose", cache_policy=NO_CACHE)
def propose_task(settings, plan, act, dry_run):
    run_id = f"cost-{plan.end:%Y%m%dT%H%M}"
    todo = [*proposals(settings, plan, run_id=run_id), *pool_proposals(settings, plan, run_id=run_id)]
    return propose_all(settings, todo, act=act, dry_run=dry_run, supersede=True)


@flow(name="cost", log_prints=True)
def cost(params: CostParams = CostParams()) -> dict:
    logger = get_run_logger()
    settings = load_settings(params.config_file, **({"kubeconfig": params.kubeconfig} if params.kubeconfig else {}))
    cfg = settings.cost
    if params.namespaces:
        cfg = cfg.model_copy(update={"namespaces": tuple(params.namespaces)})
    plan = rightsize_task(settings, cfg)
    plan = pack_task(settings, plan)
    results = propose_task(settings, plan, params.act, params.dry_run)
    for p in plan.containers:
        c = p.container
        logger.info("%s/%s/%s: %s, $%.2f -> $%.2f per month; %s%s", c.namespace, c.workload, c.container, p.status,
                    p.cost_now, p.cost_new, p.reason, f" ({p.note})" if p.note else "")
    for name, why in plan.skipped.items():
        logger.warning("%s: skipped, %s", name, why)
    for pool in plan.pools:
        logger.info("node pool %s: %s", pool.name, pool.reason)
    for r in results:
        level = logger.info if r["exit_code"] == 0 else logger.warning
        level("recommendation %s %s: %s (%s)", r["id"], r["target"], r["outcome"], r["reason"])
    t = plan.totals()
    logger.info("%d container(s) sized, %d proposal(s); $%.2f -> $%.2f per month (saves $%.2f)", t["containers"],
                len(results), t["cost_now"], t["cost_new"], t["saving"])
    return {**plan.as_dict(), "results": results}
