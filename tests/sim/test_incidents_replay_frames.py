"""Incidents show in their metric inside their label window (and not before); replay; frames; generate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiops.metrics import METRICS
from aiops.series import COLUMNS
from aiops.settings import SimSettings
from aiops.sim.engine import Engine, simulate
from aiops.sim.frames import events_to_frame, labels_to_frame, result_to_frame
from aiops.sim.generate import build_cluster
from aiops.sim.replay import load_trace
from aiops.sim.spec import DemandSpec, IncidentSpec, Resources, TraceSpec

from tests.sim.test_engine import START, MiB, cluster, wl
from tests.support.datasets import NASA_HTTP

NASA = NASA_HTTP  # read-only, never copied into the project

# kind -> (magnitude, metric, how it shows: window mean vs before mean)
CASES = {
    "traffic_spike": (3.0, "request_rate"),
    "memory_leak": (4096 * MiB, "oom_kills"),
    "crash_loop": (0.5, "restarts"),
    "disk_pressure": (0.5, "replicas_available"),
    "noisy_neighbour": (0.6, "cpu_throttled_ratio"),
    "bad_deploy": (5.0, "latency_p99"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_incident_shows_in_its_window_and_not_before(kind):
    mag, metric = CASES[kind]
    inc = IncidentSpec(kind=kind, namespace="shop", workload="web", start=timedelta(minutes=60),
                       duration=timedelta(minutes=30), magnitude=mag)
    w = wl(replicas=4, resources=Resources(cpu_request=0.25, cpu_limit=0.5, memory_limit=1024 * MiB),
           demand=DemandSpec(base_rps=120, daily_amplitude=0, weekly_amplitude=0, noise=0.02))
    e = Engine(cluster(w, incidents=[inc]), start=START)
    r = e.run(120)
    (label,) = r.labels
    assert label.kind == kind and label.start == START + timedelta(minutes=60) and kind.split("_")[0] in label.description
    s0, s1 = int(np.searchsorted(r.times, np.datetime64(label.start.replace(tzinfo=None)))), 90
    x = r.arrays[metric][:, 0]
    before, inside = x[:s0], x[s0:s1]
    if kind in ("memory_leak", "crash_loop"):
        assert before.sum() == 0 and inside.sum() > 0
    elif kind == "disk_pressure":
        assert before.min() == 4 and inside.min() < 4
        kinds = {(ev.reason, ev.time >= label.start) for ev in r.events}
        assert ("Evicted", True) in kinds and ("NodeHasDiskPressure", True) in kinds and ("Evicted", False) not in kinds
    elif kind == "noisy_neighbour":
        assert inside.mean() > before.mean() + 0.1
        assert r.arrays["latency_p99"][s0:s1, 0].mean() > r.arrays["latency_p99"][:s0, 0].mean()
    else:
        assert inside.max() > 2 * before.max()
    if kind == "memory_leak":
        mem = r.arrays["memory_working_set"][:, 0]
        assert mem[s0 + 5] > mem[s0 - 1]
    if kind == "bad_deploy":
        assert any(ev.reason == "ScalingReplicaSet" and ev.time >= label.end for ev in r.events)  # rollback
        assert x[-5:].max() < 2 * before.max()  # rolled back: latency recovers
        assert e.snapshot().workloads[0].revision == 3


def test_generated_cluster_is_realistic_and_deterministic():
    sim = SimSettings(workloads=20, namespaces=4, days=6, seed=11)
    a, b = build_cluster(sim), build_cluster(sim)
    assert a == b and a != build_cluster(sim.model_copy(update={"seed": 12}))
    assert len(a.workloads) == 20 and set(a.namespaces) == {w.namespace for w in a.workloads}
    assert "shop/frontend" in {f"{w.namespace}/{w.name}" for w in a.workloads}
    assert 2 <= len(a.node_pools) <= 3 and {t.name for t in a.instance_types} >= {"m5.large", "m5.xlarge", "c5.2xlarge"}
    n_hpa = sum(w.hpa is not None for w in a.workloads)
    assert 0 < n_hpa < 20
    assert sorted(i.kind for i in a.incidents) == sorted(CASES)
    assert all(timedelta(0) < i.start < timedelta(days=6) for i in a.incidents)
    assert not build_cluster(sim.model_copy(update={"incidents": False})).incidents
    r = simulate(a, start=START, steps=6 * 24 * 12, step_s=300)
    assert len(r.labels) == 6 and r.arrays["replicas_available"].mean() > 1


def test_replay_reproduces_the_nasa_trace_per_step_mean():
    raw = pd.read_csv(NASA, engine="pyarrow")
    t0 = int(raw.unix_s.iloc[0]) // 300 * 300
    first = raw[raw.unix_s < t0 + 12 * 300]
    expected = first.groupby((first.unix_s - t0) // 300).requests.mean().to_numpy()
    tr = load_trace(NASA, 300)
    assert np.allclose(tr.rps[:12], expected)
    # the gap in the log (28 Jul - 1 Aug 1995) is filled from the previous week; the hurricane outage stays zero
    assert tr.filled.sum() > 900 and np.isfinite(tr.rps).all()
    outage = int((807303122 - tr.t0) // 300) + 10
    assert tr.rps[outage : outage + 100].max() == 0.0
    spec = cluster(wl(demand=DemandSpec(trace=TraceSpec(path=NASA, scale=2.0)), replicas=3))
    start = datetime.fromtimestamp(tr.t0, tz=timezone.utc)
    r = simulate(spec, start=start, steps=12, step_s=300)
    assert np.allclose(r.arrays["request_rate"][:, 0], 2.0 * expected)
    # longer than the trace: it loops
    e = Engine(spec, start=start, step_s=300)
    from aiops.sim.demand import DemandModel

    dm = DemandModel(spec.workloads, start=start, step_s=300, seed=0)
    assert np.allclose(dm.rps(len(tr), 12)[:, 0], 2.0 * expected)
    assert e.t == 0


def test_result_to_frame_canonical_and_sliced():
    spec = cluster(wl("a"), wl("b"))
    r = simulate(spec, start=START, steps=30)
    f = result_to_frame(r)
    assert list(f.columns) == list(COLUMNS)
    assert len(f) == 30 * 2 * len(METRICS)
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]" and f["value"].dtype == np.float64
    for c in ("cluster", "namespace", "workload", "container", "metric", "unit"):
        assert f[c].astype("string").dtype == "string"
    cpu = f[(f.metric == "cpu_usage") & (f.workload == "b")]
    assert np.array_equal(cpu["value"].to_numpy(), r.arrays["cpu_usage"][:, 1])
    assert (f[f.metric == "latency_p99"].unit == "seconds").all()
    s = result_to_frame(r, ["request_rate"], start=START + timedelta(minutes=5), end=START + timedelta(minutes=15))
    assert len(s) == 10 * 2 and s.ts.min() == pd.Timestamp(START + timedelta(minutes=5)) and s.ts.max() < pd.Timestamp(START + timedelta(minutes=15))
    exact = result_to_frame(r, ["replicas"], categorical=False)
    assert all(str(exact[c].dtype) == COLUMNS[c] for c in COLUMNS)
    from aiops.series import conform

    assert conform(exact).equals(exact)


def test_labels_and_events_frames():
    inc = IncidentSpec(kind="crash_loop", namespace="shop", workload="web", start=timedelta(minutes=5),
                       duration=timedelta(minutes=10), magnitude=1.0)
    r = simulate(cluster(wl(), incidents=[inc]), start=START, steps=20)
    lf = labels_to_frame(r.labels)
    assert len(lf) == 1 and lf.start.iloc[0] == pd.Timestamp(START + timedelta(minutes=5))
    ef = events_to_frame(r.events, "t")
    assert len(ef) == len(r.events) and (ef[ef.reason == "BackOff"].type == "Warning").all()
    assert str(ef.time.dtype) == "datetime64[ns, UTC]"
