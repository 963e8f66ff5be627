from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from features import GRID_COLUMNS, to_regular_grid, wide
from tests.features.helpers import long_frame, ts

MIN = timedelta(minutes=1)


def test_gaps_stay_nan_with_observed_false():
    frame = long_frame([("w", "cpu_usage", t, v) for t, v in [("00:00", 1.0), ("00:01", 2.0), ("00:04", 5.0)]])
    out = to_regular_grid(frame, step=MIN)
    assert list(out.columns) == list(GRID_COLUMNS)
    assert out["ts"].tolist() == [ts(f"00:0{i}") for i in range(5)]
    np.testing.assert_array_equal(out["value"], [1.0, 2.0, np.nan, np.nan, 5.0])
    assert out["observed"].tolist() == [True, True, False, False, True]
    assert out["unit"].tolist() == ["cores"] * 5
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"


def test_irregular_samples_are_bucketed_left_closed_left_labelled():
    # deliberately out of time order
    rows = [("00:01:59", 5.0), ("00:00:50", 3.0), ("00:00:10", 1.0), ("00:03:00", 7.0), ("00:01:00", 4.0)]
    frame = long_frame([("w", "cpu_usage", t, v) for t, v in rows])
    expected_ts = [ts("00:00"), ts("00:01"), ts("00:02"), ts("00:03")]
    mean = to_regular_grid(frame, step=MIN)
    assert mean["ts"].tolist() == expected_ts
    np.testing.assert_array_equal(mean["value"], [2.0, 4.5, np.nan, 7.0])
    last = to_regular_grid(frame, step=MIN, how="last")
    np.testing.assert_array_equal(last["value"], [3.0, 5.0, np.nan, 7.0])
    total = to_regular_grid(frame, step=MIN, how="sum")
    np.testing.assert_array_equal(total["value"], [4.0, 9.0, np.nan, 7.0])
    assert total["observed"].tolist() == [True, True, False, True]


def test_grid_is_anchored_at_the_epoch():
    frame = long_frame([("w", "cpu_usage", "10:07", 1.0), ("w", "cpu_usage", "10:16", 2.0)])
    out = to_regular_grid(frame, step=timedelta(minutes=15))
    assert out["ts"].tolist() == [ts("10:00"), ts("10:15")]


def test_nan_sample_counts_as_not_observed():
    frame = long_frame([("w", "cpu_usage", t, v) for t, v in [("00:00", 1.0), ("00:01", np.nan), ("00:02", 3.0)]])
    out = to_regular_grid(frame, step=MIN, how="last")
    np.testing.assert_array_equal(out["value"], [1.0, np.nan, 3.0])
    assert out["observed"].tolist() == [True, False, True]


def test_each_series_own_span_and_sorted_by_key():
    rows = [("b", "00:03", 3.0), ("a", "00:00", 1.0), ("a", "00:01", 2.0)]
    frame = long_frame([(w, "cpu_usage", t, v) for w, t, v in rows])
    out = to_regular_grid(frame, step=MIN)
    assert out["workload"].tolist() == ["a", "a", "b"]
    assert out["ts"].tolist() == [ts("00:00"), ts("00:01"), ts("00:03")]
    assert isinstance(out.index, pd.RangeIndex)


def test_start_end_bound_every_series():
    frame = long_frame([
        ("a", "cpu_usage", "00:00", 1.0), ("a", "cpu_usage", "00:05", 6.0),  # 00:05 is at/after end: left out
        ("b", "cpu_usage", "2026-11-20T12:00", 9.0),  # only before start: all gaps when both bounds are given
    ])
    out = to_regular_grid(frame, step=MIN, start=ts("2026-11-20T23:58"), end=ts("00:03"))
    grid = [ts("2026-11-20T23:58"), ts("2026-11-20T23:59"), ts("00:00"), ts("00:01"), ts("00:02")]
    a, b = out[out["workload"] == "a"], out[out["workload"] == "b"]
    assert a["ts"].tolist() == grid and b["ts"].tolist() == grid
    np.testing.assert_array_equal(a["value"], [np.nan, np.nan, 1.0, np.nan, np.nan])
    assert a["observed"].tolist() == [False, False, True, False, False]
    assert not b["observed"].any()
    # one-sided bound: b has no sample inside, so no span and no rows
    only_start = to_regular_grid(frame, step=MIN, start=pd.Timestamp("2026-11-21 00:00"))  # naive = UTC
    assert only_start["workload"].tolist() == ["a"] * 6
    assert only_start["ts"].iloc[0] == ts("00:00")


