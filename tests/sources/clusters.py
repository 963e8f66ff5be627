"""A small hand-made cluster for source tests: four workloads, two namespaces, incidents that exercise
restarts, OOM kills, throttling and HPA scaling within a few hours."""

from __future__ import annotations

from datetime import timedelta

from aiops.sim.spec import (ClusterSpec, DemandSpec, HPASpec, IncidentSpec, InstanceType, NodePoolSpec, Resources,
                            WorkloadSpec)


def small_cluster(name: str = "sim") -> ClusterSpec:
    return ClusterSpec(
        name=name,
        namespaces=("shop", "batch"),
        instance_types=(InstanceType(name="m5.xlarge", cpu_cores=4, memory_bytes=16 * 2**30, price_per_hour=0.192),),
        node_pools=(NodePoolSpec(name="general", instance_type="m5.xlarge", min_nodes=1, max_nodes=6,
                                 initial_nodes=2),),
        workloads=(
            WorkloadSpec(name="web", namespace="shop", node_pool="general", replicas=2,
                         hpa=HPASpec(min_replicas=2, max_replicas=6, target_cpu_utilization=0.6),
                         demand=DemandSpec(base_rps=80, daily_amplitude=0.6, peak_hour=2.0)),
            WorkloadSpec(name="cart", namespace="shop", node_pool="general", replicas=2,
                         resources=Resources(cpu_request=0.1, cpu_limit=0.12, memory_request=128 * 2**20,
                                             memory_limit=256 * 2**20),
                         demand=DemandSpec(base_rps=30, peak_hour=2.0)),
            WorkloadSpec(name="search", namespace="shop", node_pool="general", replicas=3, container="engine",
                         resources=Resources(cpu_request=0.5, cpu_limit=None, memory_request=512 * 2**20,
                                             memory_limit=None),
                         demand=DemandSpec(base_rps=30)),
            WorkloadSpec(name="etl", namespace="batch", node_pool="general", replicas=1, container="worker",
                         demand=DemandSpec(base_rps=5, noise=0.2)),
        ),
        incidents=(
            IncidentSpec(kind="memory_leak", namespace="shop", workload="cart", start=timedelta(minutes=30),
                         duration=timedelta(minutes=90), magnitude=400 * 2**20),
            IncidentSpec(kind="crash_loop", namespace="batch", workload="etl", start=timedelta(minutes=100),
                         duration=timedelta(minutes=40), magnitude=1.0),
            IncidentSpec(kind="traffic_spike", namespace="shop", workload="web", start=timedelta(minutes=60),
                         duration=timedelta(minutes=30), magnitude=3.0),
        ),
    )
