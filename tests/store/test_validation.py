"""The GX suite at the door: every failure kind fails, naming the offending input; valid batches pass."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.metrics import METRICS
from aiops.validation import ValidationReport, validate_batch

from .conftest import make_frame

METRICS2 = ("cpu_usage", "cpu_throttled_ratio")


def _base() -> pd.DataFrame:
    return make_frame(METRICS2, steps=10, workloads=3)  # rows 0..29 cpu_usage, 30..59 ratio; ns0/w0 first


def _set(frame: pd.DataFrame, rows: list[int], col: str, value) -> pd.DataFrame:
    frame = frame.copy()
    if col in ("metric", "unit"):
        frame[col] = frame[col].astype("object")
    frame.loc[rows, col] = value
    return frame.astype({col: "string"}) if col in ("metric", "unit") else frame


def _swap_ts(frame: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[a, b], "ts"] = frame.loc[[b, a], "ts"].to_numpy()
    return frame


CASES = {
    "nan": (lambda f: _set(f, [3], "value", np.nan), ["value: 1 row NaN", "cpu_usage", "ns0/w0/app", "row 3"]),
    "negative": (
        lambda f: _set(f, [3, 4, 5], "value", -1.0),
        ["value: 3 rows below 0 for metric cpu_usage (ns0/w0/app)", "row 3: -1.0 at 2026-01-05T00:03:00+00:00"],
    ),
    "above unit range": (
        lambda f: _set(f, [31], "value", 1.5),
        ["value: 1 row above the maximum", "cpu_throttled_ratio", "row 31: 1.5"],
    ),
    "out of order": (
        lambda f: _swap_ts(f, 12, 14),
        ["ts: 2 rows not after the previous row of the same series", "cpu_usage (ns1/w1/app)", "row 13", "row 14"],
    ),
    "duplicate ts": (
        lambda f: _set(f, [13], "ts", f.loc[12, "ts"]),
        ["ts: 1 row not after the previous row", "row 13: 2026-01-05T00:02:00+00:00"],
    ),
    "duplicate key": (
        lambda f: pd.concat([f, f.iloc[[45]]], ignore_index=True),
        ["key: 2 rows duplicate (series key, ts) for metric cpu_throttled_ratio (ns1/w1/app)", "row 60"],
    ),
    "unknown metric": (
        lambda f: _set(f, [2], "metric", "cpu_usge"),
        ["metric: 1 row not in the catalogue: 'cpu_usge'; known: cpu_limit"],
    ),
    "wrong unit": (
        lambda f: _set(f, [33], "unit", "cores"),
        ["unit: 1 row not the metric's catalogue unit for metric cpu_throttled_ratio", "row 33: 'cores'"],
    ),
    "missing column": (lambda f: f.drop(columns=["container"]), ["columns: expected", "missing ['container']"]),
    "wrong column": (
        lambda f: f.rename(columns={"value": "val"}),
        ["missing ['value'], unexpected ['val']"],
    ),
    "naive ts": (lambda f: f.assign(ts=f["ts"].dt.tz_localize(None)), ["ts: expected dtype", "got datetime64"]),
    "int value": (lambda f: f.assign(value=f["value"].round().astype("int64")), ["value: expected dtype float64, got int64"]),
    "null key": (lambda f: _set(f, [7], "workload", None), ["workload: 1 row null for metric cpu_usage", "row 7"]),
}


def test_valid_batch_passes():
    report = validate_batch(_base(), name="sim/cpu")
    assert isinstance(report, ValidationReport)
    assert report.success and report.failures == [] and report.bad_metrics == set()
    assert report.rows == 60 and report.name == "sim/cpu" and report.result["success"] is True


def test_empty_batch_passes():
    assert validate_batch(_base().iloc[:0], name="empty").success


@pytest.mark.parametrize("kind", list(CASES))
def test_each_failure_kind_fails_naming_the_input(kind):
    mutate, expected = CASES[kind]
    frame = mutate(_base())
    before = frame.copy()
    report = validate_batch(frame, name=kind)
    assert not report.success, kind
    text = "\n".join(report.failures)
    for fragment in expected:
        assert fragment in text, f"{kind}: {fragment!r} not in:\n{text}"
    pd.testing.assert_frame_equal(frame, before)  # never mutated
    assert report.bad_metrics
    import json

    json.dumps(report.result)  # the GX result is JSON-able (it goes into the quarantine record)


def test_bad_metrics_names_only_the_metrics_with_bad_rows():
    report = validate_batch(_set(_base(), [40], "value", 2.0), name="mixed")
    assert report.bad_metrics == {"cpu_throttled_ratio"}
    assert validate_batch(_base().drop(columns=["unit"]), name="cols").bad_metrics == set(METRICS2)


def test_100k_rows_validate_quickly():
    frame = make_frame(("cpu_usage", "memory_request"), steps=500, workloads=100)
    validate_batch(frame.iloc[:10], name="warm")
    t = time.perf_counter()
    assert validate_batch(frame, name="100k").success
    assert time.perf_counter() - t < 2.0  # ~0.16 s measured; generous for a loaded CI machine


# ---- properties ---------------------------------------------------------------------------------------------

_frames = st.builds(
    lambda metrics, steps, workloads, seed, step_s: make_frame(
        tuple(metrics), steps=steps, workloads=workloads, seed=seed, step=pd.Timedelta(seconds=step_s)
    ),
    st.lists(st.sampled_from(sorted(METRICS)), min_size=1, max_size=3, unique=True),
    st.integers(1, 30),
    st.integers(1, 4),
    st.integers(0, 2**16),
    st.sampled_from([1, 15, 60, 3600]),
)


def _shuffle_series(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Interleave the series (a valid received order): rows of one series keep their relative order."""
    rng = np.random.default_rng(seed)
    key = frame.groupby(["metric", "workload"], sort=False).cumcount().to_numpy() + rng.random(len(frame))
    return frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames, seed=st.integers(0, 1000))
