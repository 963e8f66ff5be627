"""Reading the raw Parquet through DuckDB: the canonical read with pruning and pushdown, and ad-hoc SQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from aiops.series import COLUMNS, SERIES_KEY, empty_frame

_CANONICAL_SELECT = ", ".join(COLUMNS)
_ORDER = ", ".join((*SERIES_KEY, "ts"))


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


def _as_list(value: str | Sequence[str] | None, *, name: str) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{name}: expected a string or a sequence of strings, got {value!r}")
    return values


def raw_files(
    raw_dir: Path, metrics: list[str] | None, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> list[str]:
    """The window files that can hold rows of `metrics` in [start, end): pruning by the metric and day folders."""
    metric_dirs = (
        [raw_dir / f"metric={m}" for m in metrics] if metrics is not None else sorted(raw_dir.glob("metric=*"))
    )
    first = start.date().isoformat() if start is not None else None
    last = (end - pd.Timedelta(1, "ns")).date().isoformat() if end is not None else None
    files: list[str] = []
    for mdir in metric_dirs:
        if not mdir.is_dir():
            continue
        for ddir in sorted(mdir.glob("day=*")):
            day = ddir.name[4:]
            if (first is not None and day < first) or (last is not None and day > last):
                continue
            files.extend(str(p) for p in sorted(ddir.glob("*.parquet")))
    return files


def to_canonical(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["ts"] = frame["ts"].dt.tz_convert("UTC").astype(COLUMNS["ts"])
    return frame.astype(COLUMNS)


def read_canonical(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    *,
    metrics: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    cluster: str | Sequence[str] | None = None,
    namespace: str | Sequence[str] | None = None,
    workload: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of `files` matching the filters, as a canonical frame sorted by series key then ts."""
    if not files:
        return empty_frame()
    where: list[str] = []
    args: list[object] = [files]
    if metrics is not None:
        where.append(f"metric IN ({', '.join('?' * len(metrics))})")
        args.extend(metrics)
    if start is not None:
        where.append("ts >= ?::TIMESTAMPTZ_NS")
        args.append(start.isoformat())
    if end is not None:
        where.append("ts < ?::TIMESTAMPTZ_NS")
        args.append(end.isoformat())
    for col, value in (("cluster", cluster), ("namespace", namespace), ("workload", workload)):
        values = _as_list(value, name=col)
        if values is not None:
            where.append(f"{col} IN ({', '.join('?' * len(values))})" if values else "FALSE")
            args.extend(values)
    sql = f"SELECT {_CANONICAL_SELECT} FROM read_parquet(?, hive_partitioning=false)"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {_ORDER}"
    return to_canonical(con.sql(sql, params=args).to_arrow_table())


def query_connection(raw_dir: Path, watermarks: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views `raw` (all raw Parquet, hive columns metric and day) and `watermarks`."""
    con = connect()
    if any(raw_dir.glob("metric=*/day=*/*.parquet")):
        glob = str(raw_dir / "metric=*" / "day=*" / "*.parquet").replace("'", "''")
        con.execute(
            f"CREATE VIEW raw AS SELECT * FROM read_parquet('{glob}', hive_partitioning=true, "
            "hive_types={'day': DATE})"
        )
    else:
        con.execute(
            "CREATE VIEW raw AS SELECT NULL::VARCHAR AS cluster, NULL::VARCHAR AS namespace, "
            "NULL::VARCHAR AS workload, NULL::VARCHAR AS container, NULL::VARCHAR AS metric, NULL::VARCHAR AS unit, "
            "NULL::TIMESTAMPTZ_NS AS ts, NULL::DOUBLE AS value, NULL::DATE AS day WHERE FALSE"
        )
    con.register("_watermarks_frame", watermarks)
    con.execute("CREATE VIEW watermarks AS SELECT * FROM _watermarks_frame")
    return con
