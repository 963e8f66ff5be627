from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.errors import SchemaError, UnknownNameError
from features import add_rolling
from tests.features.helpers import long_frame

MIN = timedelta(minutes=1)


def _series(values, workload="a", start="00:00"):
    base = pd.Timestamp(f"2026-11-21T{start}Z")
    times = [(base + i * pd.Timedelta(minutes=1)).isoformat() for i in range(len(values))]
    return long_frame([(workload, "cpu_usage", t, v) for t, v in zip(times, values)])


def test_trailing_window_includes_t_by_default_and_excludes_it_when_left_closed():
    frame = _series([1.0, 2.0, 3.0, 4.0])
    right = add_rolling(frame, windows=[timedelta(minutes=3)], stats=["mean", "min", "max", "count"])
    # (t - 3min, t]: at 00:03 -> 00:01, 00:02, 00:03
    np.testing.assert_array_equal(right["value_roll_3min_mean"], [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_array_equal(right["value_roll_3min_min"], [1.0, 1.0, 1.0, 2.0])
    np.testing.assert_array_equal(right["value_roll_3min_max"], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(right["value_roll_3min_count"], [1.0, 2.0, 3.0, 3.0])
    left = add_rolling(frame, windows=[timedelta(minutes=3)], stats=["mean"], closed="left")
    # [t - 3min, t): at 00:03 -> 00:00, 00:01, 00:02; nothing before the first row
    np.testing.assert_array_equal(left["value_roll_3min_mean_excl"], [np.nan, 1.0, 1.5, 2.0])


def test_default_stats_exact_values():
    frame = _series([5.0, 1.0, 4.0, 2.0, 3.0])
    out = add_rolling(frame, windows=[timedelta(minutes=5)])
    names = [f"value_roll_5min_{s}" for s in ("mean", "std", "min", "max", "median", "q90")]
    assert list(out.columns[-6:]) == names
    last = out.iloc[-1]
    assert last[names[0]] == 3.0 and last[names[2]] == 1.0 and last[names[3]] == 5.0 and last[names[4]] == 3.0
    assert last[names[1]] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert last[names[5]] == pytest.approx(4.6)  # linear: 1 + 0.9 * (5 - 1) positions -> 4.6
    assert np.isnan(out[names[1]].iloc[0])  # std needs two values


def test_gaps_skipped_min_periods_and_series_kept_apart():
    frame = pd.concat([_series([1.0, np.nan, 3.0]), _series([100.0, 200.0], workload="b")], ignore_index=True)
    out = add_rolling(frame, windows=[timedelta(minutes=2)], stats=["mean"])
    np.testing.assert_array_equal(out["value_roll_2min_mean"], [1.0, 1.0, 3.0, 100.0, 150.0])
    strict = add_rolling(frame, windows=[timedelta(minutes=2)], stats=["mean", "count"], min_periods=2)
    np.testing.assert_array_equal(strict["value_roll_2min_mean"], [np.nan, np.nan, np.nan, np.nan, 150.0])
    np.testing.assert_array_equal(strict["value_roll_2min_count"], [np.nan, np.nan, np.nan, np.nan, 2.0])


def test_windows_are_in_time_not_rows():
    frame = long_frame([("a", "cpu_usage", t, v) for t, v in [("00:00", 1.0), ("00:10", 2.0), ("00:11", 3.0)]])
    out = add_rolling(frame, windows=[timedelta(minutes=5)], stats=["sum"])
    np.testing.assert_array_equal(out["value_roll_5min_sum"], [1.0, 2.0, 5.0])


values = st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(a=values, b=values, cut=st.integers(0, 39), closed=st.sampled_from(["right", "left"]), data=st.data())
def test_rolling_is_causal(a, b, cut, closed, data):
    """Changing any value after row `cut` of a series never changes a feature at or before `cut`."""
    frame = pd.concat([_series(a), _series(b, workload="b")], ignore_index=True)
    cut = min(cut, len(a) - 1)
    changed = frame.copy()
    future = np.flatnonzero((changed["workload"] == "a").to_numpy())[cut + 1 :]
    if len(future):
        new = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(future), max_size=len(future)))
        changed.loc[future, "value"] = new
    windows = [timedelta(minutes=3), timedelta(minutes=10)]
    before = add_rolling(frame, windows=windows, closed=closed)
    after = add_rolling(changed, windows=windows, closed=closed)
    past = np.flatnonzero((frame["workload"] == "a").to_numpy())[: cut + 1]
    past = np.concatenate([past, np.flatnonzero((frame["workload"] == "b").to_numpy())])  # other series untouched
    feature_cols = [c for c in before.columns if c.startswith("value_roll_")]
    pd.testing.assert_frame_equal(before.loc[past, feature_cols], after.loc[past, feature_cols])


def test_errors():
    frame = _series([1.0, 2.0])
    with pytest.raises(UnknownNameError, match="q90"):
        add_rolling(frame, windows=[MIN], stats=["p90"])
    with pytest.raises(ValueError, match="windows"):
        add_rolling(frame, windows=[timedelta(0)])
    with pytest.raises(ValueError, match="closed"):
        add_rolling(frame, windows=[MIN], closed="both")
    with pytest.raises(ValueError, match="min_periods"):
        add_rolling(frame, windows=[MIN], min_periods=0)
    with pytest.raises(SchemaError, match=r"missing columns \['value'\]"):
        add_rolling(frame.drop(columns="value"), windows=[MIN])
    with pytest.raises(SchemaError, match="numeric"):
        add_rolling(frame.assign(value="x"), windows=[MIN])


def test_empty():
    out = add_rolling(_series([]), windows=[MIN], stats=["mean"])
    assert out.empty and out.columns[-1] == "value_roll_1min_mean"
