"""Calendar features of a timestamp: hour, minute of day, day of week, weekend, cyclic encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features._common import reject_existing, require_columns, utc_ns

CALENDAR_COLUMNS: tuple[str, ...] = (
    "hour",
    "minute_of_day",
    "day_of_week",
    "is_weekend",
    "time_of_day_sin",
    "time_of_day_cos",
    "day_of_week_sin",
    "day_of_week_cos",
)


def add_calendar(frame: pd.DataFrame, *, ts_col: str = "ts", tz: str = "UTC") -> pd.DataFrame:
    """A copy of `frame` with calendar columns of `ts_col` appended, read on the wall clock of `tz`.

    Columns (in this order), for local time `h:m:s` on weekday `d`:
      hour            int8, 0..23
      minute_of_day   int16, 0..1439 (h * 60 + m)
      day_of_week     int8, Monday = 0 .. Sunday = 6
      is_weekend      bool, Saturday or Sunday
      time_of_day_sin, time_of_day_cos   float64, sin/cos(2 pi f), f = (h*3600 + m*60 + s) / 86400 (sub-second
                                         parts included), so midnight is (0, 1) and 06:00 is (1, 0)
      day_of_week_sin, day_of_week_cos   float64, sin/cos(2 pi (d + f) / 7): Monday 00:00 is (0, 1)

    `tz` only changes how the calendar is read (e.g. "Europe/Paris" for a human daily cycle); `ts_col` itself is
    left as it is. Rows, index and other columns are unchanged.

    Raises SchemaError if `ts_col` is missing, not tz-aware, has NaT, or a calendar column already exists;
    ValueError for an unknown `tz`.
    """
    require_columns(frame, [ts_col], name="frame")
    reject_existing(frame, CALENDAR_COLUMNS, name="frame")
    ns = utc_ns(frame, ts_col, name="frame")
    try:
        local = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    except (KeyError, ValueError, TypeError) as exc:  # zoneinfo raises a KeyError subclass for an unknown zone
        raise ValueError(
            f"tz: expected an IANA time zone name such as 'UTC' or 'Europe/Paris', received {tz!r}"
        ) from exc

    hour = local.hour.to_numpy()
    minute = local.minute.to_numpy()
    dow = local.dayofweek.to_numpy()
    seconds = hour * 3600.0 + minute * 60.0 + local.second.to_numpy() + local.microsecond.to_numpy() / 1e6
    seconds = seconds + local.nanosecond.to_numpy() / 1e9
    day_frac = seconds / 86_400.0
    week_frac = (dow + day_frac) / 7.0
    cols = {
        "hour": hour.astype(np.int8),
        "minute_of_day": (hour * 60 + minute).astype(np.int16),
        "day_of_week": dow.astype(np.int8),
        "is_weekend": dow >= 5,
        "time_of_day_sin": np.sin(2 * np.pi * day_frac),
        "time_of_day_cos": np.cos(2 * np.pi * day_frac),
        "day_of_week_sin": np.sin(2 * np.pi * week_frac),
        "day_of_week_cos": np.cos(2 * np.pi * week_frac),
    }
    return frame.assign(**{c: pd.Series(v, index=frame.index) for c, v in cols.items()})
