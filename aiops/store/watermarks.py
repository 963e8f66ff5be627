"""The watermark table: which (source, metric, window_start) windows are stored, in SQLite.

One row per window, written in its own transaction after the window's file is durably in place, so a row
always points at a complete file. WAL journal + busy timeout let several processes record concurrently;
SQLite serialises the writers. Connections are kept per thread and re-opened after a fork.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd

from aiops.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    source       TEXT NOT NULL,
    metric       TEXT NOT NULL,
    window_start TEXT NOT NULL,   -- ISO 8601 UTC, e.g. 2026-01-01T06:00:00+00:00 (sorts as time)
    window_end   TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    n_series     INTEGER NOT NULL,
    min_ts       TEXT,            -- NULL for an empty window
    max_ts       TEXT,
    file         TEXT NOT NULL,   -- relative to data_dir
    sha256       TEXT NOT NULL,
    written_at   TEXT NOT NULL,
    PRIMARY KEY (source, metric, window_start)
)
"""
COLUMNS = ("source", "metric", "window_start", "window_end", "rows", "n_series", "min_ts", "max_ts", "file",
           "sha256", "written_at")
_TIME_COLUMNS = ("window_start", "window_end", "min_ts", "max_ts", "written_at")


@dataclass(frozen=True)
class WindowRecord:
    """One stored window, as recorded in the watermark table (instants as UTC pandas Timestamps)."""

    source: str
    metric: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    rows: int
    n_series: int
    min_ts: pd.Timestamp | None
    max_ts: pd.Timestamp | None
    file: str
    sha256: str
    written_at: pd.Timestamp


def iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


class Watermarks:
    def __init__(self, path: Path, *, timeout_s: float = 60.0):
        self.path = path
        self.timeout_s = timeout_s
        self._local = threading.local()  # one connection per thread and process (sqlite3 objects do not fork)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            try:
                con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit survives a process crash; a power cut may lose the last commits, which
                # only makes their windows "missing" again (their files are already fsync'ed), and re-running heals
                con.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"watermarks {self.path}: cannot open: {exc}") from exc
            self._local.con, self._local.pid = con, os.getpid()
        try:
            yield con
        except sqlite3.Error as exc:
            raise StoreError(f"watermarks {self.path}: {exc}") from exc

    def record(self, rec: WindowRecord) -> None:
        row = tuple(iso(v) if isinstance(v, pd.Timestamp) else v for v in astuple(rec))
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(f"INSERT OR REPLACE INTO windows VALUES ({','.join('?' * len(COLUMNS))})", row)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def has(self, source: str, metric: str, start: pd.Timestamp) -> bool:
        with self._connect() as con:
            cur = con.execute(
                "SELECT 1 FROM windows WHERE source=? AND metric=? AND window_start=?", (source, metric, iso(start))
            )
            return cur.fetchone() is not None

    def starts(self, source: str, metric: str, start: pd.Timestamp, end: pd.Timestamp) -> set[str]:
        with self._connect() as con:
            cur = con.execute(
                "SELECT window_start FROM windows WHERE source=? AND metric=? AND window_start>=? AND window_start<?",
                (source, metric, iso(start), iso(end)),
            )
            return {r[0] for r in cur.fetchall()}

    def table(self, source: str | None = None, metric: str | None = None) -> pd.DataFrame:
        where, args = [], []
        if source is not None:
            where.append("source=?")
            args.append(source)
        if metric is not None:
            where.append("metric=?")
            args.append(metric)
        sql = "SELECT * FROM windows" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY source, metric, window_start"
        with self._connect() as con:
            rows = con.execute(sql, args).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
        for c in _TIME_COLUMNS:
            frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        for c in ("rows", "n_series"):
            frame[c] = frame[c].astype("int64")
        return frame