def test_missing_columns_raise_schema_error_naming_them():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0)]).drop(columns=["value", "unit"])
    with pytest.raises(SchemaError, match=r"missing \['unit', 'value'\]"):
        to_regular_grid(frame, step=MIN)


def test_mixed_units_within_a_metric_raise():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0), ("x", "cpu_usage", "00:00", 1000.0)])
    frame.loc[1, "unit"] = "millicores"
    with pytest.raises(SchemaError, match=r"cpu_usage.*millicores"):
        to_regular_grid(frame, step=MIN)


def test_bad_arguments_raise_value_error():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0)])
    with pytest.raises(ValueError, match="step"):
        to_regular_grid(frame, step=timedelta(0))
    with pytest.raises(ValueError, match="how"):
        to_regular_grid(frame, step=MIN, how="median")
    with pytest.raises(ValueError, match="start < end"):
        to_regular_grid(frame, step=MIN, start=ts("01:00"), end=ts("00:00"))


def test_empty_in_empty_out():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0)]).iloc[:0]
    out = to_regular_grid(frame, step=MIN)
    assert out.empty and list(out.columns) == list(GRID_COLUMNS)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]" and out["observed"].dtype == bool


def test_wide_one_column_per_metric_with_observed_flags():
    frame = long_frame([
        ("w", "cpu_usage", "00:00", 1.0), ("w", "cpu_usage", "00:02", 3.0), ("w", "cpu_request", "00:01", 2.0),
    ])
    out = wide(to_regular_grid(frame, step=MIN), metrics=["cpu_usage", "cpu_request", "cpu_limit"])
    assert list(out.columns) == [
        "cluster", "namespace", "workload", "container", "ts", "cpu_usage", "cpu_request", "cpu_limit",
        "cpu_usage_observed", "cpu_request_observed", "cpu_limit_observed",
    ]
    assert out["ts"].tolist() == [ts("00:00"), ts("00:01"), ts("00:02")]
    np.testing.assert_array_equal(out["cpu_usage"], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(out["cpu_request"], [np.nan, 2.0, np.nan])
    assert out["cpu_usage_observed"].tolist() == [True, False, True]
    assert out["cpu_limit"].isna().all() and not out["cpu_limit_observed"].any()


def test_wide_without_observed_column_and_default_metrics_sorted():
    frame = long_frame([("w", "memory_limit", "00:00", 1.0), ("w", "cpu_usage", "00:00", 2.0)])
    out = wide(frame)
    assert list(out.columns) == ["cluster", "namespace", "workload", "container", "ts", "cpu_usage", "memory_limit"]
    assert out[["cpu_usage", "memory_limit"]].iloc[0].tolist() == [2.0, 1.0]


def test_wide_rejects_ambiguous_cells():
    frame = long_frame([("w", "a", "cpu_usage", "00:00", 1.0), ("w", "b", "cpu_usage", "00:00", 2.0)])
    with pytest.raises(SchemaError, match="container"):
        wide(frame, index=("cluster", "namespace", "workload"))


def test_wide_missing_columns_and_null_keys():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0)])
    with pytest.raises(SchemaError, match=r"missing columns \['metric'\]"):
        wide(frame.drop(columns="metric"))
    frame["workload"] = pd.array([pd.NA], dtype="string")
    with pytest.raises(SchemaError, match="workload"):
        to_regular_grid(frame, step=MIN)
