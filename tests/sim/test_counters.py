"""The snapshot's per-pod counters and gauges tell the same story as the recorded series, step by step, through
pod lifecycle transitions; container counters are monotone over a container's life; latency is cut at the
timeout in the histogram too."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from aiops.sim.demand import TIMEOUT_S
from aiops.sim.engine import Engine
from aiops.sim.spec import DemandSpec, HPASpec, Resources
from aiops.sim.state import LATENCY_BUCKETS_S
from tests.sim.test_engine import START, MiB, cluster, wl
from tests.sources.clusters import small_cluster


def _walk(engine: Engine, steps: int):
    """(recorded row, snapshot at that step's end, previous snapshot) for `steps` single steps."""
    prev = engine.snapshot()
    for _ in range(steps):
        rec = engine.run(1)
        snap = engine.snapshot()
        yield rec, snap, prev
        prev = snap


@pytest.mark.parametrize("make", [
    lambda: Engine(small_cluster(), start=datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc), step_s=60, seed=1),
    lambda: Engine(cluster(wl(replicas=2, hpa=HPASpec(min_replicas=2, max_replicas=8, target_cpu_utilization=0.5),
                              startup_delay_s=90.0, demand=DemandSpec(base_rps=300, noise=0.05))),
                   start=START, step_s=30, seed=2),
])
def test_snapshot_sums_equal_the_recorded_series(make):
    engine = make()
    st = engine.step_s
    idx = {(w.namespace, w.name): i for i, w in enumerate(engine.spec.workloads)}
    transitions = 0
    for rec, snap, prev in _walk(engine, 50):
        old = {p.name: p for p in prev.pods}
        cpu = np.zeros(len(idx))
        mem = np.zeros(len(idx))
        ready = np.zeros(len(idx))
        for p in snap.pods:
            i = idx[(p.namespace, p.workload)]
            q = old.get(p.name)
            c0 = q.cpu_usage_seconds_total if q is not None and q.restarts == p.restarts else 0.0
            assert p.cpu_usage_seconds_total >= c0  # monotone over a container's life
            cpu[i] += (p.cpu_usage_seconds_total - c0) / st
            mem[i] += p.memory_working_set_bytes
            ready[i] += p.ready
            transitions += q is None or q.ready != p.ready or q.restarts != p.restarts
        a = rec.arrays
        np.testing.assert_allclose(cpu, a["cpu_usage"][0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mem, a["memory_working_set"][0], rtol=1e-12)
        assert ready.tolist() == a["replicas_available"][0].tolist()
        assert [w.ready_replicas for w in snap.workloads] == a["replicas_available"][0].tolist()
    assert transitions > 5


def test_container_counters_reset_on_restart_and_never_drop_otherwise():
    res = Resources(memory_request=256 * MiB, memory_limit=300 * MiB)
    w = wl(resources=res, memory_base=200 * MiB, memory_per_rps=5 * MiB, replicas=2,
           demand=DemandSpec(base_rps=60, daily_amplitude=0, weekly_amplitude=0, noise=0.01))  # OOM-kills
    engine = Engine(cluster(w), start=START)
    resets = 0
    for _, snap, prev in _walk(engine, 30):
        old = {p.name: p for p in prev.pods}
        for p in snap.pods:
            q = old.get(p.name)
            if q is None:
                continue
            for f in ("cpu_usage_seconds_total", "cfs_periods_total", "cfs_throttled_periods_total"):
                if p.restarts > q.restarts:
                    assert getattr(p, f) == 0.0  # a new container instance, waiting in CrashLoopBackOff
                else:
                    assert getattr(p, f) >= getattr(q, f), (f, p.name)
            resets += p.restarts > q.restarts
            if p.waiting_reason == "CrashLoopBackOff":
                assert p.memory_working_set_bytes == 0.0 and not p.ready
    assert resets >= 2


def test_saturated_latency_is_cut_at_the_timeout_and_counted_as_timeouts():
    e = Engine(cluster(wl(replicas=1, resources=Resources(cpu_request=0.1, cpu_limit=0.1),
                          demand=DemandSpec(base_rps=200, noise=0.01))), start=START)
    r = e.run(5)
    assert (r.arrays["latency_p99"][:, 0] == TIMEOUT_S).all()
    w = e.snapshot().workloads[0]
    total = w.latency_bucket_counts[-1]
    assert total == pytest.approx(w.requests_total)
    assert w.requests_timed_out_total == pytest.approx(total, rel=1e-9)  # rho >= 1: every request times out
    i30 = LATENCY_BUCKETS_S.index(TIMEOUT_S)
    assert all(c == total for c in w.latency_bucket_counts[i30:])
    assert w.latency_sum_s == pytest.approx(TIMEOUT_S * total)
