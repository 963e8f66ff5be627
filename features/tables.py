"""The feature tables the features flow writes: demand per workload, utilisation per container, and the series.

All three start from the canonical long frame (irregular samples allowed) and a grid step. Counts "during the
step" (restarts, OOM kills) are summed into a bucket; every other metric is averaged (`AGGREGATION`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import numpy as np
import pandas as pd

from aiops.errors import SchemaError
from aiops.series import check_columns
from features._common import to_ns
from features.calendar import add_calendar
from features.grid import ENTITY, How, regular_grid, wide
from features.lags import add_lags
from features.rolling import add_rolling

WORKLOAD: tuple[str, ...] = ("cluster", "namespace", "workload")
AGGREGATION: dict[str, How] = {"restarts": "sum", "oom_kills": "sum"}  # the rest: "mean"

DEMAND_METRICS: tuple[str, ...] = ("request_rate", "replicas", "replicas_available", "latency_p99")
DEMAND_COLUMNS: tuple[str, ...] = (
    *WORKLOAD, "ts", "request_rate", "replicas", "replicas_available", "rps_per_replica", "latency_p99",
    *(f"{m}_observed" for m in DEMAND_METRICS),
)  # plus "slo_violation" after latency_p99 when an slo is given

UTILISATION_METRICS: tuple[str, ...] = (
    "cpu_usage", "cpu_request", "cpu_limit", "cpu_throttled_ratio",
    "memory_working_set", "memory_request", "memory_limit", "restarts", "oom_kills",
)
UTILISATION_COLUMNS: tuple[str, ...] = (
    *ENTITY, "ts",
    "cpu_usage", "cpu_request", "cpu_limit", "cpu_utilisation", "cpu_throttled_ratio",
    "memory_working_set", "memory_request", "memory_limit", "memory_utilisation", "memory_to_limit",
    "restarts", "oom_kills",
    *(f"{m}_observed" for m in UTILISATION_METRICS),
)

SERIES_LAGS: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(days=1), timedelta(weeks=1))
SERIES_WINDOWS: tuple[timedelta, ...] = (timedelta(minutes=15), timedelta(hours=1), timedelta(days=1))

Slo = float | Mapping[tuple[str, str, str], float] | pd.Series


def demand_table(frame: pd.DataFrame, *, step: timedelta, slo: Slo | None = None) -> pd.DataFrame:
    """Demand per workload and grid time: what was asked of it, with how many replicas, and how fast it answered.

    Columns (`DEMAND_COLUMNS`): cluster, namespace, workload, ts, request_rate (req/s), replicas (desired),
    replicas_available (ready), rps_per_replica (= request_rate / replicas_available, the load on each serving
    replica; NaN where replicas_available is 0 or missing, never inf), latency_p99 (s), then `<metric>_observed`
    (bool) for the four source metrics. With `slo` given, `slo_violation` follows latency_p99: nullable boolean,
    True where latency_p99 > the workload's p99 latency objective in seconds, <NA> where latency or the
    objective is unknown. `slo` is one objective for every workload, or a mapping / Series keyed by
    (cluster, namespace, workload).

    Each workload runs from its first to its last bucket over these metrics; buckets with no sample of a metric
    are NaN with `<metric>_observed` False (rows are added for them). Workloads with none of these metrics do not
    appear. Sorted by workload then ts.

    Raises SchemaError for a non-canonical frame, mixed units, or a workload reporting these metrics under
    more than one container (the workload-level series must come from one container label).
    """
    g = _grid_metrics(frame, step, DEMAND_METRICS, span_by=WORKLOAD)
    containers = g.groupby(list(WORKLOAD), observed=True)["container"].nunique()
    if (containers > 1).any():
        bad = [tuple(k) for k in containers[containers > 1].index[:5]]
        raise SchemaError(
            f"frame: workload-level metrics {list(DEMAND_METRICS)} come under several containers for workloads "
            f"{bad}; keep one container label per workload for them (the source decides which)"
        )
    out = wide(g, index=WORKLOAD, metrics=DEMAND_METRICS)
    rps = _ratio(out["request_rate"], out["replicas_available"])
    out.insert(out.columns.get_loc("latency_p99"), "rps_per_replica", rps)
    if slo is not None:
        out.insert(out.columns.get_loc("latency_p99") + 1, "slo_violation", _slo_violation(out, slo))
    return out


def utilisation_table(frame: pd.DataFrame, *, step: timedelta) -> pd.DataFrame:
    """Resource use per container and grid time, against its requests and limits.

    Columns (`UTILISATION_COLUMNS`): cluster, namespace, workload, container, ts, cpu_usage, cpu_request,
    cpu_limit (cores), cpu_utilisation (= cpu_usage / cpu_request), cpu_throttled_ratio, memory_working_set,
    memory_request, memory_limit (bytes), memory_utilisation (= memory_working_set / memory_request),
    memory_to_limit (= memory_working_set / memory_limit), restarts, oom_kills (summed over the bucket), then
    `<metric>_observed` (bool) for the nine source metrics. A ratio is NaN where its denominator is 0, negative
    or missing (never inf).

    Each container runs from its first to its last bucket over these metrics; gap buckets are NaN with
    `<metric>_observed` False (rows are added for them). Containers with none of these metrics do not appear.
    Sorted by container key then ts. Raises SchemaError for a non-canonical frame or mixed units.
    """
    g = _grid_metrics(frame, step, UTILISATION_METRICS, span_by=ENTITY)
    out = wide(g, index=ENTITY, metrics=UTILISATION_METRICS)
    out["cpu_utilisation"] = _ratio(out["cpu_usage"], out["cpu_request"])
    out["memory_utilisation"] = _ratio(out["memory_working_set"], out["memory_request"])
    out["memory_to_limit"] = _ratio(out["memory_working_set"], out["memory_limit"])
    return out[list(UTILISATION_COLUMNS)]


def build_feature_tables(frame: pd.DataFrame, *, step: timedelta) -> dict[str, pd.DataFrame]:
    """The three tables the features flow writes: {"demand", "utilisation", "series"}.

    "demand" and "utilisation" are `demand_table` and `utilisation_table` (no slo). "series" is every series of
    the frame on the regular grid (`to_regular_grid` columns, `AGGREGATION` per metric, each series from its own
    first to last bucket), then
      - calendar columns (`add_calendar`, UTC);
      - lags of value (`add_lags`): `value_lag_1` (one step), then `value_lag_1h`, `value_lag_1d`, `value_lag_7d`
        for those of 1 h, 1 day, 1 week that are a whole multiple of `step` and longer than it (others could
        never land on the grid or would repeat lag 1). Where history is shorter than a lag, it is NaN;
      - rolling stats of value (`add_rolling`, closed="right", min_periods=1, mean/std/min/max/median/q90) over
        those of 15 min, 1 h, 1 day longer than `step` (a window of one step would just repeat the value).
    The column set depends only on `step`, never on the data.
    """
    step_ns = to_ns(step, name="step")
    lags: list[int | timedelta] = [1]
    lags += [d for d in SERIES_LAGS if to_ns(d, name="lag") > step_ns and to_ns(d, name="lag") % step_ns == 0]
    windows = [w for w in SERIES_WINDOWS if to_ns(w, name="window") > step_ns]
    series = regular_grid(frame, step=step, how=AGGREGATION)
    series = add_calendar(series)
    series = add_lags(series, lags=lags, step=step)
    series = add_rolling(series, windows=windows)
    return {
        "demand": demand_table(frame, step=step),
        "utilisation": utilisation_table(frame, step=step),
        "series": series,
    }


def _grid_metrics(frame: pd.DataFrame, step: timedelta, metrics: tuple[str, ...], *, span_by) -> pd.DataFrame:
    """The frame's rows of `metrics` on the grid (columns are checked on the whole frame before selecting)."""
    check_columns(frame, name="frame")
    subset = frame.loc[frame["metric"].isin(metrics)]
    return regular_grid(subset, step=step, how=AGGREGATION, span_by=span_by)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    n, d = num.to_numpy(dtype=np.float64), den.to_numpy(dtype=np.float64)
    ok = np.isfinite(n) & np.isfinite(d) & (d > 0)
    out = np.full(len(n), np.nan)
    out[ok] = n[ok] / d[ok]
    return pd.Series(out, index=num.index)


