"""SimulatorSource: canonical frames, deterministic whatever the order of windows, labels and events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from aiops.errors import SourceError, UnknownNameError
from aiops.metrics import METRICS
from aiops.series import COLUMNS
from aiops.settings import load_settings
from aiops.sim.engine import simulate
from aiops.sim.frames import result_to_frame
from aiops.sources import MetricSource, fetch_events, make_source
from aiops.sources.kube_events import EVENT_COLUMNS
from aiops.sources.simulator import SimulatorSource

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def settings():
    return load_settings(sim={"workloads": 6, "namespaces": 2, "days": 2, "start": START, "seed": 3})


def test_frames_are_canonical(settings):
    src = make_source(settings)
    assert isinstance(src, SimulatorSource) and isinstance(src, MetricSource) and src.name == "simulator"
    frame = src.fetch(START + timedelta(hours=1), START + timedelta(hours=3), ["cpu_usage", "replicas"], 60)
    assert list(frame.columns) == list(COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == COLUMNS
    assert len(frame) == 2 * 120 * 6
    assert frame["ts"].min() == START + timedelta(hours=1)
    assert frame["ts"].max() == START + timedelta(hours=3) - timedelta(minutes=1)
    assert set(frame["cluster"]) == {"sim"} and set(frame["metric"]) == {"cpu_usage", "replicas"}
    assert dict(frame.groupby("metric")["unit"].first()) == {"cpu_usage": "cores", "replicas": "count"}
    assert not frame.duplicated(["namespace", "workload", "container", "metric", "ts"]).any()


def test_windows_are_identical_in_any_order_and_process(settings):
    a = SimulatorSource(settings)
    late = a.fetch(START + timedelta(hours=30), START + timedelta(hours=36), list(METRICS), 60)
    early = a.fetch(START, START + timedelta(hours=6), list(METRICS), 60)
    b = SimulatorSource(settings)  # a fresh source: as another process would
    early_b = b.fetch(START, START + timedelta(hours=6), list(METRICS), 60)
    late_b = b.fetch(START + timedelta(hours=30), START + timedelta(hours=36), list(METRICS), 60)
    pd.testing.assert_frame_equal(early, early_b)
    pd.testing.assert_frame_equal(late, late_b)
    # and the same numbers as one uninterrupted run of the engine
    one = simulate(a.spec, start=START, steps=36 * 60, step_s=60, seed=3)
    ref = result_to_frame(one, metrics=list(METRICS), start=START + timedelta(hours=30),
                          end=START + timedelta(hours=36), categorical=False)
    key = ["metric", "namespace", "workload", "ts"]
    got = late.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    assert (got["value"].to_numpy() == ref["value"].to_numpy()).all()


def test_edges_and_errors(settings):
    src = SimulatorSource(settings)
    assert src.fetch(START - timedelta(days=1), START, ["cpu_usage"], 60).empty  # before the simulation
    assert src.fetch(START, START, ["cpu_usage"], 60).empty
    with pytest.raises(UnknownNameError, match="unknown metric 'cpu'; known metrics: cpu_limit, cpu_request"):
        src.fetch(START, START + timedelta(hours=1), ["cpu"], 60)
    with pytest.raises(SourceError, match="AIOPS_INGEST__STEP_SECONDS=60"):
        src.fetch(START, START + timedelta(hours=1), ["cpu_usage"], 300)
    with pytest.raises(ValueError, match="before start"):
        src.fetch(START + timedelta(hours=1), START, ["cpu_usage"], 60)


def test_labels_and_events(settings):
    src = SimulatorSource(settings)
    labels = src.labels()
    assert len(labels) >= 1 and {"id", "kind", "namespace", "workload", "start", "end"} <= set(labels.columns)
    ev = src.events(START, START + timedelta(days=2))
    assert list(ev.columns) == list(EVENT_COLUMNS) and len(ev) > 0
    assert ev["ts"].is_monotonic_increasing and set(ev["cluster"]) == {"sim"}
    assert {"ScalingReplicaSet"} <= set(ev["reason"])
    same = fetch_events(settings, START, START + timedelta(days=2))
    pd.testing.assert_frame_equal(ev, same)
