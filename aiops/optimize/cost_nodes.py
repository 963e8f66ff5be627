"""Node pools for the right-sized pods: each pool's autoscaler bounds, and the cheapest mix of the catalog.

Per pool (the pods of the workloads that run on it now, `cost_inputs`), packed by `nodemix.pack` on the pool's own
instance type (one node's allocatable read from the cluster):
- the floor: the recommended requests at each workload's fewest ready pods in the history; the pool's minimum
  is proposed down to it when it is higher (a minimum above what the quietest hour needs is paid for all day);
- the cap: every workload at its most replicas (HPA maxReplicas, else replicas) with the larger of today's and
  the recommended requests (stepped requests arrive over several runs), plus `cost.node_headroom` nodes; the
  maximum is proposed at it, so the pool cannot grow past what its workloads can ever ask for, nor stop short
  of it. DaemonSets and pods of other controllers are not counted (the metrics are per Deployment): keep
  `node_headroom` for them.
Each bound moves within the actuator's guardrails (max step) and is one `NodePoolChange` on the pool's
MachineDeployment. The catalog-wide mix (all pods at their mean replicas, `cost.nodes.catalog`) is advice: the
pools' instance types are the cluster's to change, so it is reported beside today's pools' price, not proposed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiops.actuator.policy import Guardrails
from aiops.actuator.recommendation import Evidence, NodePoolChange, Proposal, Target
from aiops.errors import AiopsError
from aiops.optimize.cost import SOURCE, CostPlan
from aiops.optimize.cost_inputs import Pool
from aiops.optimize.config import NodeMixConfig, NodeType
from aiops.optimize.nodemix import pack

if TYPE_CHECKING:  # pragma: no cover
    from aiops.settings import Settings

GIB = 2**30


@dataclass
class PoolPlan:
    """One pool: today's bounds and size, the packed floor and cap, and the bounds proposed."""

    pool: Pool
    floor: int | None = None
    cap: int | None = None
    min_nodes: int | None = None  # proposed; None: unchanged
    max_nodes: int | None = None
    price_per_hour: float | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        return self.pool.name

    def as_dict(self) -> dict[str, Any]:
        p = self.pool
        return {"name": p.name, "instance_type": p.instance_type, "nodes": p.nodes, "bounds": [p.min_nodes, p.max_nodes],
                "floor": self.floor, "cap": self.cap, "min_nodes": self.min_nodes, "max_nodes": self.max_nodes,
                "price_per_hour": self.price_per_hour, "reason": self.reason}


def plan_pools(settings: Settings, plan: CostPlan) -> CostPlan:
    """`plan` with its pools' plans and the catalog-wide mix filled in."""
    cfg, g = settings.cost, settings.actuator.guardrails
    nodes = cfg.nodes
    prices = {t.name: t.price_per_hour for t in nodes.catalog}
    rows = [p for p in plan.containers if p.status != "skipped"]
    pools = []
    for pool in sorted(plan.pool_inputs.values(), key=lambda p: p.name):
        pp = PoolPlan(pool, price_per_hour=prices.get(pool.instance_type))
        pools.append(pp)
        mine = [p for p in rows if p.container.pool == pool.name]
        if not mine or not (pool.cpu > 0 and pool.memory > 0):
            pp.reason = "no sized workload runs on it" if not mine else "no node of it to read allocatable from"
            continue
        node = NodeType(name=pool.instance_type or pool.name, cpu_cores=pool.cpu, memory_gib=pool.memory / GIB,
                        price_per_hour=pp.price_per_hour or 1.0, reserved_cpu_cores=0.0, reserved_memory_gib=0.0)
        one = nodes.model_copy(update={"catalog": (node,)})
        rec = lambda p, r: p.recommended[f"{r}_request"]  # noqa: E731
        big = lambda p, r: max(rec(p, r), _or0(getattr(p.container, f"{r}_request")))  # noqa: E731
        try:
            floor = pack([_pod(p, rec(p, "cpu"), rec(p, "memory"), p.container.pods_min) for p in mine], one)
            cap = pack([_pod(p, big(p, "cpu"), big(p, "memory"), max(p.container.max_replicas, p.container.pods_max))
                        for p in mine], one)
        except AiopsError as exc:
            pp.reason = f"not packed: {exc}"
            continue
        pp.floor = sum(floor.node_counts.values())
        pp.cap = sum(cap.node_counts.values()) + cfg.node_headroom
        _propose_bounds(pp, g, len(mine), cfg.node_headroom)
    plan.pools = pools
    plan.mix = _catalog_mix(rows, nodes, plan.pool_inputs, prices)
    return plan


