from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from features import (
    DEMAND_COLUMNS, GRID_COLUMNS, UTILISATION_COLUMNS, build_feature_tables, demand_table, utilisation_table,
)
from tests.features.helpers import long_frame, ts

MIN = timedelta(minutes=1)


def test_utilisation_ratios_nan_when_request_zero_or_missing_never_inf():
    frame = long_frame([
        ("w", "cpu_usage", "00:00", 0.5), ("w", "cpu_request", "00:00", 2.0),
        ("w", "cpu_usage", "00:01", 0.5), ("w", "cpu_request", "00:01", 0.0),
        ("w", "cpu_usage", "00:02", 0.5),  # request missing
        ("w", "memory_working_set", "00:00", 300.0), ("w", "memory_request", "00:00", 600.0),
        ("w", "memory_limit", "00:00", 1200.0), ("w", "memory_limit", "00:01", 0.0),
    ])
    out = utilisation_table(frame, step=MIN)
    assert list(out.columns) == list(UTILISATION_COLUMNS)
    assert out["ts"].tolist() == [ts("00:00"), ts("00:01"), ts("00:02")]
    np.testing.assert_array_equal(out["cpu_utilisation"], [0.25, np.nan, np.nan])
    np.testing.assert_array_equal(out["memory_utilisation"], [0.5, np.nan, np.nan])
    np.testing.assert_array_equal(out["memory_to_limit"], [0.25, np.nan, np.nan])
    assert not np.isinf(out.select_dtypes("float").to_numpy()).any()
    assert out["cpu_request_observed"].tolist() == [True, True, False]


def test_counts_are_summed_into_a_bucket_gauges_averaged():
    frame = long_frame([
        ("w", "restarts", "00:01", 1.0), ("w", "restarts", "00:03", 2.0),
        ("w", "cpu_usage", "00:01", 1.0), ("w", "cpu_usage", "00:03", 2.0),
    ])
    out = utilisation_table(frame, step=timedelta(minutes=5))
    assert out["restarts"].tolist() == [3.0] and out["cpu_usage"].tolist() == [1.5]


def test_demand_per_workload_with_rps_per_replica_and_slo():
    rows = []
    for w, rate, avail, lat in [("api", 100.0, 4.0, 0.3), ("web", 50.0, 0.0, 0.1)]:
        rows += [(w, "request_rate", "00:00", rate), (w, "replicas", "00:00", 5.0),
                 (w, "replicas_available", "00:00", avail), (w, "latency_p99", "00:00", lat)]
    rows += [("api", "request_rate", "00:01", 80.0), ("api", "cpu_usage", "00:01", 1.0)]  # cpu_usage is ignored
    frame = long_frame(rows)
    out = demand_table(frame, step=MIN)
    assert list(out.columns) == list(DEMAND_COLUMNS)
    assert out["workload"].tolist() == ["api", "api", "web"]
    np.testing.assert_array_equal(out["rps_per_replica"], [25.0, np.nan, np.nan])  # web: 0 available
    assert out["replicas_observed"].tolist() == [True, False, True]
    slo = {("c1", "ns", "api"): 0.25}
    with_slo = demand_table(frame, step=MIN, slo=slo)
    assert list(with_slo.columns) == [*DEMAND_COLUMNS[:9], "slo_violation", *DEMAND_COLUMNS[9:]]
    assert with_slo["slo_violation"].tolist() == [True, pd.NA, pd.NA]  # api 00:01 has no latency; web no slo
    assert demand_table(frame, step=MIN, slo=0.2)["slo_violation"].tolist() == [True, pd.NA, False]
    series = pd.Series([0.5], index=pd.MultiIndex.from_tuples([("c1", "ns", "api")]))
    assert demand_table(frame, step=MIN, slo=series)["slo_violation"].tolist() == [False, pd.NA, pd.NA]


def test_demand_spans_the_whole_workload_and_rejects_two_containers():
    frame = long_frame([("w", m, t, v) for m, t, v in [
        ("request_rate", "00:00", 1.0), ("request_rate", "00:02", 3.0), ("replicas", "00:04", 2.0),
    ]])
    out = demand_table(frame, step=MIN)
    assert out["ts"].tolist() == [ts(f"00:0{i}") for i in range(5)]
    assert out["request_rate_observed"].tolist() == [True, False, True, False, False]
    assert out["replicas_observed"].tolist() == [False, False, False, False, True]
    two = long_frame([("w", "app", "request_rate", "00:00", 1.0), ("w", "sidecar", "request_rate", "00:00", 1.0)])
    with pytest.raises(SchemaError, match="several containers"):
        demand_table(two, step=MIN)


def _small():
    rows = [("w", "cpu_usage", f"2026-11-21T{h:02d}:00", float(h)) for h in range(0, 24)]
    rows += [("w", "cpu_usage", "2026-11-22T00:00", 24.0)]
    return long_frame(rows)


def test_build_feature_tables_hourly_columns_and_values():
    tables = build_feature_tables(_small(), step=timedelta(hours=1))
    assert set(tables) == {"demand", "utilisation", "series"}
    series = tables["series"]
    lag_roll = [c for c in series.columns if c.startswith("value_")]
    assert lag_roll == ["value_lag_1", "value_lag_1d", "value_lag_7d"] + [
        f"value_roll_1d_{s}" for s in ("mean", "std", "min", "max", "median", "q90")
    ]
    assert list(series.columns[: len(GRID_COLUMNS)]) == list(GRID_COLUMNS)
    last = series.iloc[-1]
    assert (last["value_lag_1"], last["value_lag_1d"]) == (23.0, 0.0)
    assert np.isnan(last["value_lag_7d"])  # history is one day: NaN, but the column is there
    assert last["value_roll_1d_mean"] == 12.5 and last["value_roll_1d_min"] == 1.0  # (t-1d, t]: 01:00..24:00
    assert last["day_of_week"] == 6 and last["hour"] == 0
    assert len(tables["utilisation"]) == 25 and tables["demand"].empty


def test_build_feature_tables_minute_columns():
    series = build_feature_tables(_small(), step=MIN)["series"]
    lags = [c for c in series.columns if "_lag_" in c]
    assert lags == ["value_lag_1", "value_lag_1h", "value_lag_1d", "value_lag_7d"]
    assert [c for c in series.columns if c.endswith("_mean")] == [
        "value_roll_15min_mean", "value_roll_1h_mean", "value_roll_1d_mean"
    ]
    assert len(series) == 24 * 60 + 1 and series["observed"].sum() == 25


def test_empty_in_empty_tables_out_with_documented_columns():
    empty = long_frame([("w", "cpu_usage", "00:00", 1.0)]).iloc[:0]
    assert list(demand_table(empty, step=MIN).columns) == list(DEMAND_COLUMNS)
    assert list(utilisation_table(empty, step=MIN).columns) == list(UTILISATION_COLUMNS)
    tables = build_feature_tables(empty, step=MIN)
    assert all(t.empty for t in tables.values())
    assert list(tables["series"].columns[: len(GRID_COLUMNS)]) == list(GRID_COLUMNS)
    assert str(tables["demand"]["ts"].dtype) == "datetime64[ns, UTC]"


def test_tables_reject_wrong_columns():
    frame = long_frame([("w", "cpu_usage", "00:00", 1.0)]).rename(columns={"value": "val"})
    for fn in (demand_table, utilisation_table, build_feature_tables):
        with pytest.raises(SchemaError, match=r"missing \['value'\], unexpected \['val'\]"):
            fn(frame, step=MIN)
