"""Atomic file writes and the Arrow form of the canonical frame.

A file appears under its final name only complete and fsync'ed: bytes go to a hidden temp file in the same
directory, which is fsync'ed, renamed over the target with `os.replace` (atomic on POSIX), and the directory
fsync'ed so the rename itself survives a crash. A reader sees the old file or the new one, never a partial one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aiops.errors import SchemaError
from aiops.series import COLUMNS, check_columns
from aiops.store.paths import TMP_PREFIX

# the canonical frame as stored: the string columns dictionary-encoded (as Parquet stores them anyway; a pandas
# reader gets categoricals, DuckDB gets VARCHAR), instants in ns UTC
STRING_COLUMNS = ("cluster", "namespace", "workload", "container", "metric", "unit")
DICT = pa.dictionary(pa.int32(), pa.string())
ARROW_SCHEMA = pa.schema(
    [pa.field(c, DICT) for c in STRING_COLUMNS]
    + [pa.field("ts", pa.timestamp("ns", tz="UTC")), pa.field("value", pa.float64())]
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes | memoryview | pa.Buffer) -> None:
    """Write `data` to `path` atomically and durably (temp file + fsync + os.replace + directory fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def table_bytes(table: pa.Table) -> tuple[pa.Buffer, str]:
    """`table` as Parquet bytes in memory, and their sha256."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    buf = sink.getvalue()
    return buf, hashlib.sha256(memoryview(buf)).hexdigest()


def write_table_atomic(path: Path, table: pa.Table) -> tuple[int, str]:
    """Write `table` as a Parquet file atomically; returns (bytes, sha256)."""
    buf, sha = table_bytes(table)
    atomic_write_bytes(path, buf)
    return buf.size, sha


def canonical_table(frame: pd.DataFrame, *, name: str) -> pa.Table:
    """The canonical frame as an Arrow table with ARROW_SCHEMA, without copying through pandas.

    Raises SchemaError naming the column when a column cannot be read as its canonical type.
    """
    check_columns(frame, name=name)
    arrays = []
    for field in ARROW_SCHEMA:
        col = frame[field.name]
        try:
            if field.name == "ts" and not (
                isinstance(col.dtype, pd.DatetimeTZDtype) and str(col.dtype.tz) in ("UTC", "utc")
            ):
                col = pd.to_datetime(col, utc=True)
            arr = pa.array(col, from_pandas=True)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if field.type == DICT:
                if not pa.types.is_dictionary(arr.type):
                    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                            or pa.types.is_null(arr.type)):
                        raise TypeError(f"got {arr.type}")
                    arr = arr.cast(pa.string()).dictionary_encode()
                elif not (pa.types.is_string(arr.type.value_type) or pa.types.is_large_string(arr.type.value_type)):
                    raise TypeError(f"got categories of type {arr.type.value_type}")
            elif field.name == "value" and not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
                raise TypeError(f"got {arr.type}")
            if not arr.type.equals(field.type):
                arr = arr.cast(field.type)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise SchemaError(
                f"{name}: column {field.name!r} cannot be stored as {COLUMNS[field.name]}: {exc}"
            ) from exc
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def present_values(arr: pa.Array) -> list:
    """The distinct values of a (dictionary) column, cheaply: from the dictionary indices actually used."""
    if pa.types.is_dictionary(arr.type):
        used = pc.unique(arr.indices.drop_null())
        values = arr.dictionary.take(used).to_pylist()
        return values + ([None] if arr.null_count else [])
    return pc.unique(arr).to_pylist()
