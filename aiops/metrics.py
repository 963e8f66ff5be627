"""The catalogue of metrics aiops ingests, with their units and valid ranges.

One entry per metric name. Every source produces these names with these units, whichever backend it reads
(the simulator in process, or Prometheus with the cAdvisor / kube-state-metrics / Istio series real clusters
expose), so everything downstream keys on the same names. Validation reads the ranges from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.errors import UnknownNameError


@dataclass(frozen=True)
class Unit:
    name: str
    min_value: float
    max_value: float  # a sanity ceiling: values above it are a unit mistake, not load


UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("cores", 0.0, 100_000.0),
        Unit("bytes", 0.0, 1e16),
        Unit("ratio", 0.0, 1.0),
        Unit("count", 0.0, 1e9),
        Unit("requests_per_second", 0.0, 1e9),
        Unit("seconds", 0.0, 86_400.0),
    )
}


@dataclass(frozen=True)
class MetricDef:
    """A metric of a workload's container, aggregated over the workload's pods at each step."""

    name: str
    unit: str
    description: str

    @property
    def range(self) -> tuple[float, float]:
        u = UNITS[self.unit]
        return u.min_value, u.max_value


METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef("cpu_usage", "cores", "CPU used, summed over the workload's pods"),
        MetricDef("cpu_request", "cores", "CPU requested, summed over the workload's pods"),
        MetricDef("cpu_limit", "cores", "CPU limit, summed over the workload's pods"),
        MetricDef("cpu_throttled_ratio", "ratio", "fraction of CFS periods throttled, over the workload's pods"),
        MetricDef("memory_working_set", "bytes", "memory working set, summed over the workload's pods"),
        MetricDef("memory_request", "bytes", "memory requested, summed over the workload's pods"),
        MetricDef("memory_limit", "bytes", "memory limit, summed over the workload's pods"),
        MetricDef("replicas", "count", "desired replicas of the deployment (spec.replicas)"),
        MetricDef("replicas_available", "count", "available (ready) replicas of the deployment"),
        MetricDef("restarts", "count", "container restarts during the step, over the workload's pods"),
        MetricDef("oom_kills", "count", "containers OOM-killed during the step, over the workload's pods"),
        MetricDef("request_rate", "requests_per_second", "requests served per second by the workload"),
        MetricDef("latency_p99", "seconds", "99th percentile request latency of the workload"),
    )
}


def get_metric(name: str) -> MetricDef:
    """The catalogue entry for `name`; an unknown name raises an error listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownNameError("metric", name, list(METRICS)) from None
