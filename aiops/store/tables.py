"""Derived tables (features, incident labels, events): Parquet under data_dir/<name>, partitions replaced atomically.

A frame with a `ts` column is partitioned by UTC day (`day=YYYY-MM-DD/part.parquet`); writing it replaces the day
partitions it touches, or, with `key`, upserts into them (existing rows with the same key are replaced, others
kept). A frame without `ts` is one `part.parquet`, replaced or upserted the same way. pandas dtypes survive the
round trip (pyarrow's pandas metadata).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aiops.errors import SchemaError, UnknownNameError
from aiops.store.parquet import write_table_atomic
from aiops.store.paths import RESERVED_TABLES

PART = "part.parquet"
SCHEMA = "_schema.parquet"  # columns and types of a table written empty, so that it exists and reads back empty


@contextmanager
def dir_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on `folder` (released when the process dies, so a crash never wedges it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_part(path: Path, part: pd.DataFrame, key: list[str] | None) -> None:
    with dir_lock(path.parent):
        if key is not None and path.exists():
            old = pq.read_table(path).to_pandas()
            part = pd.concat([old, part], ignore_index=True)
        if key is not None:
            part = part.drop_duplicates(subset=key, keep="last")
        try:
            table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise SchemaError(f"table {path.parent}: frame cannot be stored as Parquet: {exc}") from exc
        write_table_atomic(path, table)


def write(root: Path, name: str, frame: pd.DataFrame, key: Sequence[str] | None) -> Path:
    keys = list(key) if key is not None else None
    if keys is not None and (missing := [k for k in keys if k not in frame.columns]):
        raise SchemaError(f"table {name!r}: key columns {missing} not in the frame's columns {list(frame.columns)}")
    if "ts" not in frame.columns:
        _write_part(root / PART, frame, keys)
        return root
    try:
        ts = pd.to_datetime(frame["ts"], utc=True)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"table {name!r}: column 'ts' cannot be read as UTC datetimes: {exc}") from exc
    if ts.isna().any():
        raise SchemaError(f"table {name!r}: column 'ts' has {int(ts.isna().sum())} missing values")
    frame = frame.assign(ts=ts)
    root.mkdir(parents=True, exist_ok=True)
    if frame.empty:
        _write_part(root / SCHEMA, frame, None)
        return root
    for day, part in frame.groupby(ts.dt.date, sort=True):
        _write_part(root / f"day={day.isoformat()}" / PART, part, keys)
    return root


def known_tables(data_dir: Path) -> list[str]:
    names = set()
    for part in [*data_dir.rglob(PART), *data_dir.rglob(SCHEMA)]:
        rel = part.parent.relative_to(data_dir)
        parts = [p for p in rel.parts if not p.startswith("day=")]
        if parts and parts[0] not in RESERVED_TABLES:
            names.add("/".join(parts))
    return sorted(names)


def read(
    data_dir: Path, root: Path, name: str, start: pd.Timestamp | None, end: pd.Timestamp | None,
    columns: Sequence[str] | None = None, where: Mapping[str, Sequence] | None = None,
) -> pd.DataFrame:
    # pushed down into the Parquet reader: only the wanted columns and row groups are decoded
    cols = None if columns is None else list(dict.fromkeys([*columns, *(["ts"] if start is not None or end is not None else [])]))
    filters = [(c, "in", list(v)) for c, v in where.items()] if where else None

    def load(path: Path) -> pd.DataFrame:
        try:
            return pq.read_table(path, columns=cols, filters=filters).to_pandas()
        except (KeyError, pa.ArrowInvalid) as exc:
            raise SchemaError(f"table {name!r}: cannot select columns {cols} / filter {where}: {exc}") from None

    if (root / PART).exists():
        frame = load(root / PART)
        partitioned = False
    elif root.is_dir() and any(root.glob(f"day=*/{PART}")):
        first = start.date().isoformat() if start is not None else None
        last = (end - pd.Timedelta(1, "ns")).date().isoformat() if end is not None else None
        parts = []
        for path in sorted(root.glob(f"day=*/{PART}")):
            day = path.parent.name[4:]
            if (first is None or day >= first) and (last is None or day <= last):
                parts.append(load(path))
        if not parts:  # nothing in range: an empty frame with the table's columns and types
            parts = [load(next(root.glob(f"day=*/{PART}"))).iloc[:0]]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        partitioned = True
    elif (root / SCHEMA).exists():
        frame = load(root / SCHEMA)
        partitioned = True
    else:
        raise UnknownNameError("table", name, known_tables(data_dir))
    if "ts" in frame.columns and (start is not None or end is not None):
        mask = pd.Series(True, index=frame.index)
        if start is not None:
            mask &= frame["ts"] >= start
        if end is not None:
            mask &= frame["ts"] < end
        frame = frame[mask]
        if columns is not None and "ts" not in columns:
            frame = frame.drop(columns="ts")
    elif not partitioned and (start is not None or end is not None):
        raise SchemaError(f"table {name!r} has no 'ts' column; read it without start/end")
    return frame.reset_index(drop=True)