def test_property_valid_batches_pass(frame, seed):
    report = validate_batch(_shuffle_series(frame, seed), name="valid")
    assert report.success, report.failures


VIOLATIONS = ["nan", "negative", "above", "unit", "unknown", "dup_key", "backwards", "null_ts"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames, violation=st.sampled_from(VIOLATIONS), data=st.data())
def test_property_any_injected_violation_fails(frame, violation, data):
    n = len(frame)
    i = data.draw(st.integers(0, n - 1), label="row")
    f = frame.copy()
    if violation == "nan":
        f.loc[i, "value"] = np.nan
    elif violation == "negative":
        f.loc[i, "value"] = -data.draw(st.floats(1e-9, 1e12))
    elif violation == "above":
        f.loc[i, "value"] = METRICS[f.loc[i, "metric"]].range[1] * data.draw(st.floats(1.01, 100.0))
    elif violation == "unit":
        wrong = [u for u in ("cores", "bytes", "ratio") if u != METRICS[f.loc[i, "metric"]].unit][0]
        f["unit"] = f["unit"].astype("object")
        f.loc[i, "unit"] = wrong
    elif violation == "unknown":
        f["metric"] = f["metric"].astype("object")
        f.loc[i, "metric"] = "no_such_metric"
    elif violation == "dup_key":
        f = pd.concat([f, f.iloc[[i]]], ignore_index=True)
    elif violation == "backwards":
        f.loc[i, "ts"] = f.loc[i, "ts"] - pd.Timedelta(days=data.draw(st.integers(0, 400)), seconds=1)
        if i == 0 or f.loc[i - 1, "workload"] != f.loc[i, "workload"] or f.loc[i - 1, "metric"] != f.loc[i, "metric"]:
            f = pd.concat([f.iloc[[i]].assign(ts=f.loc[i, "ts"] + pd.Timedelta(days=401)), f.iloc[[i]]],
                          ignore_index=True)  # the series' first row: put a later row of it before it
    elif violation == "null_ts":
        f.loc[i, "ts"] = pd.NaT
    report = validate_batch(f, name=violation)
    assert not report.success, (violation, i)
    assert report.failures
