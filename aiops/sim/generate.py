"""A realistic simulated cluster from `SimSettings`: namespaces, deployments, node pools, HPAs, incidents.

Deterministic for `sim.seed`: the same settings give the same spec (names, sizes, demand shapes, incidents).
Every deployment opts in to the actuator (`aiops.dev/actuate: "true"`) except the last one of each namespace,
so a demo shows both changes applied and changes refused for want of the opt-in.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from aiops.settings import SimSettings
from aiops.sim.spec import (
    ClusterSpec, DemandSpec, HPASpec, IncidentSpec, InstanceType, NodePoolSpec, Resources, TraceSpec, WorkloadSpec,
)

ACTUATE_ANNOTATION = "aiops.dev/actuate"  # the actuator's per-workload opt-in
MiB = 2**20
GiB = 2**30

# AWS us-east-1 on-demand Linux prices (USD/hour)
INSTANCE_TYPES = (
    InstanceType(name="m5.large", cpu_cores=2, memory_bytes=8 * GiB, price_per_hour=0.096),
    InstanceType(name="m5.xlarge", cpu_cores=4, memory_bytes=16 * GiB, price_per_hour=0.192),
    InstanceType(name="c5.2xlarge", cpu_cores=8, memory_bytes=16 * GiB, price_per_hour=0.34),
    InstanceType(name="r5.xlarge", cpu_cores=4, memory_bytes=32 * GiB, price_per_hour=0.252),
)

_CATALOG: dict[str, tuple[str, ...]] = {
    "shop": ("frontend", "checkout", "cart", "catalog", "recommendations", "product-api", "search-api", "reviews"),
    "payments": ("ledger", "gateway", "fraud-check", "invoicing", "refunds", "payouts"),
    "data": ("etl-worker", "ingest-api", "kafka-connect", "feature-store", "report-builder", "scheduler"),
    "platform": ("auth", "config-server", "notifications", "rate-limiter", "feature-flags", "audit-log"),
    "identity": ("login", "sessions", "user-profile", "mfa", "directory-sync"),
    "media": ("image-resizer", "thumbnailer", "video-transcoder", "cdn-origin", "uploads"),
    "search": ("indexer", "query-api", "autocomplete", "ranking"),
    "ads": ("bidder", "ad-server", "click-tracker", "budget-pacer"),
}
# per namespace: pool, daily peak hour (UTC) range, CPU per request
_PROFILE = {
    "data": ("compute", (1.0, 5.0), (0.01, 0.03)),
    "media": ("compute", (12.0, 20.0), (0.01, 0.03)),
    "search": ("memory", (11.0, 17.0), (0.003, 0.01)),
}
_KINDS = ("traffic_spike", "memory_leak", "crash_loop", "disk_pressure", "noisy_neighbour", "bad_deploy")


def _namespaces(n: int) -> list[str]:
    base = list(_CATALOG)
    return base[:n] + [f"team-{k}" for k in range(n - len(base))]


def _round_up(x: float, q: float) -> float:
    # whole millicores, as a person would write them (0.15, not 0.15000000000000002)
    return round(max(q, math.ceil(x / q) * q), 3)


def build_cluster(sim: SimSettings, *, cluster_name: str = "sim", start: datetime | None = None) -> ClusterSpec:
    """A realistic cluster spec for `sim` (see module docstring); `start` is accepted for symmetry (incidents are
    offsets from the simulation start, so the spec does not depend on it)."""
    rng = np.random.default_rng([sim.seed, 4242])
    namespaces = _namespaces(sim.namespaces)
    pools_needed = {"general"}
    workloads: list[WorkloadSpec] = []
    used: set[tuple[str, str]] = set()
    for k in range(sim.workloads):
        ns = namespaces[k % len(namespaces)]
        names = _CATALOG.get(ns, ("api", "worker", "web", "cron-runner", "gateway", "cache-warmer"))
        j = k // len(namespaces)
        name = names[j % len(names)] + ("" if j < len(names) else f"-{j // len(names) + 1}")
        while (ns, name) in used:
            name += "-x"
        used.add((ns, name))
        pool, peak_rng, cpr_rng = _PROFILE.get(ns, ("general", (9.0, 19.0), (0.002, 0.008)))
        pools_needed.add(pool)
        base = float(np.round(np.exp(rng.uniform(np.log(5), np.log(150))), 1))
        cpr = float(np.round(rng.uniform(*cpr_rng), 4))
        replicas = int(rng.integers(2, 6))
        daily = float(np.round(rng.uniform(0.3, 0.7), 2))
        peak_load = base * (1 + daily) * cpr / replicas
        # some workloads are sized tight (peak above the request, limit close to it): they throttle at peak
        cpu_req = _round_up(peak_load / float(rng.uniform(0.6, 1.2)), 0.05)
        cpu_lim = None if rng.random() < 0.2 else _round_up(cpu_req * float(rng.choice([1.0, 1.25, 1.5, 2.0])), 0.05)
        mem_base = float(rng.choice([96, 128, 192, 256, 384])) * MiB
        mem_rps = float(np.round(rng.uniform(0.2, 2.0), 2)) * MiB
        mem_req = _round_up(mem_base + mem_rps * base * (1 + daily) / replicas * 1.2, 64 * MiB)
        mem_lim = _round_up(mem_req * float(rng.choice([1.5, 2.0])), 64 * MiB)
        hpa = None
        if rng.random() < 0.6:
            hpa = HPASpec(min_replicas=2, max_replicas=max(6, replicas * 4),
                          target_cpu_utilization=float(rng.choice([0.6, 0.7, 0.75, 0.8])))
            replicas = max(replicas, 2)
        service = float(np.round(rng.uniform(0.005, 0.06), 3))
        workloads.append(WorkloadSpec(
            name=name, namespace=ns, image=f"registry.local/{ns}/{name}:1.{int(rng.integers(0, 30))}.{int(rng.integers(0, 10))}",
            replicas=replicas, node_pool=pool, startup_delay_s=float(rng.choice([10, 20, 30, 45, 60])),
            resources=Resources(cpu_request=cpu_req, cpu_limit=cpu_lim, memory_request=mem_req, memory_limit=mem_lim),
            cpu_per_request=cpr, cpu_idle=float(np.round(rng.uniform(0.002, 0.02), 3)), memory_base=mem_base,
            memory_per_rps=mem_rps, service_time_s=service, slo_latency_s=float(max(0.25, np.round(service * 15, 2))),
            hpa=hpa, labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns},
            # the last workload of each namespace (they are dealt round-robin) stays out
            annotations={} if k + len(namespaces) >= sim.workloads else {ACTUATE_ANNOTATION: "true"},
            demand=DemandSpec(base_rps=base, daily_amplitude=daily, peak_hour=float(np.round(rng.uniform(*peak_rng), 1)),
                              weekly_amplitude=float(np.round(rng.uniform(0.1, 0.4), 2)),
                              trend_per_day=float(np.round(rng.uniform(-0.005, 0.02), 4)),
                              noise=float(np.round(rng.uniform(0.03, 0.1), 3)))))
    if sim.replay_trace is not None and workloads:
        from aiops.sim.replay import load_trace

        tr = load_trace(sim.replay_trace, 60)
        scale = workloads[0].demand.base_rps / max(float(np.mean(tr.rps)), 1e-9)
        trace = TraceSpec(path=sim.replay_trace, scale=float(scale))
        workloads[0] = workloads[0].model_copy(update={"demand": workloads[0].demand.model_copy(update={"trace": trace})})
    pool_types = {"general": "m5.xlarge", "compute": "c5.2xlarge", "memory": "r5.xlarge"}
    types = {t.name: t for t in INSTANCE_TYPES}
    pools = []
    for p in ("general", "compute", "memory"):
        if p not in pools_needed:
            continue
        it = types[pool_types[p]]
        cpu = sum(w.resources.cpu_request * (w.hpa.max_replicas if w.hpa else w.replicas) for w in workloads if w.node_pool == p)
        mem = sum(w.resources.memory_request * (w.hpa.max_replicas if w.hpa else w.replicas) for w in workloads if w.node_pool == p)
        cpu0 = sum(w.resources.cpu_request * w.replicas for w in workloads if w.node_pool == p)
        mem0 = sum(w.resources.memory_request * w.replicas for w in workloads if w.node_pool == p)
        need0 = max(math.ceil(cpu0 / (it.cpu_cores * 0.94) * 1.25), math.ceil(mem0 / (it.memory_bytes * 0.88) * 1.25), 1)
        need_max = max(math.ceil(cpu / (it.cpu_cores * 0.94) * 1.3), math.ceil(mem / (it.memory_bytes * 0.88) * 1.3), need0 + 2)
        pools.append(NodePoolSpec(name=p, instance_type=it.name, min_nodes=1, max_nodes=need_max + 2,
                                  initial_nodes=need0, provisioning_delay_s=float(rng.choice([120, 180, 240]))))
    incidents: list[IncidentSpec] = []
    if sim.incidents and workloads:
        order = rng.permutation(len(workloads))
        total_h = sim.days * 24
        for k, kind in enumerate(_KINDS):
            w = workloads[int(order[k % len(order)])]
            slot_h = total_h / len(_KINDS)
            start_h = slot_h * k + float(rng.uniform(0.25, 0.6)) * slot_h
            dur_min = {"traffic_spike": 45, "memory_leak": 240, "crash_loop": 40, "disk_pressure": 30,
                       "noisy_neighbour": 60, "bad_deploy": 45}[kind]
            dur_min = min(dur_min, max(10, int(slot_h * 60 * 0.3)))
            if kind == "memory_leak":
                lim = w.resources.memory_limit or w.resources.memory_request * 2
                # leak fast enough to reach the limit in about half the window
                mag = float(_round_up((lim - w.memory_base) / (dur_min / 60 / 2), MiB))
            else:
                mag = {"traffic_spike": 3.0, "crash_loop": 0.5, "disk_pressure": 0.5, "noisy_neighbour": 0.6,
                       "bad_deploy": 4.0}[kind]
            incidents.append(IncidentSpec(kind=kind, namespace=w.namespace, workload=w.name,
                                          start=timedelta(hours=round(start_h * 4) / 4), duration=timedelta(minutes=dur_min),
                                          magnitude=mag))
    return ClusterSpec(name=cluster_name, namespaces=tuple(namespaces), instance_types=INSTANCE_TYPES,
                       node_pools=tuple(pools), workloads=tuple(workloads), incidents=tuple(incidents))