def _slo_violation(table: pd.DataFrame, slo: Slo) -> pd.Series:
    if isinstance(slo, (int, float)) and not isinstance(slo, bool):
        objective = np.full(len(table), float(slo))
    elif isinstance(slo, (Mapping, pd.Series)):
        items = slo.items()
        lookup = {tuple(k) if isinstance(k, tuple) else k: float(v) for k, v in items}
        bad = [k for k in lookup if not (isinstance(k, tuple) and len(k) == 3)]
        if bad:
            raise ValueError(f"slo: keys must be (cluster, namespace, workload) tuples, received {bad[:3]}")
        keys = pd.MultiIndex.from_frame(table[list(WORKLOAD)].astype(object))
        objective = np.full(len(table), np.nan)
        if lookup:
            objective = pd.Series(lookup, dtype="float64").reindex(keys).to_numpy(dtype=np.float64)
    else:
        raise ValueError(
            "slo: expected seconds (float) or a mapping/Series keyed by (cluster, namespace, workload), "
            f"received {type(slo).__name__}"
        )
    latency = table["latency_p99"].to_numpy(dtype=np.float64)
    known = ~np.isnan(latency) & ~np.isnan(objective)
    out = pd.array(np.where(known, latency > objective, False), dtype="boolean")
    out[~known] = pd.NA
    return pd.Series(out, index=table.index)
