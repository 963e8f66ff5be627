"""Checks and small helpers shared by the feature modules (private: import the public functions from `features`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

_NS_PER = (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3))


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, name: str = "frame", hint: str = "") -> None:
    """Raise SchemaError naming the columns of `columns` that `frame` lacks."""
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{name}: expected a pandas DataFrame, received {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{name}: missing columns {missing}; expected at least {list(columns)}, received {list(frame.columns)}"
            + (f". {hint}" if hint else "")
        )


def reject_existing(frame: pd.DataFrame, new: Sequence[str], *, name: str = "frame") -> None:
    """Raise SchemaError if any column about to be added is already in `frame` (we never overwrite silently)."""
    clash = [c for c in new if c in frame.columns]
    if clash:
        raise SchemaError(f"{name}: already has columns {clash}; drop or rename them before adding these features")


def to_ns(value: timedelta | pd.Timedelta, *, name: str) -> int:
    """A positive duration as integer nanoseconds; ValueError naming `name` otherwise."""
    if not isinstance(value, (timedelta, pd.Timedelta, np.timedelta64)) or pd.isna(value):
        raise ValueError(f"{name}: expected a datetime.timedelta, received {value!r} ({type(value).__name__})")
    ns = pd.Timedelta(value).value
    if ns <= 0:
        raise ValueError(f"{name}: expected a positive duration, received {value!r}")
    return int(ns)


def duration_label(ns: int) -> str:
    """A short, exact label for a duration, in the largest unit that divides it: 15min, 1h, 1d, 7d, 30s, 500ms."""
    for unit, size in _NS_PER:
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def utc_ns(frame: pd.DataFrame, col: str, *, name: str = "frame") -> np.ndarray:
    """The timestamps of `frame[col]` as int64 nanoseconds since the epoch (UTC).

    The column must be tz-aware datetimes with no NaT: features never guess a time zone.
    """
    s = frame[col]
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"{name}: column {col!r} must be tz-aware datetimes (datetime64[ns, UTC]), received {s.dtype}; "
            "convert with pd.to_datetime(..., utc=True)"
        )
    if s.isna().any():
        raise SchemaError(f"{name}: column {col!r} has {int(s.isna().sum())} missing timestamps (NaT); drop them first")
    return s.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8.astype(np.int64, copy=False)


def to_float(frame: pd.DataFrame, col: str, *, name: str = "frame") -> np.ndarray:
    """`frame[col]` as a float64 array, missing values as NaN; SchemaError if it is not numeric."""
    s = frame[col]
    if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
        raise SchemaError(f"{name}: column {col!r} must be numeric, received {s.dtype}")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def group_codes(frame: pd.DataFrame, by: Sequence[str]) -> np.ndarray:
    """An int64 code per row, equal for rows sharing the values of `by` (missing values form their own group)."""
    if len(by) == 0:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(list(by), sort=False, dropna=False, observed=True).ngroup().to_numpy(dtype=np.int64)


def check_unique(codes: np.ndarray, ts: np.ndarray, *, by: Sequence[str], ts_col: str, name: str) -> np.ndarray:
    """Positions sorting rows by (group, ts); SchemaError if a (group, ts) pair repeats."""
    order = np.lexsort((ts, codes))
    g, t = codes[order], ts[order]
    dup = (g[1:] == g[:-1]) & (t[1:] == t[:-1])
    if dup.any():
        raise SchemaError(
            f"{name}: {int(dup.sum())} rows repeat a ({', '.join(by)}, {ts_col}) pair, so 'the previous value' is "
            f"ambiguous; aggregate first (features.to_regular_grid) or add the distinguishing column to `by`"
        )
    return order
