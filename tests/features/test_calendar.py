import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from features import CALENDAR_COLUMNS, add_calendar


def _frame(*stamps: str, index=None) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(list(stamps), utc=True), "value": range(len(stamps))}, index=index)


def test_known_timestamps():
    frame = _frame("2026-11-21T06:00:00Z", "2026-11-23T00:00:00Z", "2026-11-23T18:45:30Z")
    out = add_calendar(frame)
    assert list(out.columns) == ["ts", "value", *CALENDAR_COLUMNS]
    assert out["hour"].tolist() == [6, 0, 18]
    assert out["minute_of_day"].tolist() == [360, 0, 1125]
    assert out["day_of_week"].tolist() == [5, 0, 0]  # 2026-11-21 is a Saturday, 2026-11-23 a Monday
    assert out["is_weekend"].tolist() == [True, False, False]
    assert out["hour"].dtype == np.int8 and out["minute_of_day"].dtype == np.int16
    # 06:00 is a quarter of the day; Monday 00:00 starts the week
    assert out["time_of_day_sin"].iloc[0] == pytest.approx(1.0)
    assert out["time_of_day_cos"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert (out["time_of_day_sin"].iloc[1], out["time_of_day_cos"].iloc[1]) == (0.0, 1.0)
    assert (out["day_of_week_sin"].iloc[1], out["day_of_week_cos"].iloc[1]) == (0.0, 1.0)
    frac = (18 * 3600 + 45 * 60 + 30) / 86400
    assert out["time_of_day_sin"].iloc[2] == pytest.approx(np.sin(2 * np.pi * frac))
    assert out["day_of_week_cos"].iloc[2] == pytest.approx(np.cos(2 * np.pi * frac / 7))
    week_frac = (5 + 0.25) / 7
    assert out["day_of_week_sin"].iloc[0] == pytest.approx(np.sin(2 * np.pi * week_frac))


def test_tz_reads_the_local_wall_clock_and_keeps_ts_utc():
    frame = _frame("2026-11-21T23:30:00Z")  # Paris is UTC+1 in November: Sunday 00:30
    out = add_calendar(frame, tz="Europe/Paris")
    assert (out["hour"].iloc[0], out["minute_of_day"].iloc[0], out["day_of_week"].iloc[0]) == (0, 30, 6)
    assert bool(out["is_weekend"].iloc[0])
    pd.testing.assert_series_equal(out["ts"], frame["ts"])  # ts itself untouched, still UTC


def test_index_and_rows_preserved():
    frame = _frame("2026-11-21T01:00Z", "2026-11-21T02:00Z", index=[10, 3])
    out = add_calendar(frame)
    assert out.index.tolist() == [10, 3] and out["hour"].tolist() == [1, 2]


def test_errors():
    with pytest.raises(SchemaError, match=r"missing columns \['when'\]"):
        add_calendar(_frame("2026-11-21T00:00Z"), ts_col="when")
    naive = pd.DataFrame({"ts": pd.to_datetime(["2026-11-21T00:00"])})
    with pytest.raises(SchemaError, match="tz-aware"):
        add_calendar(naive)
    with pytest.raises(SchemaError, match="already has columns"):
        add_calendar(add_calendar(_frame("2026-11-21T00:00Z")))
    with pytest.raises(ValueError, match="tz"):
        add_calendar(_frame("2026-11-21T00:00Z"), tz="Mars/Olympus")


def test_empty():
    out = add_calendar(_frame())
    assert out.empty and list(out.columns) == ["ts", "value", *CALENDAR_COLUMNS]