def _pod(p, cpu: float, memory: float, count: int) -> dict[str, Any]:
    return {"name": p.container.series, "cpu": cpu, "memory": memory, "count": int(count)}


def _or0(v: float) -> float:
    return 0.0 if v is None or math.isnan(v) else v


def _propose_bounds(pp: PoolPlan, g: Guardrails, n: int, headroom: int) -> None:
    p = pp.pool
    lo = p.min_nodes  # never raised: the autoscaler adds the nodes pending pods need
    if pp.floor < p.min_nodes:
        lo = max(pp.floor, math.ceil(p.min_nodes * (1 - g.max_step_down) - 1e-9))
    hi = pp.cap
    if p.max_nodes:
        hi = min(max(hi, math.ceil(p.max_nodes * (1 - g.max_step_down) - 1e-9)),
                 math.floor(p.max_nodes * (1 + g.max_step_up) + 1e-9))
    hi = max(hi, lo, 1)
    pp.min_nodes = lo if lo != p.min_nodes else None
    pp.max_nodes = hi if hi != p.max_nodes else None
    now = f"{p.min_nodes}-{p.max_nodes} nodes of {p.instance_type} (runs {p.nodes})"
    packed = (f"the right-sized pods of its {n} workload(s) need {pp.floor} node(s) at their fewest pods and "
              f"{pp.cap - headroom} at their most, + {headroom} headroom")
    if pp.min_nodes is None and pp.max_nodes is None:
        pp.reason = f"{now}: unchanged; {packed}"
        return
    pp.reason = f"{now} -> {lo}-{hi}: {packed}"
    if (pp.min_nodes is not None and lo != pp.floor) or hi != max(pp.cap, lo, 1):
        pp.reason += "; stepped within the guardrails' max step, the next run continues"


def _catalog_mix(rows, nodes: NodeMixConfig, pools: dict[str, Pool], prices: dict[str, float]) -> dict[str, Any]:
    """The cheapest mix of the catalog for every right-sized pod at its mean replicas, beside today's pools."""
    pods = [_pod(p, p.recommended["cpu_request"], p.recommended["memory_request"],
                 max(1, math.ceil(p.container.pods_mean - 1e-9))) for p in rows]
    if not pods:
        return {}
    try:
        r = pack(pods, nodes)
    except AiopsError as exc:
        return {"summary": f"not packed: {exc}"}
    today = [(p.nodes, prices.get(p.instance_type)) for p in pools.values()]
    known = all(pr is not None for _, pr in today)
    now = sum(n * pr for n, pr in today) if known else None
    out = {"summary": r.summary(), "cost_per_hour": r.cost_per_hour, "bound": r.bound, "gap": r.gap,
           "ffd_cost_per_hour": r.ffd_cost_per_hour, "node_counts": dict(r.node_counts), "method": r.method,
           "status": r.status, "seconds": round(r.solve_seconds, 2), "pools_cost_per_hour": now}
    if now is not None:
        out["summary"] += f"; today's pools run {sum(n for n, _ in today)} nodes at ${now:.2f}/h"
    return out


def pool_proposals(settings: Settings, plan: CostPlan, *, run_id: str) -> list[Proposal]:
    """One `NodePoolChange` per pool whose bounds move."""
    out = []
    for pp in plan.pools:
        if pp.min_nodes is None and pp.max_nodes is None:
            continue
        change = NodePoolChange(min_nodes=pp.min_nodes, max_nodes=pp.max_nodes)
        out.append(Proposal(
            target=Target(cluster=settings.cluster_name, namespace=settings.cost.pool_namespace,
                          kind="MachineDeployment", name=pp.name),
            change=change, reason=pp.reason[:2000],
            evidence=Evidence(source=SOURCE, details={"floor": pp.floor, "cap": pp.cap, "nodes": pp.pool.nodes,
                                                      "bounds": [pp.pool.min_nodes, pp.pool.max_nodes]}),
            expected_effect=(f"the pool's autoscaler keeps {pp.min_nodes or pp.pool.min_nodes}-"
                             f"{pp.max_nodes or pp.pool.max_nodes} nodes of {pp.pool.instance_type}")[:2000],
            run_id=run_id))
    return out
