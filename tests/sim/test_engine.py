"""The engine: determinism, demand shape, throttling, OOM kills, pending pods and node provisioning, incidents."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from aiops.metrics import METRICS
from aiops.sim.engine import Engine, simulate
from aiops.sim.spec import (
    ClusterSpec, DemandSpec, HPASpec, IncidentSpec, InstanceType, NodePoolSpec, Resources, WorkloadSpec,
)

MiB = 2**20
START = datetime(2024, 1, 1, tzinfo=timezone.utc)  # a Monday


def cluster(*workloads: WorkloadSpec, incidents=(), nodes: int = 3, max_nodes: int = 10, delay: float = 180.0):
    return ClusterSpec(
        name="t", namespaces=("shop",),
        instance_types=(InstanceType(name="m5.xlarge", cpu_cores=4, memory_bytes=16 * 2**30, price_per_hour=0.192),),
        node_pools=(NodePoolSpec(name="general", instance_type="m5.xlarge", min_nodes=1, max_nodes=max_nodes,
                                 initial_nodes=nodes, provisioning_delay_s=delay),),
        workloads=tuple(workloads), incidents=tuple(incidents))


def wl(name="web", **kw) -> WorkloadSpec:
    kw.setdefault("demand", DemandSpec(base_rps=40, noise=0.02))
    return WorkloadSpec(name=name, namespace="shop", node_pool="general", **kw)


def at(result, when: datetime) -> int:
    return int(np.searchsorted(result.times, np.datetime64(when.replace(tzinfo=None), "ns")))


def test_run_records_every_metric_and_is_deterministic():
    spec = cluster(wl("a", hpa=HPASpec(min_replicas=2, max_replicas=8)), wl("b", replicas=3))
    r1 = simulate(spec, start=START, steps=600, seed=3)
    r2 = simulate(spec, start=START, steps=600, seed=3)
    r3 = simulate(spec, start=START, steps=600, seed=4)
    assert set(r1.arrays) == set(METRICS)
    for m in METRICS:
        assert r1.arrays[m].shape == (600, 2)
        assert np.array_equal(r1.arrays[m], r2.arrays[m]), m
        lo, hi = METRICS[m].range
        assert np.all(r1.arrays[m] >= lo) and np.all(r1.arrays[m] <= hi), m
    assert not np.array_equal(r1.arrays["request_rate"], r3.arrays["request_rate"])
    assert [e.message for e in r1.events] == [e.message for e in r2.events]
    assert r1.times[0] == np.datetime64("2024-01-01T00:00:00", "ns") and r1.cost_per_hour.shape == (600,)
    assert r1.node_counts["general"][0] == 3 and np.isclose(r1.cost_per_hour[0], 3 * 0.192)


def test_step_and_run_agree_and_adding_an_incident_keeps_other_noise():
    spec = cluster(wl("a"), wl("b"))
    e = Engine(spec, start=START, seed=1)
    e.step(100)
    tail = e.run(50).arrays["request_rate"]
    whole = simulate(spec, start=START, steps=150, seed=1).arrays["request_rate"][100:]
    assert np.array_equal(tail, whole)
    inc = IncidentSpec(kind="traffic_spike", namespace="shop", workload="a", start=timedelta(minutes=10),
                       duration=timedelta(minutes=10), magnitude=3)
    spiked = simulate(cluster(wl("a"), wl("b"), incidents=[inc]), start=START, steps=150, seed=1)
    assert np.array_equal(spiked.arrays["request_rate"][:, 1], simulate(spec, start=START, steps=150, seed=1).arrays["request_rate"][:, 1])


def test_demand_daily_peak_and_weekend_dip():
    d = DemandSpec(base_rps=100, daily_amplitude=0.5, peak_hour=15, weekly_amplitude=0.3, noise=0.05)
    r = simulate(cluster(wl(demand=d, replicas=4, resources=Resources(cpu_limit=None))), start=START, steps=14 * 24, step_s=3600)
    rate = r.arrays["request_rate"][:, 0]
    hours = (r.times.astype("datetime64[h]").astype(np.int64)) % 24
    by_hour = np.array([rate[hours == h].mean() for h in range(24)])
    assert abs(int(np.argmax(by_hour)) - 15) <= 1
    weekday = ((r.times.astype("datetime64[D]").astype(np.int64)) + 3) % 7
    assert rate[weekday >= 5].mean() < 0.8 * rate[weekday < 5].mean()


def test_cpu_throttling_above_the_limit_raises_latency():
    res_tight = Resources(cpu_request=0.25, cpu_limit=0.3)
    res_loose = Resources(cpu_request=0.25, cpu_limit=2.0)
    d = DemandSpec(base_rps=130, daily_amplitude=0, weekly_amplitude=0, noise=0.01)
    tight = simulate(cluster(wl(demand=d, resources=res_tight, replicas=2)), start=START, steps=30)
    loose = simulate(cluster(wl(demand=d, resources=res_loose, replicas=2)), start=START, steps=30)
    # 65 rps per pod * 0.005 core-s + 0.01 idle = 0.335 cores needed per pod, above the 0.3 limit
    assert tight.arrays["cpu_throttled_ratio"][5:].mean() > 0.5
    assert loose.arrays["cpu_throttled_ratio"].max() == 0.0
    assert tight.arrays["cpu_usage"][5:].max() <= 2 * 0.3 + 1e-9
    assert tight.arrays["latency_p99"][5:].mean() > 3 * loose.arrays["latency_p99"][5:].mean()


def test_oom_kill_above_the_memory_limit_with_restarts_and_backoff():
    res = Resources(memory_request=256 * MiB, memory_limit=300 * MiB)
    w = wl(resources=res, memory_base=200 * MiB, memory_per_rps=5 * MiB, replicas=2,
           demand=DemandSpec(base_rps=60, daily_amplitude=0, weekly_amplitude=0, noise=0.01))  # 30 rps/pod: 350 MiB
    e = Engine(cluster(w), start=START)
    r = e.run(30)
    assert r.arrays["oom_kills"].sum() >= 2 and r.arrays["restarts"].sum() == r.arrays["oom_kills"].sum()
    snap = e.snapshot()
    assert max(p.restarts for p in snap.pods) >= 2
    assert {p.last_terminated_reason for p in snap.pods} == {"OOMKilled"}
    assert any(ev.reason == "OOMKilling" and ev.type == "Warning" for ev in r.events)
    backoffs = [ev.message for ev in r.events if ev.reason == "BackOff"]
    assert any("Back-off 10s" in m for m in backoffs) and any("Back-off 20s" in m for m in backoffs)
    assert r.arrays["replicas_available"].min() < 2


def test_pending_pods_wait_for_a_new_node_after_the_provisioning_delay():
    res = Resources(cpu_request=1.5, cpu_limit=2.0)
    e = Engine(cluster(wl(resources=res, replicas=2), nodes=1, delay=300), start=START)
    e.step(2)
    e.scale("shop", "web", 6)
    r = e.run(15)
    snap_pending = r.arrays["replicas_available"][:, 0]
    assert any(ev.reason == "FailedScheduling" for ev in r.events)
    assert any(ev.reason == "TriggeredScaleUp" for ev in r.events)
    # one 4-core node fits 2 pods of 1.5 cores; 6 pods need 3 nodes; nodes are Ready 300 s after the decision
    assert snap_pending[:5].max() == 2
    assert snap_pending[-1] == 6
    assert r.node_counts["general"][-1] == 3
    first_full = int(np.argmax(snap_pending == 6))
    assert first_full >= 5  # 5 steps of 60 s = the provisioning delay


def test_scale_down_of_underused_nodes():
    e = Engine(cluster(wl(replicas=1, resources=Resources(cpu_request=0.1)), nodes=4), start=START)
    r = e.run(40)
    assert r.node_counts["general"][0] == 4 and r.node_counts["general"][-1] < 4
    assert any(ev.reason == "ScaleDown" for ev in r.events)
    assert r.arrays["replicas_available"][-1, 0] == 1


def test_hpa_scales_with_demand_and_snapshot_names():
    d = DemandSpec(base_rps=200, daily_amplitude=0, weekly_amplitude=0, noise=0.01)
    e = Engine(cluster(wl(demand=d, replicas=2, hpa=HPASpec(min_replicas=2, max_replicas=10, target_cpu_utilization=0.5))),
               start=START)
    r = e.run(20)
    # 2 pods capped at their 1-core limit: ratio 4.08 -> limited to 6 (max(+100 %, +4 pods)); at 6 pods
    # 33.3 rps/pod * 0.005 + 0.01 idle = 0.177 cores = 71 % of 0.25 -> ceil(6 * 0.71 / 0.5) = 9; at 9: 48 %, stays
    assert r.arrays["replicas"][:, 0].max() == 9 and r.arrays["replicas"][-1, 0] == 9
    assert 6 in r.arrays["replicas"][:, 0]
    assert any(ev.reason == "SuccessfulRescale" and "above target" in ev.message for ev in r.events)
    snap = e.snapshot()
    names = [p.name for p in snap.pods]
    assert len(names) == len(set(names)) == 9
    rs = snap.workloads[0].replicaset
    assert rs.startswith("web-") and len(rs) == len("web-") + 10
    assert all(n.startswith(rs + "-") and len(n) == len(rs) + 6 for n in names)
    assert snap.workloads[0].hpa_desired_replicas == 9


def test_set_resources_rolls_out_a_new_replicaset():
    e = Engine(cluster(wl(replicas=4)), start=START)
    e.step(3)
    old_rs = e.snapshot().workloads[0].replicaset
    old_names = {p.name for p in e.snapshot().pods}
    e.set_resources("shop", "web", Resources(cpu_request=0.5, cpu_limit=1.0))
    r = e.run(10)
    snap = e.snapshot()
    assert snap.workloads[0].replicaset != old_rs and snap.workloads[0].revision == 2
    assert {p.replicaset for p in snap.pods} == {snap.workloads[0].replicaset}
    assert not old_names & {p.name for p in snap.pods}
    assert r.arrays["replicas_available"].min() >= 3  # maxUnavailable 25 % of 4
    assert r.arrays["cpu_request"][-1, 0] == pytest.approx(4 * 0.5)
    assert any(f"Scaled up replica set {snap.workloads[0].replicaset}" in ev.message for ev in r.events)


def test_zero_ready_pods_time_out():
    e = Engine(cluster(wl(replicas=2)), start=START)
    e.scale("shop", "web", 0)
    r = e.run(3)
    assert r.arrays["replicas_available"][-1, 0] == 0
    assert r.arrays["latency_p99"][-1, 0] == 30.0 and r.slo_violation[-1, 0]
