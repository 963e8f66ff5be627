"""Where the store keeps things, and the checks on the names and instants that become paths.

Layout under `data_dir` (the same locations as `Settings.raw_dir`, `quarantine_dir`, `state_dir`):

    raw/metric=<metric>/day=<YYYY-MM-DD>/<source>__<window start, e.g. 20260101T060000Z>.parquet
    quarantine/<YYYY-MM-DD of quarantining>/<batch id>.{parquet|json} + <batch id>.meta.json
    state/watermarks.sqlite
    <table name>/day=<YYYY-MM-DD>/part.parquet   (derived tables with a `ts` column)
    <table name>/part.parquet                    (derived tables without one)

File names are a function of (source, metric, window start) only, so re-running a window replaces its file.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd

from aiops.errors import SchemaError

_SOURCE_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_TABLE_SEGMENT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RESERVED_TABLES = ("raw", "quarantine", "state")
TMP_PREFIX = "."  # temp files are hidden and end in .tmp: never matched by the *.parquet globs readers use


def utc(value: datetime | pd.Timestamp | str, *, name: str) -> pd.Timestamp:
    """`value` as a UTC timestamp; a naive value is taken as UTC (as Settings does)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name}: expected a datetime, got {value!r}") from exc
    if ts is pd.NaT:
        raise SchemaError(f"{name}: expected a datetime, got NaT")
    return ts.tz_localize(timezone.utc) if ts.tzinfo is None else ts.tz_convert(timezone.utc)


def check_source(source: str) -> str:
    if not isinstance(source, str) or not _SOURCE_RE.match(source) or "__" in source:
        raise SchemaError(
            f"source {source!r}: expected lower-case letters, digits, '.', '_' or '-' (no '__'), "
            "e.g. 'simulator' or 'prometheus'"
        )
    return source


def check_table_name(name: str) -> str:
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or not all(_TABLE_SEGMENT_RE.match(p) for p in parts) or parts[0] in RESERVED_TABLES:
        raise SchemaError(
            f"table name {name!r}: expected '/'-separated lower-case segments like 'features/demand' or "
            f"'labels/incidents', not starting with one of {list(RESERVED_TABLES)}"
        )
    return name


def stamp(ts: pd.Timestamp) -> str:
    """A filename-safe ISO 8601 basic form of a UTC instant: 20260101T060000Z (sub-second kept if present)."""
    s = ts.strftime("%Y%m%dT%H%M%S")
    if ts.microsecond or ts.nanosecond:
        s += f".{ts.microsecond:06d}{ts.nanosecond:03d}"
    return s + "Z"


def day_of(ts: pd.Timestamp) -> date:
    return ts.date()


def window_file(raw_dir: Path, source: str, metric: str, start: pd.Timestamp) -> Path:
    return raw_dir / f"metric={metric}" / f"day={day_of(start).isoformat()}" / f"{source}__{stamp(start)}.parquet"

