"""What-if: replay one workload's demand through the simulated cluster under many scaling policies at once.

Every policy becomes its own Deployment on its own node pool in one `Engine` run (the engine is vectorised
over workloads, so forty candidates cost little more than one), all fed the same demand array. A policy is a
static replica count, an HPA (with its CPU request), a replica schedule (a planner's or an oracle's), or an HPA
with a minReplicas schedule under it. Each gets the same pod, node and SLO model (`WorkloadModel`), so the only
difference between them is the policy.

Scored after a warm-up (so every policy starts from a settled state, not from its initial replicas):
- SLO-violation minutes: steps whose p99 latency is above the SLO (the engine's M/M/1 model per Ready pod;
  no Ready pod means every request times out);
- replica-hours: spec.replicas integrated over time (pods are paid for while they start);
- requested core-hours: replicas x CPU request (what the node bill scales with when requests are packed);
- node cost: the policy's own pool's nodes x price (the cluster autoscaler's view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aiops.sim.demand import LN100
from aiops.sim.engine import Engine
from aiops.sim.generate import INSTANCE_TYPES
from aiops.sim.spec import ClusterSpec, DemandSpec, HPASpec, NodePoolSpec, Resources, WorkloadSpec


class WorkloadModel(BaseModel):
    """The simulator's assumptions about the replayed workload: what a pod can serve, how fast it starts, the SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_per_request: float = Field(0.01, gt=0, description="core-seconds of CPU per request")
    cpu_idle: float = Field(0.02, ge=0, description="cores a pod uses with no traffic")
    cpu_request: float = Field(0.5, gt=0, description="the pod's CPU request (cores), unless a policy sets it")
    cpu_limit: float = Field(1.0, gt=0, description="the pod's CPU limit (cores): what it can use at most")
    service_time_s: float = Field(0.05, gt=0, description="mean latency of a request on an idle pod")
    slo_latency_s: float = Field(0.5, gt=0, description="p99 latency objective")
    startup_delay_s: float = Field(60.0, ge=0, description="container start to Ready")
    instance_type: str = Field("m5.xlarge", description="node type of each policy's pool (see aiops.sim.generate)")
    provisioning_delay_s: float = Field(180.0, ge=0, description="node scale-up decision to a Ready node")
    max_nodes: int = Field(40, ge=1, description="node slots per policy's pool")

    @property
    def pod_capacity(self) -> float:
        """Requests/s one pod serves with its p99 latency exactly at the SLO (M/M/1 on the CPU it can use)."""
        rho = 1.0 - self.service_time_s * LN100 / self.slo_latency_s
        if rho <= 0:
            raise ValueError(f"service time {self.service_time_s} s cannot meet a p99 SLO of {self.slo_latency_s} s")
        return rho * (self.cpu_limit - self.cpu_idle) / self.cpu_per_request

    def replicas_needed(self, demand: np.ndarray) -> np.ndarray:
        """The fewest pods that keep each step's demand within the SLO (at least one)."""
        return np.maximum(np.ceil(np.asarray(demand, float) / self.pod_capacity - 1e-9), 1).astype(np.int64)


@dataclass(frozen=True)
class Static:
    replicas: int


@dataclass(frozen=True)
class HPA:
    hpa: HPASpec
    cpu_request: float | None = None  # None: the model's


@dataclass(frozen=True)
class Scheduled:
    """Replicas set at every step from `replicas` (aligned with the scenario's demand; -1 keeps the last)."""

    replicas: np.ndarray


@dataclass(frozen=True)
class HPAWithFloor:
    """An HPA whose minReplicas follows `floor` (aligned with the demand): pre-scaling on top of the HPA."""

    hpa: HPASpec
    floor: np.ndarray
    cpu_request: float | None = None


Policy = Static | HPA | Scheduled | HPAWithFloor


@dataclass(frozen=True)
class Outcome:
    violation_minutes: float
    replica_hours: float
    core_hours: float
    node_cost: float
    minutes: float  # scored minutes

    def as_dict(self) -> dict[str, float]:
        return {"violation_minutes": self.violation_minutes, "replica_hours": self.replica_hours,
                "core_hours": self.core_hours, "node_cost": self.node_cost, "minutes": self.minutes}


