"""Every public feature function leaves its input exactly as it was."""

import copy
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from features import (
    add_calendar, add_lags, add_rolling, build_feature_tables, demand_table, to_regular_grid, utilisation_table, wide,
)
from tests.features.helpers import long_frame

MIN = timedelta(minutes=1)


def _frame():
    rows = [("w", m, t, v) for m in ("cpu_usage", "cpu_request", "request_rate", "replicas_available", "restarts")
            for t, v in (("00:00:20", 1.0), ("00:01:10", 2.0), ("00:04:00", np.nan))]
    frame = long_frame(rows)
    frame.index = np.arange(100, 100 + len(frame))
    return frame.iloc[::-1]  # out of order, non-default index


CALLS = {
    "to_regular_grid": lambda f: to_regular_grid(f, step=MIN),
    "wide": lambda f: wide(f),
    "add_calendar": lambda f: add_calendar(f),
    "add_lags": lambda f: add_lags(f.drop_duplicates(["workload", "metric", "ts"]), lags=[1, timedelta(minutes=2)]),
    "add_rolling": lambda f: add_rolling(f, windows=[timedelta(minutes=2)]),
    "demand_table": lambda f: demand_table(f, step=MIN),
    "utilisation_table": lambda f: utilisation_table(f, step=MIN),
    "build_feature_tables": lambda f: build_feature_tables(f, step=MIN),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_input_frame_unchanged(name):
    frame = _frame()
    before = copy.deepcopy(frame)
    result = CALLS[name](frame)
    pd.testing.assert_frame_equal(frame, before)
    outputs = result.values() if isinstance(result, dict) else [result]
    assert all(out is not frame for out in outputs)
    # writing to an output never reaches the input
    for out in outputs:
        if "value" in out.columns and len(out):
            out.loc[out.index[0], "value"] = -1.0
    pd.testing.assert_frame_equal(frame, before)
