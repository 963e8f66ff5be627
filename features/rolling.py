"""Trailing time-window statistics per series, causal by construction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from aiops.errors import UnknownNameError
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

DEFAULT_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "median", "q90")
_PLAIN_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "median", "sum", "count")
_QUANTILE = re.compile(r"^q([1-9][0-9]?)$")


def add_rolling(
    frame: pd.DataFrame,
    *,
    windows: Sequence[timedelta],
    stats: Sequence[str] = DEFAULT_STATS,
    value_col: str = "value",
    by: Sequence[str] = SERIES_KEY,
    closed: Literal["right", "left"] = "right",
    min_periods: int = 1,
    ts_col: str = "ts",
) -> pd.DataFrame:
    """A copy of `frame` with trailing-window statistics of `value_col`, per series (rows sharing `by`).

    For a row at time t and a window w, the window holds the rows of the same series with timestamps in
      closed="right" (default): (t - w, t]  - ends at t and includes it: a feature known at time t;
      closed="left":            [t - w, t)  - excludes t: use it to build targets or features that must not see
                                              the current value (no leakage).
    Either way only rows at or before t are read: changing a later value never changes an earlier feature.
    Windows are in time, not rows, and never reach into another series.

    Missing values (NaN, e.g. the gap rows of `to_regular_grid`) are skipped. A statistic is NaN unless the
    window holds at least `min_periods` non-missing values (default 1); "std" (sample, ddof=1) additionally
    needs two. So early rows of a series get statistics over the shorter history they have; raise `min_periods`
    to require more.

    `stats`: "mean", "std", "min", "max", "median", "sum", "count", or "qNN" for the NN-th percentile (1..99,
    linear interpolation), e.g. "q90". Columns added, windows outer and stats inner in the given order:
    `<value_col>_roll_<label>_<stat>` (e.g. `value_roll_15min_mean`, `value_roll_1d_q90`), with `_excl` appended
    when closed="left"; float64. Rows, index and other columns are unchanged.

    Raises SchemaError for missing columns, a bad `ts_col`, a non-numeric `value_col`, a repeated (by, ts) pair,
    or an output column that already exists; UnknownNameError for an unknown stat; ValueError for bad windows.
    """
    by = list(by)
    require_columns(frame, [*by, ts_col, value_col], name="frame")
    if closed not in ("right", "left"):
        raise ValueError(f"closed: expected 'right' (include t) or 'left' (exclude t), received {closed!r}")
    if isinstance(min_periods, bool) or not isinstance(min_periods, (int, np.integer)) or min_periods < 1:
        raise ValueError(f"min_periods: expected an int >= 1, received {min_periods!r}")
    if isinstance(windows, (timedelta, str)) or not isinstance(windows, Sequence):
        raise ValueError(f"windows: expected a sequence of timedeltas, received {windows!r}")
    window_ns = [to_ns(w, name="windows") for w in windows]
    stats = list(stats)
    for stat in stats:
        if stat not in _PLAIN_STATS and not _QUANTILE.match(stat):
            raise UnknownNameError("rolling stat", stat, [*_PLAIN_STATS, "qNN (e.g. q90)"])
    suffix = "_excl" if closed == "left" else ""
    names = [f"{value_col}_roll_{duration_label(w)}_{s}{suffix}" for w in window_ns for s in stats]
    if len(set(names)) != len(names):
        raise ValueError(f"windows/stats: repeated entries give repeated columns {names}; list each once")
    reject_existing(frame, names, name="frame")
    if not names:
        return frame.copy()

    ts = utc_ns(frame, ts_col, name="frame")
    values = to_float(frame, value_col, name="frame")
    codes = group_codes(frame, by)
    order = check_unique(codes, ts, by=by, ts_col=ts_col, name="frame")
    sorted_values = pd.Series(values[order])

    cols: dict[str, pd.Series] = {}
    for w in window_ns:
        start, end = _window_bounds(codes[order], ts[order], w, closed)
        roll = sorted_values.rolling(_Bounds(start, end), min_periods=int(min_periods))
        for stat in stats:
            q = _QUANTILE.match(stat)
            res = roll.quantile(int(q.group(1)) / 100) if q else getattr(roll, stat)()
            out = np.empty(len(frame))
            out[order] = res.to_numpy(dtype=np.float64)
            if stat == "count":  # pandas counts regardless of min_periods; keep the documented rule
                out[out < min_periods] = np.nan
            cols[f"{value_col}_roll_{duration_label(w)}_{stat}{suffix}"] = pd.Series(out, index=frame.index)
    return frame.assign(**cols)


class _Bounds(BaseIndexer):
    """Precomputed window bounds: row i aggregates sorted rows start[i]..end[i]-1."""

    def __init__(self, start: np.ndarray, end: np.ndarray):
        super().__init__()
        self.start, self.end = start, end

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        return self.start, self.end


def _window_bounds(codes: np.ndarray, ts: np.ndarray, window: int, closed: str) -> tuple[np.ndarray, np.ndarray]:
    """Window [start, end) row bounds for rows sorted by (code, ts).

    Searches on one int64 key per row, group * stride + time, with a stride wider than any series plus the
    window, so a window can never reach into the previous series. Times are measured in the largest unit dividing
    every offset and the window (a minute grid searches in minutes), which keeps the key far from overflow.
    """
    rel = ts - ts.min() if len(ts) else ts
    unit = int(np.gcd.reduce(np.append(rel, window)))
    rel, w = rel // unit, window // unit
    stride = int(rel.max(initial=0)) + w + 1
    n_groups = int(codes.max(initial=0)) + 1
    side = "right" if closed == "right" else "left"
    if n_groups * stride < 2**62:
        key = codes * stride + rel
        return (
            np.searchsorted(key, key - w, side=side).astype(np.int64),
            np.searchsorted(key, key, side=side).astype(np.int64),
        )
    # too long a span for one key: search series by series (each still vectorised)
    start, end = np.empty(len(ts), dtype=np.int64), np.empty(len(ts), dtype=np.int64)
    cuts = np.flatnonzero(np.diff(codes)) + 1
    for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(ts)]))):
        r = rel[lo:hi]
        start[lo:hi] = lo + np.searchsorted(r, r - w, side=side)
        end[lo:hi] = lo + np.searchsorted(r, r, side=side)
    return start, end
