"""Lagged values per series, looked up by exact timestamp so a lag never crosses a gap or another series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from aiops.series import SERIES_KEY
from features._common import (
    check_unique,
    duration_label,
    group_codes,
    reject_existing,
    require_columns,
    to_float,
    to_ns,
    utc_ns,
)


def add_lags(
    frame: pd.DataFrame,
    *,
    lags: Sequence[int] | Sequence[timedelta],
    value_col: str = "value",
    by: Sequence[str] = SERIES_KEY,
    step: timedelta | None = None,
    ts_col: str = "ts",
) -> pd.DataFrame:
    """A copy of `frame` with one column per lag: the value of the same series at `ts - lag`, exactly.

    A lag is an int `k` (k steps: `ts - k * step`) or a timedelta `d` (`ts - d`); both must be positive, so a
    lag only ever looks back. The value is looked up by exact timestamp within the rows sharing `by`: if no row
    has that timestamp (a gap, or before the series starts), or that row's value is NaN, the lag is NaN. Nothing
    is shifted by position, so a lag never crosses a gap or a series boundary, whatever the row order.

    On a `to_regular_grid` output (gaps present as NaN rows) an int lag equals a per-series shift by k rows.
    `step` is needed for int lags; if None it is inferred as the smallest positive spacing between two
    timestamps of one series (pass it explicitly when a frame may be missing rows everywhere).

    Columns added, in the order of `lags`: `<value_col>_lag_<k>` for int lags (e.g. `value_lag_1`) and
    `<value_col>_lag_<label>` for durations, labelled in the largest unit that divides them (`value_lag_15min`,
    `value_lag_1h`, `value_lag_1d`, `value_lag_7d`); float64. Rows, index and other columns are unchanged.

    Raises SchemaError for missing columns, a `ts_col` that is not tz-aware or has NaT, a non-numeric
    `value_col`, a repeated (by, ts) pair, or a lag column that already exists; ValueError for a bad lag or step.
    """
    by = list(by)
    require_columns(frame, [*by, ts_col, value_col], name="frame")
    parsed = _parse_lags(lags, value_col)
    names = [name for name, _, _ in parsed]
    reject_existing(frame, names, name="frame")
    step_ns = to_ns(step, name="step") if step is not None else None
    if not parsed:
        return frame.copy()

    ts = utc_ns(frame, ts_col, name="frame")
    values = to_float(frame, value_col, name="frame")
    codes = group_codes(frame, by)
    order = check_unique(codes, ts, by=by, ts_col=ts_col, name="frame")
    if step_ns is None and any(is_steps for _, is_steps, _ in parsed):
        step_ns = _infer_step(codes[order], ts[order])

    # key = (group, timestamp code): sortable as one int64, so every lookup is one searchsorted
    uniq_ts = np.unique(ts)
    key = codes * len(uniq_ts) + np.searchsorted(uniq_ts, ts)
    sorted_key, sorted_values = key[order], values[order]

    cols: dict[str, pd.Series] = {}
    for name, is_steps, amount in parsed:
        if is_steps and step_ns is None:  # a single timestamp per series: there is no earlier value anywhere
            result = np.full(len(frame), np.nan)
        else:
            result = _lookup(ts - amount * (step_ns if is_steps else 1), codes, uniq_ts, sorted_key, sorted_values)
        cols[name] = pd.Series(result, index=frame.index)
    return frame.assign(**cols)


def _lookup(
    query_ts: np.ndarray, codes: np.ndarray, uniq_ts: np.ndarray, sorted_key: np.ndarray, sorted_values: np.ndarray
) -> np.ndarray:
    """The value at (codes[i], query_ts[i]) for each i, NaN where there is no such row."""
    t_pos = np.searchsorted(uniq_ts, query_ts)
    t_hit = t_pos < len(uniq_ts)
    t_hit[t_hit] = uniq_ts[t_pos[t_hit]] == query_ts[t_hit]
    query_key = codes * len(uniq_ts) + t_pos
    pos = np.searchsorted(sorted_key, query_key)
    hit = t_hit & (pos < len(sorted_key))
    hit[hit] = sorted_key[pos[hit]] == query_key[hit]
    out = np.full(len(query_ts), np.nan)
    out[hit] = sorted_values[pos[hit]]
    return out


def _infer_step(sorted_codes: np.ndarray, sorted_ts: np.ndarray) -> int | None:
    same = sorted_codes[1:] == sorted_codes[:-1]
    gaps = np.diff(sorted_ts)[same]
    gaps = gaps[gaps > 0]
    return int(gaps.min()) if len(gaps) else None


def _parse_lags(lags: object, value_col: str) -> list[tuple[str, bool, int]]:
    """(column name, in steps?, steps or nanoseconds) per lag."""
    if isinstance(lags, (str, bytes, int, timedelta)) or not isinstance(lags, Sequence):
        raise ValueError(f"lags: expected a sequence of positive ints or timedeltas, received {lags!r}")
    parsed = []
    for lag in lags:
        if isinstance(lag, (bool, np.bool_)) or not isinstance(lag, (int, np.integer, timedelta, np.timedelta64)):
            raise ValueError(f"lags: expected positive ints (steps) or timedeltas, received {lag!r}")
        if isinstance(lag, (int, np.integer)):
            if lag <= 0:
                raise ValueError(f"lags: a lag must look back (be > 0), received {lag}")
            parsed.append((f"{value_col}_lag_{int(lag)}", True, int(lag)))
        else:
            ns = to_ns(lag, name="lags")
            parsed.append((f"{value_col}_lag_{duration_label(ns)}", False, ns))
    names = [p[0] for p in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"lags: repeated lags give repeated columns {names}; list each lag once")
    return parsed
