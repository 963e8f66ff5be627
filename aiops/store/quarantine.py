"""Quarantine: rejected batches kept whole, with why they were rejected. Nothing here is ever read as data.

Each call makes a new batch (ids never collide, nothing is overwritten): the rows as Parquet, or as JSON records
when they cannot be written as Parquet (mixed types, wrong columns), then a `.meta.json` with the reason, the
validation details and the time. The meta file is written last, so a listed batch always has its data.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aiops.store.parquet import atomic_write_bytes, table_bytes
from aiops.store.paths import stamp

META_SUFFIX = ".meta.json"
QUARANTINE_COLUMNS = ("source", "metric", "start", "end", "rows", "reason", "path", "at")


def _jsonable(value: Any) -> Any:
    """Best-effort conversion to plain JSON types (no pickling): numpy scalars, timestamps, sets, NaN -> null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "to_json_dict"):
        return _jsonable(value.to_json_dict())
    return str(value)


def _frame_bytes(frame: pd.DataFrame) -> tuple[bytes | pa.Buffer, str]:
    """The batch as Parquet if possible, else as JSON records; returns (bytes, file suffix)."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        buf, _ = table_bytes(table)
        return buf, ".parquet"
    except Exception:  # anything pyarrow refuses (mixed object columns, odd names): fall back, never lose rows
        records = frame.reset_index(drop=True).to_json(orient="records", date_format="iso", default_handler=str)
        return records.encode(), ".json"


def put(
    quarantine_dir: Path,
    *,
    source: str,
    metric: str | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    frame: pd.DataFrame,
    reason: str,
    details: dict,
    data_dir: Path,
) -> Path:
    """Keep `frame` and why it was rejected; returns the path of the data file."""
    at = pd.Timestamp.now(tz="UTC")
    batch_id = f"{source}__{metric or 'all'}__{stamp(start)}__{stamp(at)}__{uuid.uuid4().hex[:8]}"
    folder = quarantine_dir / at.date().isoformat()
    data, suffix = _frame_bytes(frame)
    data_path = folder / f"{batch_id}{suffix}"
    atomic_write_bytes(data_path, data)
    meta = {
        "source": source,
        "metric": metric,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": int(len(frame)),
        "columns": [str(c) for c in frame.columns],
        "reason": reason,
        "details": _jsonable(details),
        "path": str(data_path.relative_to(data_dir)),
        "at": at.isoformat(),
    }
    atomic_write_bytes(folder / f"{batch_id}{META_SUFFIX}", json.dumps(meta, indent=1, allow_nan=False).encode())
    return data_path


def listing(quarantine_dir: Path, data_dir: Path) -> pd.DataFrame:
    """One row per quarantined batch, oldest first."""
    rows = []
    for meta_path in sorted(quarantine_dir.glob(f"*/*{META_SUFFIX}")):
        meta = json.loads(meta_path.read_text())
        rows.append({k: meta.get(k) for k in QUARANTINE_COLUMNS} | {"path": str(data_dir / meta["path"])})
    frame = pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))
    for c in ("start", "end", "at"):
        frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    frame["rows"] = frame["rows"].astype("int64")
    return frame.sort_values("at", kind="stable").reset_index(drop=True)
