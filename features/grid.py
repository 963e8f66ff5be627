"""Put irregular samples on an exact regular time grid, and turn the long frame wide.

The grid is anchored at the Unix epoch: bucket labels are whole multiples of `step` since 1970-01-01T00:00Z, so two
series, two calls or two sources gridded with the same step always line up. A bucket `[t, t + step)` is labelled by
its left edge `t`. Buckets with no sample are kept as rows with `value` NaN and `observed` False: gaps stay visible,
nothing is filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from aiops.errors import SchemaError
from aiops.series import COLUMNS, SERIES_KEY, conform
from features._common import group_codes, require_columns, to_ns

How = Literal["mean", "last", "sum"]
HOWS: tuple[str, ...] = ("mean", "last", "sum")
GRID_COLUMNS: tuple[str, ...] = (*COLUMNS, "observed")
ENTITY: tuple[str, ...] = ("cluster", "namespace", "workload", "container")


def to_regular_grid(
    frame: pd.DataFrame,
    *,
    step: timedelta,
    start: datetime | pd.Timestamp | None = None,
    end: datetime | pd.Timestamp | None = None,
    how: How = "mean",
) -> pd.DataFrame:
    """The canonical long frame on an exact regular grid per series, gaps kept as NaN rows.

    Samples are aggregated into left-labelled buckets `[t, t + step)` with `how`: "mean" (of the non-missing
    values), "last" (the latest non-missing value by timestamp) or "sum" (NaN, not 0, when nothing was observed).

    Bounds: by default each series runs from its own first to its own last bucket. `start` (inclusive) and
    `end` (exclusive) bound every series instead: samples outside `[start, end)` are left out (that is the
    point of bounding), and the grid covers the buckets overlapping `[start, end)`. Naive bounds are read as UTC.
    With both bounds, a series whose samples all lie outside them still appears, as all-gap rows; with one bound,
    such a series has no span and yields no rows.

    Returns a new frame with columns `cluster, namespace, workload, container, metric, unit, ts, value,
    observed` (the canonical columns plus a boolean `observed`: True where the bucket got at least one
    non-missing sample; so `observed == value.notna()`), one row per series and bucket, sorted by series key then
    `ts`, with a fresh RangeIndex. Rows are added for gap buckets; none is dropped except those outside the bounds.

    Raises SchemaError if columns are missing or extra, key columns or `ts` have missing values, or one metric
    comes in more than one unit; ValueError for a bad `step`, `how` or bounds.
    """
    return regular_grid(frame, step=step, start=start, end=end, how=how)


def regular_grid(
    frame: pd.DataFrame,
    *,
    step: timedelta,
    start: datetime | pd.Timestamp | None = None,
    end: datetime | pd.Timestamp | None = None,
    how: How | Mapping[str, How] = "mean",
    span_by: Sequence[str] = SERIES_KEY,
) -> pd.DataFrame:
    """`to_regular_grid` with two extras the tables need.

    `how` may map metric name to aggregation (metrics not in the mapping use "mean"). `span_by` (a subset of the
    series key) makes series sharing those columns share one span: e.g. every metric of a workload runs from the
    workload's first to its last bucket, so a wide table of them has no holes.
    """
    step_ns = to_ns(step, name="step")
    hows = _check_how(how)
    if not set(span_by) <= set(SERIES_KEY):
        raise ValueError(f"span_by: expected a subset of {list(SERIES_KEY)}, received {list(span_by)}")
    lo_bound, hi_bound = _bound(start, "start"), _bound(end, "end")
    if lo_bound is not None and hi_bound is not None and hi_bound <= lo_bound:
        raise ValueError(f"start/end: expected start < end, received start={start!r}, end={end!r}")

    df = conform(frame, name="frame")  # a typed copy: the caller's frame is never touched
    _check_keys(df)
    _check_units(df)
    if df.empty:
        return _empty_grid()

    ts = df["ts"].array.asi8
    g = df.groupby(list(SERIES_KEY), sort=True, observed=True)
    sid = g.ngroup().to_numpy(dtype=np.int64)
    keys = g[["unit"]].first().reset_index()  # one row per series, in sid order
    n_series = len(keys)

    inside = np.ones(len(df), dtype=bool)
    if lo_bound is not None:
        inside &= ts >= lo_bound
    if hi_bound is not None:
        inside &= ts < hi_bound
    metric_code, metric_names = pd.factorize(df["metric"])
    ts, sid, values, metric_code = ts[inside], sid[inside], df["value"].to_numpy()[inside], metric_code[inside]
    bucket = ts // step_ns  # floor division: correct before the epoch too

    # span of each series, in bucket numbers
    lo = np.full(n_series, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(n_series, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lo, sid, bucket)
    np.maximum.at(hi, sid, bucket)
    if tuple(span_by) != SERIES_KEY:
        shared = group_codes(keys, list(span_by))
        lo = pd.Series(lo).groupby(shared).transform("min").to_numpy(dtype=np.int64, copy=True)
        hi = pd.Series(hi).groupby(shared).transform("max").to_numpy(dtype=np.int64, copy=True)
    if lo_bound is not None:
        lo[:] = lo_bound // step_ns
    if hi_bound is not None:
        hi[:] = -((-hi_bound) // step_ns) - 1  # last bucket starting before `end`
    if lo_bound is None or hi_bound is None:
        empty = lo > hi  # a series with no sample inside a one-sided bound has no span
        lo[empty], hi[empty] = 0, -1

    # lay the grid out: series after series, buckets lo..hi each
    length = hi - lo + 1
    offset = np.concatenate(([0], np.cumsum(length)[:-1]))
    total = int(length.sum())
    row_sid = np.repeat(np.arange(n_series, dtype=np.int64), length)
    row_bucket = np.repeat(lo, length) + (np.arange(total, dtype=np.int64) - np.repeat(offset, length))

    grid_values = np.full(total, np.nan)
    pos = offset[sid] + (bucket - lo[sid])
    # one aggregation per metric: look it up once per distinct metric, not per row
    how_of_metric = np.array([hows.get(m, hows.get("*", "mean")) for m in metric_names], dtype=object)
    row_how = how_of_metric[metric_code]
    for name in HOWS:
        pick = row_how == name
        if pick.any():
            agg_pos, agg_val = _aggregate(pos[pick], ts[pick], values[pick], name, total)
            grid_values[agg_pos] = agg_val

    out = {c: keys[c].array.take(row_sid) for c in (*SERIES_KEY, "unit")}
    out["ts"] = pd.DatetimeIndex((row_bucket * step_ns).view("datetime64[ns]")).tz_localize("UTC")
    out["value"] = grid_values
    out["observed"] = ~np.isnan(grid_values)
    return pd.DataFrame(out)[list(GRID_COLUMNS)]


def wide(
    frame: pd.DataFrame,
    *,
    index: Sequence[str] = ENTITY,
    metrics: Sequence[str] | None = None,
    value_col: str = "value",
    ts_col: str = "ts",
) -> pd.DataFrame:
    """Long to wide: one row per entity (`index` columns) and timestamp, one column per metric.

    Rows and columns are plain columns (no MultiIndex): `*index, ts_col, *metrics`, then, when the frame has an
    `observed` column (a `to_regular_grid` output), one boolean `<metric>_observed` column per metric. Rows are
    sorted by `index` then `ts_col`; a fresh RangeIndex.

    `metrics` fixes which metric columns appear and in what order (default: every metric in the frame, sorted).
    A named metric with no rows gives an all-NaN column (and `observed` False); rows of metrics not named are
    left out, and so are entities that have none of the named metrics. Where an entity has some metrics at a
    timestamp but not others, the missing cells are NaN (observed False). Units are not carried: they are fixed
    per metric by `aiops.metrics.METRICS`.

    Raises SchemaError if columns are missing or an (index, ts, metric) cell has more than one row (include the
    distinguishing column, e.g. "container", in `index`, or aggregate first).
    """
    index = list(index)
    require_columns(frame, [*index, ts_col, "metric", value_col], name="frame")
    flags = "observed" in frame.columns
    if metrics is None:
        metrics = sorted(frame["metric"].dropna().unique().tolist())
    metrics = list(metrics)
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics: names must be unique, received {metrics}")
    columns = [*index, ts_col, *metrics, *([f"{m}_observed" for m in metrics] if flags else [])]

    keep = [*index, ts_col, "metric", value_col, *(["observed"] if flags else [])]
    df = frame.loc[frame["metric"].isin(metrics), keep]
    if df.empty:
        out = {c: frame[c].iloc[:0].reset_index(drop=True) for c in [*index, ts_col]}
        out.update({m: pd.Series(dtype="float64") for m in metrics})
        out.update({f"{m}_observed": pd.Series(dtype="bool") for m in metrics if flags})
        return pd.DataFrame(out)[columns]

    row = df.groupby([*index, ts_col], sort=True, dropna=False, observed=True).ngroup().to_numpy(dtype=np.int64)
    col = pd.Categorical(df["metric"], categories=metrics).codes.astype(np.int64)
    n_rows = int(row.max()) + 1
    if np.bincount(row * len(metrics) + col).max() > 1:
        raise SchemaError(
            f"frame: several rows share one ({', '.join(index)}, {ts_col}, metric) cell; include the column that "
            f"tells them apart (e.g. 'container') in `index`, or aggregate first"
        )
    values = np.full((n_rows, len(metrics)), np.nan)
    values[row, col] = df[value_col].to_numpy(dtype=np.float64, na_value=np.nan)
    first = np.empty(n_rows, dtype=np.int64)
    first[row] = np.arange(len(row))  # any row of a group will do: they share the key values
    out = {c: df[c].iloc[first].reset_index(drop=True) for c in [*index, ts_col]}
    out.update({m: values[:, j] for j, m in enumerate(metrics)})
    if flags:
        seen = np.zeros((n_rows, len(metrics)), dtype=bool)
        seen[row, col] = df["observed"].to_numpy(dtype=bool, na_value=False)
        out.update({f"{m}_observed": seen[:, j] for j, m in enumerate(metrics)})
    return pd.DataFrame(out)[columns]


def _aggregate(
    pos: np.ndarray, ts: np.ndarray, values: np.ndarray, how: str, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate the non-missing `values` sharing a grid position; returns (positions, aggregated values)."""
    seen = ~np.isnan(values)
    pos, ts, values = pos[seen], ts[seen], values[seen]
    if how == "last":  # order by time inside each bucket, so "last" means the latest observed value
        order = np.lexsort((ts, pos))
        pos, values = pos[order], values[order]
        last = np.append(pos[1:] != pos[:-1], True)
        return pos[last], values[last]
    count = np.bincount(pos, minlength=size)
    total = np.bincount(pos, weights=values, minlength=size)
    hit = np.flatnonzero(count)
    return hit, (total[hit] if how == "sum" else total[hit] / count[hit])


