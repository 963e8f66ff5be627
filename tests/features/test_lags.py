from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from features import add_lags, to_regular_grid
from tests.features.helpers import long_frame

MIN = timedelta(minutes=1)


def test_lag_never_crosses_series():
    frame = long_frame([
        ("a", "cpu_usage", "00:00", 1.0), ("b", "cpu_usage", "00:00", 10.0),
        ("a", "cpu_usage", "00:01", 2.0), ("b", "cpu_usage", "00:01", 20.0),
    ])
    out = add_lags(frame, lags=[1], step=MIN)
    np.testing.assert_array_equal(out["value_lag_1"], [np.nan, np.nan, 1.0, 10.0])


def test_lag_never_crosses_gaps_missing_rows_or_nan_rows():
    # rows missing at 00:02 (not gridded): a lag of 1 step at 00:03 must not take 00:01
    frame = long_frame([("a", "cpu_usage", t, v) for t, v in [("00:00", 1.0), ("00:01", 2.0), ("00:03", 4.0)]])
    out = add_lags(frame, lags=[1, 2, timedelta(minutes=3)], step=MIN)
    np.testing.assert_array_equal(out["value_lag_1"], [np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(out["value_lag_2"], [np.nan, np.nan, 2.0])
    np.testing.assert_array_equal(out["value_lag_3min"], [np.nan, np.nan, 1.0])
    # on the grid the gap is a NaN row: the lag after it is NaN, and the gap row's own lag is the value before
    grid = add_lags(to_regular_grid(frame, step=MIN), lags=[1], step=MIN)
    np.testing.assert_array_equal(grid["value_lag_1"], [np.nan, 1.0, 2.0, np.nan])


def test_row_order_and_index_do_not_matter():
    frame = long_frame([("a", "cpu_usage", t, v) for t, v in [("00:02", 3.0), ("00:00", 1.0), ("00:01", 2.0)]])
    frame.index = [7, 8, 9]
    out = add_lags(frame, lags=[1])  # step inferred: 1 min
    assert out.index.tolist() == [7, 8, 9]
    np.testing.assert_array_equal(out["value_lag_1"], [2.0, np.nan, 1.0])


def test_duration_lag_names_and_exact_lookup():
    frame = long_frame([("a", "cpu_usage", t, v) for t, v in [("00:00", 1.0), ("01:00", 2.0), ("01:30", 3.0)]])
    out = add_lags(frame, lags=[timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)])
    assert list(out.columns[-3:]) == ["value_lag_1h", "value_lag_1d", "value_lag_7d"]
    np.testing.assert_array_equal(out["value_lag_1h"], [np.nan, 1.0, np.nan])
    assert out["value_lag_1d"].isna().all() and out["value_lag_7d"].isna().all()


def test_single_row_series_has_no_lag():
    out = add_lags(long_frame([("a", "cpu_usage", "00:00", 1.0)]), lags=[1])
    assert out["value_lag_1"].isna().all()


def test_errors():
    frame = long_frame([("a", "cpu_usage", "00:00", 1.0), ("a", "cpu_usage", "00:01", 2.0)])
    for bad in ([0], [-1], [True], [timedelta(0)], 1, ["1h"]):
        with pytest.raises(ValueError, match="lags"):
            add_lags(frame, lags=bad)
    with pytest.raises(SchemaError, match=r"missing columns \['metric'\]"):
        add_lags(frame.drop(columns="metric"), lags=[1])
    dup = pd.concat([frame, frame.iloc[:1]], ignore_index=True)
    with pytest.raises(SchemaError, match="repeat"):
        add_lags(dup, lags=[1])
    with pytest.raises(SchemaError, match="already has columns"):
        add_lags(add_lags(frame, lags=[1]), lags=[1])


def test_empty():
    frame = long_frame([("a", "cpu_usage", "00:00", 1.0)]).iloc[:0]
    out = add_lags(frame, lags=[1, timedelta(hours=1)], step=MIN)
    assert out.empty and list(out.columns[-2:]) == ["value_lag_1", "value_lag_1h"]
