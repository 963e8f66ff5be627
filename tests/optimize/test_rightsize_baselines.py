"""KRR simple, the VPA target and Kubecost's rule on small hand-computed usage; bad input; monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.errors import SchemaError
from aiops.optimize.rightsize_baselines import OUTPUT_COLUMNS, check_usage, krr_simple, kubecost, vpa_target

MIB = 1024**2
GIB = 1024**3
T0 = pd.Timestamp("2026-03-01", tz="UTC")
STEP = pd.Timedelta(minutes=5)


def frame(series: str, cpu, memory, start=T0, step=STEP) -> pd.DataFrame:
    cpu = np.asarray(cpu, float)
    memory = np.broadcast_to(np.asarray(memory, float), cpu.shape)
    return pd.DataFrame({"series": series, "ts": start + step * np.arange(len(cpu)), "cpu": cpu, "memory": memory})


def row(result: pd.DataFrame, series: str) -> pd.Series:
    return result.set_index("series").loc[series]


# ---- KRR simple ----------------------------------------------------------------------------------------------------

def test_krr_cpu_is_the_interpolated_p95_and_memory_the_peak_plus_15_percent():
    # CPU 0.01 .. 1.00 cores: p95 by linear interpolation = v[94] + 0.05 * (v[95] - v[94]) = 0.9505 -> up to 951m
    # (nearest-rank would give 0.95 or 0.96); memory peak 1000 MiB x 1.15 = 1150 MiB, the limit equal to it
    mem = np.full(100, 200 * MIB)
    mem[40] = 1000 * MIB
    rec = row(krr_simple(frame("a", np.arange(1, 101) / 100, mem)), "a")
    assert rec["cpu_request"] == pytest.approx(0.951)
    assert math.isnan(rec["cpu_limit"])
    assert rec["memory_request"] == rec["memory_limit"] == 1150 * MIB
    assert "p95" in rec["why"] and "+15%" in rec["why"]


def test_krr_needs_100_points_and_ignores_missing_samples():
    cpu = np.r_[np.full(99, 0.5), np.nan]  # 99 real samples
    out = row(krr_simple(frame("a", cpu, 300 * MIB)), "a")
    assert math.isnan(out["cpu_request"]) and "not enough data (99 < 100" in out["why"]
    assert out["memory_request"] == 345 * MIB  # memory has its 100 samples
    enough = row(krr_simple(frame("a", np.full(100, 0.5), 300 * MIB)), "a")
    assert enough["cpu_request"] == 0.5


def test_krr_looks_back_14_days_only_and_rounds_up_to_its_minimums():
    days = 15 * 288
    cpu = np.full(days, 0.001)
    mem = np.full(days, 10 * MIB)
    cpu[0], mem[0] = 8.0, 50 * GIB  # older than 14 days at the last sample: forgotten
    out = row(krr_simple(frame("a", cpu, mem)), "a")
    assert out["cpu_request"] == 0.010  # 1m of usage, raised to KRR's 10m minimum
    assert out["memory_request"] == 100 * MIB  # 11.5 MiB, raised to the 100 MiB minimum
    longer = row(krr_simple(frame("a", cpu, mem), history="15D"), "a")
    assert longer["memory_request"] == math.ceil(50 * 1024 * 1.15) * MIB


def test_krr_custom_buffer_and_percentile():
    mem = np.full(100, 1000 * MIB)
    out = row(krr_simple(frame("a", np.arange(1, 101) / 100, mem), cpu_percentile=50, memory_buffer=0.05), "a")
    assert out["cpu_request"] == pytest.approx(0.505)  # median of 0.01..1.00 = (0.50 + 0.51) / 2, already whole m
    assert out["memory_request"] == 1050 * MIB


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 8, allow_nan=False), min_size=100, max_size=150),
       st.floats(1, 100), st.floats(1, 100))
def test_krr_cpu_request_is_monotone_in_the_percentile(cpu, p, q):
    lo, hi = sorted((p, q))
    usage = frame("a", cpu, 100 * MIB)
    assert row(krr_simple(usage, cpu_percentile=lo), "a")["cpu_request"] \
        <= row(krr_simple(usage, cpu_percentile=hi), "a")["cpu_request"]


# ---- VPA target ----------------------------------------------------------------------------------------------------

def test_vpa_cpu_is_the_bucket_end_plus_margin():
    # 0.5 cores falls in bucket 25 of 0.01 x 1.05^k; its end 0.01 x (1.05^26 - 1) / 0.05 = 0.51113 -> 511m,
    # + trunc(511 x 0.15) = 76 -> 587m
    out = row(vpa_target(frame("a", np.full(288, 0.5), GIB)), "a")
    assert out["cpu_request"] == 0.587
    # memory: 1 GiB in bucket 37 of 1e7 x 1.05^k, end 1077095457 bytes, + 15 % (truncated) = 1238659775
    assert out["memory_request"] == 1_238_659_775
    assert math.isnan(out["cpu_limit"]) and math.isnan(out["memory_limit"])


def test_vpa_decays_old_usage_with_a_one_day_half_life():
    # 5 days at 2 cores, then 5 days at 0.2: unweighted, the p90 would be the 2-core bucket (2406m with margin);
    # decayed, the old days keep ~3 % of the weight, so p90 is the 0.2-core bucket: 215m + 32m = 247m
    cpu = np.r_[np.full(5 * 288, 2.0), np.full(5 * 288, 0.2)]
    assert row(vpa_target(frame("a", cpu, GIB)), "a")["cpu_request"] == 0.247
    # with a very long half-life the old samples count fully
    assert row(vpa_target(frame("a", cpu, GIB), half_life=pd.Timedelta(days=10_000)), "a")["cpu_request"] == 2.406


def test_vpa_memory_uses_daily_peaks_not_samples():
    # 100 MiB all day with one 1 GiB spike per day: every daily peak is 1 GiB (samples would say 100 MiB)
    mem = np.full(3 * 288, 100 * MIB)
    mem[::288] = GIB
    out = row(vpa_target(frame("a", np.full(3 * 288, 0.5), mem)), "a")
    assert out["memory_request"] == 1_238_659_775
    # a day whose first sample is 0 keeps a peak of 0 (container.go): the floor of 250 MiB decides
    zero = np.r_[0.0, np.full(287, GIB)]
    assert row(vpa_target(frame("a", np.full(288, 0.5), zero)), "a")["memory_request"] == 250 * MIB


def test_vpa_minimum_resources():
    out = row(vpa_target(frame("a", np.full(288, 0.001), MIB)), "a")
    assert out["cpu_request"] == 0.025 and out["memory_request"] == 250 * MIB


def test_vpa_keeps_the_current_request_to_limit_ratio():
    usage = pd.concat([frame(s, np.full(288, 0.5), GIB) for s in "abcde"])
    current = pd.DataFrame({
        "series": list("abcde"),
        "cpu_request": [0.25, 1.0, np.nan, 0.0, 0.25],
        "cpu_limit": [0.5, 1.0, 2.0, 0.1, np.nan],
        "memory_request": [GIB, GIB, np.nan, 0.0, GIB],
        "memory_limit": [3 * GIB, GIB, 8 * GIB, 4 * GIB, np.nan]})
    out = vpa_target(usage, current=current).set_index("series")
    assert out["cpu_request"].tolist() == [0.587] * 5
    # a: ratio 2 -> 1174m; b: request = limit -> limit = request; c: no request -> limit = request;
    # d: request 0 -> the limit is only raised (0.1 < 0.587 -> 0.587; 4 GiB kept); e: no limit -> none
    assert out["cpu_limit"].tolist()[:4] == [1.174, 0.587, 0.587, 0.587] and math.isnan(out.loc["e", "cpu_limit"])
    assert out.loc["a", "memory_limit"] == 3 * 1_238_659_775
    assert out.loc["b", "memory_limit"] == out.loc["c", "memory_limit"] == 1_238_659_775
    assert out.loc["d", "memory_limit"] == 4 * GIB and math.isnan(out.loc["e", "memory_limit"])


def test_vpa_series_without_samples_is_undefined_with_a_reason():
    usage = pd.concat([frame("a", np.full(10, np.nan), np.nan), frame("b", np.full(10, 0.5), GIB)])
    out = vpa_target(usage).set_index("series")
    assert math.isnan(out.loc["a", "cpu_request"]) and math.isnan(out.loc["a", "memory_request"])
    assert "CPU undefined: no samples" in out.loc["a", "why"]
    assert out.loc["b", "cpu_request"] == 0.587


# ---- Kubecost ------------------------------------------------------------------------------------------------------

def test_kubecost_is_the_window_peak_over_the_target_utilisation():
    cpu = np.r_[9.0, np.full(3 * 288, 0.7)]
    cpu[100] = 1.4
    mem = np.r_[50 * GIB, np.full(3 * 288, 100 * MIB)]
    mem[200] = 700 * MIB
    out = row(kubecost(frame("a", cpu, mem), window="3D"), "a")  # the first sample is outside the 3 days
    assert out["cpu_request"] == pytest.approx(2.0)  # 1.4 / 0.7
    assert out["memory_request"] == pytest.approx(1000 * MIB)  # 700 MiB / 0.7
    assert math.isnan(out["cpu_limit"]) and math.isnan(out["memory_limit"])
    tiny = row(kubecost(frame("a", np.full(10, 0.001), MIB), window="1D"), "a")
    assert tiny["cpu_request"] == 0.010 and tiny["memory_request"] == 20 * MIB
    prod = row(kubecost(frame("a", cpu, mem), window="3D", cpu_target_utilization=0.65), "a")
    assert prod["cpu_request"] == pytest.approx(1.4 / 0.65)
    # recommending as of an earlier `now` ignores what came after it (the 1.4-core sample is at index 100)
    early = row(kubecost(frame("a", cpu, mem), window="3D", now=T0 + 99 * STEP), "a")
    assert early["cpu_request"] == pytest.approx(9.0 / 0.7)


def test_kubecost_needs_a_window_and_a_sane_target():
    usage = frame("a", np.full(10, 0.5), GIB)
    with pytest.raises(TypeError):
        kubecost(usage)  # no default window: Kubecost's API requires one
    with pytest.raises(SchemaError, match="cpu_target_utilization"):
        kubecost(usage, window="2D", cpu_target_utilization=1.5)


# ---- all three: output shape and bad input -------------------------------------------------------------------------

def test_outputs_have_one_row_per_series_in_order():
    usage = pd.concat([frame(s, np.full(120, 0.3), GIB) for s in ("b", "a")])
    for out in (krr_simple(usage), vpa_target(usage), kubecost(usage, window="1D")):
        assert list(out.columns) == list(OUTPUT_COLUMNS) and out["series"].tolist() == ["a", "b"]


def test_interleaved_rows_are_grouped_per_series():
    a, b = frame("a", np.full(120, 0.2), GIB), frame("b", np.full(120, 0.4), GIB)
    mixed = pd.concat([a, b]).sort_values("ts", kind="stable")
    assert krr_simple(mixed)["cpu_request"].tolist() == [0.2, 0.4]


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="memory"), r"usage: missing column\(s\) \['memory'\]"),
    (lambda f: f.assign(cpu=-f["cpu"]), "'cpu' has 10 negative"),
    (lambda f: f.assign(memory=np.inf), "'memory' has 10 negative or infinite"),
    (lambda f: f.assign(cpu="x"), "'cpu' is object"),
    (lambda f: f.assign(ts=f["ts"].iloc[::-1].to_numpy()), "series 'a' has timestamps out of order"),
    (lambda f: f.assign(ts=T0), "series 'a' has a duplicate timestamp"),
    (lambda f: f.assign(ts="not a time"), "'ts' is not timestamps"),
    (lambda f: f.iloc[:0], "no rows"),
])
def test_bad_usage_is_refused_with_a_clear_error(mutate, message):
    with pytest.raises(SchemaError, match=message):
        check_usage(mutate(frame("a", np.full(10, 0.5), GIB)))


def test_bad_arguments_are_refused():
    usage = frame("a", np.full(10, 0.5), GIB)
    with pytest.raises(SchemaError, match="cpu_percentile"):
        krr_simple(usage, cpu_percentile=0)
    with pytest.raises(SchemaError, match="history must be a positive duration"):
        krr_simple(usage, history="-1D")
    with pytest.raises(SchemaError, match="fractions in"):
        vpa_target(usage, cpu_percentile=90)
    with pytest.raises(SchemaError, match=r"current: missing column\(s\) \['cpu_limit'"):
        vpa_target(usage, current=pd.DataFrame({"series": ["a"], "cpu_request": [1.0]}))
    with pytest.raises(SchemaError, match="usage: expected a pandas DataFrame"):
        krr_simple(usage.to_dict())
