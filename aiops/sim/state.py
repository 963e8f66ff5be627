"""What the simulated cluster looks like at one instant, and what it records over a run.

The engine fills these; the Kubernetes API server, the `/metrics` exposition and the simulator source read
them. Workload counters (`*_total`) are cumulative from the workload's creation; a pod's CPU and CFS counters
are its container instance's, as cAdvisor's: they start from 0 when the container starts and again after each
restart (a new container instance), and never decrease in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from aiops.sim.spec import HPASpec, Resources

# latency histogram bucket upper bounds in seconds (Istio's default buckets, in ms, divided by 1000)
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0,
)


@dataclass(frozen=True)
class PodState:
    name: str
    namespace: str
    workload: str
    replicaset: str
    container: str
    node: str | None  # None while Pending (unscheduled)
    phase: Literal["Pending", "Running"]
    ready: bool
    created: datetime
    started: datetime | None
    restarts: int
    waiting_reason: str | None  # e.g. "CrashLoopBackOff", "ContainerCreating"
    last_terminated_reason: str | None  # e.g. "OOMKilled", "Error", "Evicted"
    resources: Resources
    cpu_cores: float  # usage now
    cpu_usage_seconds_total: float
    cfs_periods_total: float
    cfs_throttled_periods_total: float
    memory_working_set_bytes: float
    labels: dict[str, str]


@dataclass(frozen=True)
class WorkloadState:
    namespace: str
    name: str
    container: str
    revision: int  # deployment revision; a new one starts a new ReplicaSet
    replicaset: str  # name of the current ReplicaSet
    spec_replicas: int
    ready_replicas: int
    resources: Resources
    hpa: HPASpec | None
    hpa_desired_replicas: int | None
    hpa_current_utilization: float | None  # fraction of request, as the HPA last saw it
    request_rate: float  # requests/s now
    requests_total: float
    latency_p99_s: float
    latency_bucket_counts: tuple[float, ...]  # cumulative counts per LATENCY_BUCKETS_S, then +Inf
    latency_sum_s: float
    labels: dict[str, str]
    annotations: dict[str, str]
    image: str
    requests_timed_out_total: float = 0.0  # requests cut at the timeout (counted in requests_total; Istio 504)


@dataclass(frozen=True)
class NodeState:
    name: str
    pool: str
    instance_type: str
    cpu_cores: float
    memory_bytes: float
    price_per_hour: float
    created: datetime
    ready: bool
    conditions: dict[str, bool]  # "DiskPressure", "MemoryPressure" -> True when under pressure


@dataclass(frozen=True)
class Snapshot:
    time: datetime
    step: int
    workloads: tuple[WorkloadState, ...]
    pods: tuple[PodState, ...]
    nodes: tuple[NodeState, ...]


@dataclass(frozen=True)
class SimEvent:
    """A Kubernetes Event as the controllers would emit it (`reason`/`message` follow the real ones)."""

    time: datetime
    namespace: str
    kind: Literal["Deployment", "ReplicaSet", "Pod", "Node", "HorizontalPodAutoscaler"]
    name: str
    reason: str  # ScalingReplicaSet, SuccessfulRescale, OOMKilling, BackOff, Evicted, ...
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True)
class IncidentLabel:
    """Ground truth: an injected incident, what it touched and when."""

    id: str
    kind: str
    namespace: str
    workload: str
    start: datetime
    end: datetime
    magnitude: float
    description: str


@dataclass
class SimResult:
    """Workload-level series recorded over a run: `arrays[metric]` has shape (steps, workloads).

    Metric names and units are those of `aiops.metrics.METRICS`.
    """

    cluster: str
    times: np.ndarray  # datetime64[ns] (UTC), shape (steps,)
    namespaces: tuple[str, ...]  # per workload
    workloads: tuple[str, ...]
    containers: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    node_counts: dict[str, np.ndarray] = field(default_factory=dict)  # pool -> (steps,)
    cost_per_hour: np.ndarray | None = None  # (steps,) node cost of the cluster
    slo_violation: np.ndarray | None = None  # (steps, workloads) bool: p99 above the workload's SLO
    labels: list[IncidentLabel] = field(default_factory=list)
    events: list[SimEvent] = field(default_factory=list)
