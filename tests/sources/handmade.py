"""Hand-made snapshots for exposition tests that must not depend on the engine's behaviour."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from aiops.sim.spec import HPASpec, Resources
from aiops.sim.state import LATENCY_BUCKETS_S, NodeState, PodState, Snapshot, WorkloadState

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)


def snapshot(step: int = 0, *, step_s: int = 60) -> Snapshot:
    """Two workloads (one with an HPA and an awkward label value), three pods (one Pending), two nodes."""
    t = T0 + timedelta(seconds=step * step_s)
    k = step + 1
    res = Resources(cpu_request=0.5, cpu_limit=1.0, memory_request=256 * 2**20, memory_limit=512 * 2**20)
    nolim = Resources(cpu_request=0.25, cpu_limit=None, memory_request=128 * 2**20, memory_limit=None)
    buckets = tuple(float(k * 10 * min(i + 1, 12)) for i in range(len(LATENCY_BUCKETS_S))) + (k * 120.0,)
    w1 = WorkloadState(
        namespace="shop", name="web", container="app", revision=2, replicaset="web-5d9c7", spec_replicas=2,
        ready_replicas=2, resources=res, hpa=HPASpec(min_replicas=2, max_replicas=6), hpa_desired_replicas=2,
        hpa_current_utilization=0.4, request_rate=2.0, requests_total=120.0 * k, latency_p99_s=0.04,
        latency_bucket_counts=buckets, latency_sum_s=2.5 * k, labels={"app": "web"}, annotations={},
        image='registry.local/web:1.0 "quoted" \\ back\nslash',
    )
    w2 = WorkloadState(
        namespace="batch", name="etl", container="worker", revision=1, replicaset="etl-7f8b", spec_replicas=1,
        ready_replicas=0, resources=nolim, hpa=None, hpa_desired_replicas=None, hpa_current_utilization=None,
        request_rate=0.0, requests_total=0.0, latency_p99_s=0.0, latency_bucket_counts=(0.0,) * 18,
        latency_sum_s=0.0, labels={}, annotations={}, image="registry.local/etl:2",
    )

    def pod(name, w, rs, node, phase, cpu, restarts=0, reason=None, waiting=None):
        return PodState(
            name=name, namespace=w.namespace, workload=w.name, replicaset=rs, container=w.container, node=node,
            phase=phase, ready=phase == "Running", created=T0, started=T0 if node else None, restarts=restarts,
            waiting_reason=waiting, last_terminated_reason=reason, resources=w.resources, cpu_cores=cpu,
            cpu_usage_seconds_total=cpu * step_s * k, cfs_periods_total=600.0 * k,
            cfs_throttled_periods_total=15.0 * k, memory_working_set_bytes=100e6 + step, labels={},
        )

    pods = (
        pod("web-5d9c7-abcde", w1, "web-5d9c7", "node-a-0", "Running", 0.3, restarts=step, reason="OOMKilled"),
        pod("web-4c1aa-zzzzz", w1, "web-4c1aa", "node-a-1", "Running", 0.2),
        pod("etl-7f8b-qqqqq", w2, "etl-7f8b", None, "Pending", 0.0, waiting="ContainerCreating"),
    )
    nodes = tuple(
        NodeState(name=f"node-a-{i}", pool="pool-a", instance_type="m5.xlarge", cpu_cores=4, memory_bytes=16e9,
                  price_per_hour=0.192, created=T0, ready=True, conditions={"DiskPressure": i == 1})
        for i in range(2)
    )
    return Snapshot(time=t, step=step, workloads=(w1, w2), pods=pods, nodes=nodes)
