"""What a simulated cluster is made of: pure data, validated, frozen.

A `ClusterSpec` says which namespaces, node pools, workloads and incidents exist. The engine
(`aiops.sim.engine.Engine`) turns a spec plus a start time, step and seed into behaviour over time.
Units: CPU in cores, memory in bytes, time in seconds, demand in requests per second.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceType(_Spec):
    name: str = Field(..., description="cloud instance type, e.g. m5.xlarge")
    cpu_cores: float = Field(..., gt=0)
    memory_bytes: float = Field(..., gt=0)
    price_per_hour: float = Field(..., ge=0, description="on-demand price in USD per hour")


class NodePoolSpec(_Spec):
    name: str = Field(..., pattern=_DNS_LABEL)
    instance_type: str
    min_nodes: int = Field(1, ge=0)
    max_nodes: int = Field(20, ge=1)
    initial_nodes: int = Field(2, ge=0)
    provisioning_delay_s: float = Field(180.0, ge=0, description="time from scale-up decision to a Ready node")

    @model_validator(mode="after")
    def _bounds(self) -> "NodePoolSpec":
        if not self.min_nodes <= self.initial_nodes <= self.max_nodes:
            raise ValueError("need min_nodes <= initial_nodes <= max_nodes")
        return self


class HPAScalingPolicy(_Spec):
    type: Literal["Pods", "Percent"]
    value: int = Field(..., gt=0)
    period_s: int = Field(..., gt=0, le=1800)


class HPAScalingRules(_Spec):
    stabilization_window_s: int = Field(..., ge=0, le=3600)
    policies: tuple[HPAScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


# Kubernetes defaults (autoscaling/v2 HorizontalPodAutoscalerBehavior)
DEFAULT_SCALE_UP = HPAScalingRules(
    stabilization_window_s=0,
    policies=(HPAScalingPolicy(type="Percent", value=100, period_s=15), HPAScalingPolicy(type="Pods", value=4, period_s=15)),
    select_policy="Max",
)
DEFAULT_SCALE_DOWN = HPAScalingRules(
    stabilization_window_s=300,
    policies=(HPAScalingPolicy(type="Percent", value=100, period_s=15),),
    select_policy="Max",
)


class HPASpec(_Spec):
    """An autoscaling/v2 HPA on CPU utilisation (of requests), with its behaviour."""

    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(10, ge=1)
    target_cpu_utilization: float = Field(0.8, gt=0, le=5.0, description="fraction of the CPU request")
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_up: HPAScalingRules = DEFAULT_SCALE_UP
    scale_down: HPAScalingRules = DEFAULT_SCALE_DOWN

    @model_validator(mode="after")
    def _bounds(self) -> "HPASpec":
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class TraceSpec(_Spec):
    """Replay: drive demand from a real trace file (CSV, optionally gzip) of `time_column`, `value_column`."""

    path: Path
    time_column: str = "unix_s"
    value_column: str = "requests"
    time_unit: Literal["s", "ms"] = "s"
    scale: float = Field(1.0, gt=0, description="multiplier from trace units to requests per second")
    align: Literal["start", "time_of_week"] = Field(
        "start", description="trace start maps to the simulation start, or keep the trace's time of week"
    )
    loop: bool = Field(True, description="wrap around when the simulation outlasts the trace")


class DemandSpec(_Spec):
    """Request demand: base rate with daily and weekly seasonality, trend and noise; or a replayed trace."""

    base_rps: float = Field(50.0, ge=0)
    daily_amplitude: float = Field(0.5, ge=0, le=1, description="relative swing over the day")
    peak_hour: float = Field(14.0, ge=0, lt=24, description="hour of day (UTC) of the daily peak")
    weekly_amplitude: float = Field(0.2, ge=0, le=1, description="relative dip on weekends")
    trend_per_day: float = Field(0.0, ge=-0.5, le=0.5, description="relative growth per day")
    noise: float = Field(0.05, ge=0, le=2, description="relative standard deviation of step noise")
    trace: TraceSpec | None = None


class Resources(_Spec):
    cpu_request: float = Field(0.25, gt=0)
    cpu_limit: float | None = Field(1.0, gt=0, description="None: no CPU limit (no throttling)")
    memory_request: float = Field(256 * 2**20, gt=0)
    memory_limit: float | None = Field(512 * 2**20, gt=0, description="None: no memory limit (no OOM kill)")

    @model_validator(mode="after")
    def _limits(self) -> "Resources":
        if self.cpu_limit is not None and self.cpu_limit < self.cpu_request:
            raise ValueError("cpu_limit must be >= cpu_request")
        if self.memory_limit is not None and self.memory_limit < self.memory_request:
            raise ValueError("memory_limit must be >= memory_request")
        return self


class WorkloadSpec(_Spec):
    """A Deployment with one application container, its demand and how it uses resources."""

    name: str = Field(..., pattern=_DNS_LABEL, max_length=50)
    namespace: str = Field(..., pattern=_DNS_LABEL)
    container: str = Field("app", pattern=_DNS_LABEL)
    image: str = "registry.local/app:1.0.0"
    replicas: int = Field(2, ge=0, description="initial spec.replicas (the HPA takes over when present)")
    resources: Resources = Resources()
    node_pool: str
    startup_delay_s: float = Field(30.0, ge=0, description="container start to Ready")
    cpu_per_request: float = Field(0.005, gt=0, description="core-seconds of CPU per request")
    cpu_idle: float = Field(0.01, ge=0, description="cores used per pod with no traffic")
    memory_base: float = Field(128 * 2**20, ge=0, description="bytes per pod with no traffic")
    memory_per_rps: float = Field(1 * 2**20, ge=0, description="extra bytes per pod per request/s it serves")
    service_time_s: float = Field(0.02, gt=0, description="mean latency of one request on an idle pod")
    slo_latency_s: float = Field(0.5, gt=0, description="p99 latency objective")
    hpa: HPASpec | None = None
    demand: DemandSpec = DemandSpec()
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


IncidentKind = Literal["traffic_spike", "memory_leak", "crash_loop", "disk_pressure", "noisy_neighbour", "bad_deploy"]


class IncidentSpec(_Spec):
    """An incident injected at `start` (offset from the simulation start) for `duration`.

    `magnitude` means, by kind: traffic_spike demand multiplier; memory_leak bytes leaked per hour per pod;
    crash_loop fraction of pods crashing; disk_pressure fraction of the node's pods evicted; noisy_neighbour
    fraction of CPU stolen on the workload's nodes; bad_deploy latency multiplier of the new revision.
    """

    kind: IncidentKind
    namespace: str
    workload: str
    start: timedelta
    duration: timedelta
    magnitude: float = Field(..., gt=0)


class ClusterSpec(_Spec):
    name: str = Field("sim", pattern=_DNS_LABEL)
    namespaces: tuple[str, ...]
    instance_types: tuple[InstanceType, ...]
    node_pools: tuple[NodePoolSpec, ...]
    workloads: tuple[WorkloadSpec, ...]
    incidents: tuple[IncidentSpec, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> "ClusterSpec":
        types = {t.name for t in self.instance_types}
        pools = {p.name for p in self.node_pools}
        for p in self.node_pools:
            if p.instance_type not in types:
                raise ValueError(f"node pool {p.name!r}: unknown instance type {p.instance_type!r}; known: {sorted(types)}")
        seen: set[tuple[str, str]] = set()
        for w in self.workloads:
            if w.namespace not in self.namespaces:
                raise ValueError(f"workload {w.namespace}/{w.name}: namespace not in {list(self.namespaces)}")
            if w.node_pool not in pools:
                raise ValueError(f"workload {w.namespace}/{w.name}: unknown node pool {w.node_pool!r}; known: {sorted(pools)}")
            if (w.namespace, w.name) in seen:
                raise ValueError(f"workload {w.namespace}/{w.name} defined twice")
            seen.add((w.namespace, w.name))
        for i in self.incidents:
            if (i.namespace, i.workload) not in seen:
                raise ValueError(f"incident {i.kind}: unknown workload {i.namespace}/{i.workload}")
        return self

    def workload_index(self, namespace: str, name: str) -> int:
        for i, w in enumerate(self.workloads):
            if w.namespace == namespace and w.name == name:
                return i
        raise KeyError(f"no workload {namespace}/{name}")