def evaluate(demand: np.ndarray, policies: list[Policy], *, model: WorkloadModel = WorkloadModel(),
             warmup: int = 0, step_s: int = 60, start: datetime | None = None, seed: int = 0) -> list[Outcome]:
    """Replay `demand` (requests/s per step) under each policy; score the steps after `warmup`."""
    demand = np.asarray(demand, dtype=np.float64)
    if demand.ndim != 1 or len(demand) <= warmup:
        raise ValueError(f"demand: expected one series longer than the warm-up ({warmup} steps), got shape "
                         f"{demand.shape}")
    if not policies:
        return []
    n, w = len(demand), len(policies)
    start = start or datetime(2000, 1, 3, tzinfo=timezone.utc)
    spec = _cluster(policies, model, float(demand[:max(warmup, 1)].mean()))
    eng = Engine(spec, start=start, step_s=step_s, seed=seed, events=False)
    eng.replay(np.repeat(demand[:, None], w, axis=1))
    reps = np.full((n, w), -1, np.int64)
    mins = np.full((n, w), -1, np.int64)
    for j, p in enumerate(policies):
        if isinstance(p, Scheduled):
            reps[:, j] = _aligned(p.replicas, n, "Scheduled.replicas")
        elif isinstance(p, HPAWithFloor):
            mins[:, j] = np.maximum(_aligned(p.floor, n, "HPAWithFloor.floor"), 1)
    if (reps >= 0).any() or (mins >= 0).any():
        eng.schedule(replicas=reps if (reps >= 0).any() else None, hpa_min=mins if (mins >= 0).any() else None)
    if warmup:
        eng.step(warmup)
    res = eng.run(n - warmup)
    hours = step_s / 3600.0
    viol = res.slo_violation.sum(axis=0) * step_s / 60.0
    replicas = res.arrays["replicas"]
    cores = res.arrays["cpu_request"]
    price = {t.name: t.price_per_hour for t in INSTANCE_TYPES}[model.instance_type]
    out = []
    for j in range(w):
        nodes = res.node_counts[f"p{j}"]
        out.append(Outcome(float(viol[j]), float(replicas[:, j].sum() * hours), float(cores[:, j].sum() * hours),
                           float(nodes.sum() * hours * price), (n - warmup) * step_s / 60.0))
    return out


def _aligned(a: np.ndarray, n: int, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.shape != (n,):
        raise ValueError(f"{name}: expected one value per demand step ({n}), got shape {a.shape}")
    return a.astype(np.int64)


def _cluster(policies: list[Policy], model: WorkloadModel, level: float) -> ClusterSpec:
    """One workload and one node pool per policy; initial replicas at what the warm-up's mean demand needs."""
    types = {t.name: t for t in INSTANCE_TYPES}
    if model.instance_type not in types:
        raise ValueError(f"instance_type {model.instance_type!r}: known {sorted(types)}")
    it = types[model.instance_type]
    start_reps = int(model.replicas_needed(np.array([level]))[0])
    pools, workloads = [], []
    for j, p in enumerate(policies):
        req = getattr(p, "cpu_request", None) or model.cpu_request
        hpa = p.hpa if isinstance(p, (HPA, HPAWithFloor)) else None
        reps = p.replicas if isinstance(p, Static) else start_reps
        if hpa is not None:
            reps = min(max(reps, hpa.min_replicas), hpa.max_replicas)
        top = max(reps, hpa.max_replicas if hpa else 0, _most(p))
        per_node = max(1, int(it.cpu_cores * 0.94 // req))
        need_nodes = min(model.max_nodes, max(1, math.ceil(reps / per_node)))
        max_nodes = max(model.max_nodes, math.ceil(top / per_node) + 1)
        pools.append(NodePoolSpec(name=f"p{j}", instance_type=it.name, min_nodes=1, max_nodes=max_nodes,
                                  initial_nodes=need_nodes, provisioning_delay_s=model.provisioning_delay_s))
        workloads.append(WorkloadSpec(
            name=f"w{j}", namespace="whatif", replicas=reps, node_pool=f"p{j}",
            resources=Resources(cpu_request=req, cpu_limit=max(model.cpu_limit, req), memory_request=256 * 2**20,
                                memory_limit=None),
            startup_delay_s=model.startup_delay_s, cpu_per_request=model.cpu_per_request, cpu_idle=model.cpu_idle,
            memory_base=128 * 2**20, memory_per_rps=0.0, service_time_s=model.service_time_s,
            slo_latency_s=model.slo_latency_s, hpa=hpa, demand=DemandSpec(base_rps=0.0, noise=0.0)))
    return ClusterSpec(name="whatif", namespaces=("whatif",), instance_types=(it,), node_pools=tuple(pools),
                       workloads=tuple(workloads))


def _most(p: Policy) -> int:
    if isinstance(p, Scheduled):
        return int(np.max(p.replicas, initial=0))
    if isinstance(p, HPAWithFloor):
        return int(np.max(p.floor, initial=0))
    return 0