def _check_how(how: object) -> dict[str, str]:
    if isinstance(how, Mapping):
        bad = {m: h for m, h in how.items() if h not in HOWS}
        if bad:
            raise ValueError(f"how: expected each of {list(HOWS)}, received {bad}")
        return dict(how)
    if how not in HOWS:
        raise ValueError(f"how: expected one of {list(HOWS)}, received {how!r}")
    return {"*": str(how)}


def _bound(value: object, name: str) -> int | None:
    if value is None:
        return None
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a datetime, received {value!r}") from exc
    if pd.isna(t):
        raise ValueError(f"{name}: expected a datetime, received {value!r}")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.as_unit("ns").value)


def _check_keys(df: pd.DataFrame) -> None:
    nulls = {c: int(df[c].isna().sum()) for c in (*SERIES_KEY, "unit", "ts") if df[c].isna().any()}
    if nulls:
        raise SchemaError(f"frame: key columns must not have missing values; missing counts {nulls}; drop or fill them")


def _check_units(df: pd.DataFrame) -> None:
    units = df.groupby("metric", sort=True, observed=True)["unit"].unique()
    mixed = {m: sorted(u.tolist()) for m, u in units.items() if len(u) > 1}
    if mixed:
        raise SchemaError(
            f"frame: each metric must come in one unit, received several for {mixed}; convert to the unit in "
            "aiops.metrics.METRICS before gridding"
        )


def _empty_grid() -> pd.DataFrame:
    out = {c: pd.Series(dtype=t) for c, t in COLUMNS.items()}
    out["observed"] = pd.Series(dtype="bool")
    return pd.DataFrame(out)
