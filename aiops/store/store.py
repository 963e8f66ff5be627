"""The operational data store: idempotent window writes, watermarks, quarantine, DuckDB reads, derived tables."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiops.errors import SchemaError
from aiops.metrics import get_metric
from aiops.series import SERIES_KEY, check_columns
from aiops.store import quarantine as _quarantine
from aiops.store import query as _query
from aiops.store import tables as _tables
from aiops.store.parquet import canonical_table, present_values, write_table_atomic
from aiops.store.paths import check_source, check_table_name, utc, window_file
from aiops.store.watermarks import Watermarks, WindowRecord

TimeLike = datetime | pd.Timestamp | str


@dataclass(frozen=True)
class StoreSummary:
    """What is in a store, for `aiops status` and the demo."""

    data_dir: Path
    series: int  # distinct (cluster, namespace, workload, container, metric) in raw
    rows: int  # rows in raw, from the watermarks
    windows: pd.DataFrame  # per source and metric: windows, empty_windows, rows, first_ts, last_ts
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    quarantined: int  # quarantined batches
    bytes_on_disk: int  # everything under data_dir

    def __str__(self) -> str:
        span = f"{self.first_ts} .. {self.last_ts}" if self.first_ts is not None else "no data"
        return (
            f"store {self.data_dir}: {self.series} series, {self.rows} rows, {int(self.windows['windows'].sum())} "
            f"windows ({span}), {self.quarantined} quarantined batches, {self.bytes_on_disk / 1e6:.1f} MB on disk"
        )


class Store:
    """Parquet datasets under `data_dir` (raw/, quarantine/, state/, derived tables), read through DuckDB.

    Writes are atomic (temp file, fsync, rename); the watermark of a window is recorded only after its file is in
    place, so a crash leaves at worst a complete file without a watermark, which re-running the window heals.
    """

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.raw_dir = self.data_dir / "raw"
        self.quarantine_dir = self.data_dir / "quarantine"
        self.state_dir = self.data_dir / "state"
        for d in (self.raw_dir, self.quarantine_dir, self.state_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._watermarks = Watermarks(self.state_dir / "watermarks.sqlite")

    def __repr__(self) -> str:
        return f"Store({str(self.data_dir)!r})"

    # ---- windows ------------------------------------------------------------------------------------------
    def write_window(
        self, source: str, metric: str, start: TimeLike, end: TimeLike, frame: pd.DataFrame
    ) -> WindowRecord:
        """Store one window of one metric from one source, atomically, then record its watermark.

        `frame` holds canonical rows of `metric` with start <= ts < end (it may be empty: a window with no data is
        recorded, with rows=0). Re-writing a window replaces it. Raises SchemaError on wrong columns or types, a
        row of another metric or outside the window, or a window that straddles two days.
        """
        check_source(source)
        get_metric(metric)
        start, end = utc(start, name="start"), utc(end, name="end")
        what = f"window {source}/{metric}/{start.isoformat()}"
        if end <= start:
            raise SchemaError(f"{what}: end {end.isoformat()} must be after start")
        if start.normalize() != (end - pd.Timedelta(1, "ns")).normalize():
            raise SchemaError(
                f"{what}: [{start.isoformat()}, {end.isoformat()}) straddles two days; windows must tile days "
                "(ingest.window_hours must divide 24)"
            )
        table = canonical_table(frame, name=what)
        _check_window_rows(table, metric, start, end, what)
        n_series = _count_series(table)
        bounds = pc.min_max(table["ts"]) if table.num_rows else None
        path = window_file(self.raw_dir, source, metric, start)
        with _tables.dir_lock(path.parent):  # two writers of one window: file and watermark stay a pair
            _size, sha = write_table_atomic(path, table)
            rec = WindowRecord(
                source=source,
                metric=metric,
                window_start=start,
                window_end=end,
                rows=table.num_rows,
                n_series=n_series,
                min_ts=pd.Timestamp(bounds["min"].as_py()) if bounds else None,
                max_ts=pd.Timestamp(bounds["max"].as_py()) if bounds else None,
                file=str(path.relative_to(self.data_dir)),
                sha256=sha,
                written_at=pd.Timestamp.now(tz="UTC"),
            )
            self._watermarks.record(rec)
        return rec

    def write_windows(
        self,
        source: str,
        start: TimeLike,
        end: TimeLike,
        frame: pd.DataFrame,
        *,
        metrics: Sequence[str] | None = None,
        max_workers: int = 4,
    ) -> list[WindowRecord]:
        """`write_window` for every metric of a multi-metric window frame, the metrics written in parallel threads.

        `metrics` (default: those present in `frame`) are the windows to record: a listed metric without rows gets
        an empty window. Each metric's window is atomic and watermarked on its own, exactly as `write_window`; if
        one fails, the others are still written and the first error is raised. Parquet encoding and fsync release
        the GIL, so threads overlap them (see benchmarks/ingest_throughput.py).
        """
        check_columns(frame, name=f"window {source}/{start}")
        parts = dict(split_by_metric(frame))
        names = list(parts) if metrics is None else list(metrics)
        if extra := sorted(set(parts) - set(names)):
            raise SchemaError(f"window {source}/{start}: rows of metrics {extra} not in metrics={names}")
        empty = frame.iloc[:0]
        jobs = [(m, parts.get(m, empty)) for m in names]
        if max_workers <= 1 or len(jobs) <= 1:
            return [self.write_window(source, m, start, end, part) for m, part in jobs]
        with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
            futures = [pool.submit(self.write_window, source, m, start, end, part) for m, part in jobs]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    def has_window(self, source: str, metric: str, start: TimeLike) -> bool:
        """Whether the window starting at `start` has a watermark (it was stored completely)."""
        return self._watermarks.has(source, metric, utc(start, name="start"))

    def windows(self, source: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """The watermark table: one row per stored window (see watermarks.COLUMNS), sorted."""
        return self._watermarks.table(source, metric)

    def missing_windows(
        self, source: str, metric: str, start: TimeLike, end: TimeLike, window: timedelta
    ) -> list[datetime]:
        """Starts of the windows of length `window` tiling [start, end) that have no watermark."""
        start, end = utc(start, name="start"), utc(end, name="end")
        step = pd.Timedelta(window)
        if step <= pd.Timedelta(0):
            raise SchemaError(f"window: expected a positive duration, got {window!r}")
        have = self._watermarks.starts(source, metric, start, end)
        out, t = [], start
        while t < end:
            if t.isoformat() not in have:
                out.append(t.to_pydatetime())
            t += step
        return out

    # ---- quarantine ---------------------------------------------------------------------------------------
    def quarantine(
        self,
        source: str,
        metric: str | None,
        start: TimeLike,
        end: TimeLike,
        frame: pd.DataFrame,
        reason: str,
        details: dict,
    ) -> Path:
        """Keep a rejected batch with the reason and validation details; returns the data file. Never read as data."""
        return _quarantine.put(
            self.quarantine_dir,
            source=source,
            metric=metric,
            start=utc(start, name="start"),
            end=utc(end, name="end"),
            frame=frame,
            reason=reason,
            details=details,
            data_dir=self.data_dir,
        )

    def quarantined(self) -> pd.DataFrame:
        """One row per quarantined batch: source, metric, start, end, rows, reason, path, at."""
        return _quarantine.listing(self.quarantine_dir, self.data_dir)

    # ---- reading ------------------------------------------------------------------------------------------
    def read(
        self,
        metrics: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        cluster: str | Sequence[str] | None = None,
        namespace: str | Sequence[str] | None = None,
        workload: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Canonical rows with start <= ts < end, sorted by series key then ts; an empty canonical frame if none.

        Only the metric/day folders that can match are opened; the other filters are pushed down to DuckDB.
        """
        metric_list = _query._as_list(metrics, name="metrics")
        if metric_list is not None:
            for m in metric_list:
                get_metric(m)
        t0 = utc(start, name="start") if start is not None else None
        t1 = utc(end, name="end") if end is not None else None
        files = _query.raw_files(self.raw_dir, metric_list, t0, t1)
        with _query.connect() as con:
            return _query.read_canonical(
                con, files, metrics=metric_list, start=t0, end=t1, cluster=cluster, namespace=namespace,
                workload=workload,
            )

    def query(self, sql: str) -> pd.DataFrame:
        """Run DuckDB SQL with the views `raw` (all raw Parquet; hive columns metric, day) and `watermarks`."""
        with _query.query_connection(self.raw_dir, self.windows()) as con:
            rel = con.sql(sql)
            frame = rel.to_arrow_table().to_pandas() if rel is not None else pd.DataFrame()
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                frame[col] = frame[col].dt.tz_convert("UTC")
        return frame

    # ---- derived tables -----------------------------------------------------------------------------------
    def write_table(self, name: str, frame: pd.DataFrame, *, key: Sequence[str] | None = None) -> Path:
        """Store a derived table under data_dir/<name> (e.g. "features/demand", "labels/incidents", "events").

        With a `ts` column it is partitioned by day and the touched days are replaced atomically; with `key`, rows
        are upserted into those partitions instead. Returns the table's folder.
        """
        check_table_name(name)
        return _tables.write(self.data_dir / name, name, frame, key)

    def read_table(self, name: str, start: TimeLike | None = None, end: TimeLike | None = None, *,
                   columns: Sequence[str] | None = None, where: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
        """A derived table, rows with start <= ts < end when given. Unknown tables raise UnknownNameError.

        columns  only these columns (read from disk, not dropped after)
        where    only rows whose column value is one of the given values, e.g. {"metric": ["cpu_usage"]}
        """
        check_table_name(name)
        t0 = utc(start, name="start") if start is not None else None
        t1 = utc(end, name="end") if end is not None else None
        return _tables.read(self.data_dir, self.data_dir / name, name, t0, t1, columns, where)

    def tables(self) -> list[str]:
        """Names of the derived tables in the store."""
        return _tables.known_tables(self.data_dir)

    # ---- summary ------------------------------------------------------------------------------------------
    def summary(self) -> StoreSummary:
        wm = self.windows()
        per = (
            wm.assign(empty=wm["rows"].eq(0))
            .groupby(["source", "metric"], as_index=False)
            .agg(windows=("window_start", "size"), empty_windows=("empty", "sum"), rows=("rows", "sum"),
                 first_ts=("min_ts", "min"), last_ts=("max_ts", "max"))
        )
        series = 0
        files = _query.raw_files(self.raw_dir, None, None, None)
        if files:
            with _query.connect() as con:
                series = con.execute(
                    "SELECT count(*) FROM (SELECT DISTINCT cluster, namespace, workload, container, metric "
                    "FROM read_parquet(?))",
                    [files],
                ).fetchone()[0]
        size = 0
        for root, _dirs, names in os.walk(self.data_dir):
            for n in names:
                try:
                    size += os.stat(os.path.join(root, n)).st_size
                except FileNotFoundError:  # a temp file renamed meanwhile
                    pass
        first, last = wm["min_ts"].min(), wm["max_ts"].max()
        return StoreSummary(
            data_dir=self.data_dir,
            series=int(series),
            rows=int(wm["rows"].sum()),
            windows=per,
            first_ts=None if pd.isna(first) else first,
            last_ts=None if pd.isna(last) else last,
            quarantined=len(self.quarantined()),
            bytes_on_disk=size,
        )


def split_by_metric(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(metric, rows of that metric) of a canonical frame; zero-copy slices when rows are grouped by metric."""
    if frame.empty:
        return
    metric = frame["metric"]
    if isinstance(metric.dtype, pd.CategoricalDtype):
        codes = metric.cat.codes.to_numpy()
        if (codes >= 0).all():
            change = (codes[1:] != codes[:-1]).nonzero()[0] + 1
            starts = np.concatenate([[0], change])
            if len(np.unique(codes[starts])) == len(starts):  # each metric in one contiguous run
                for a, b in zip(starts, [*change, len(codes)]):
                    yield str(metric.cat.categories[codes[a]]), frame.iloc[a:b]
                return
    for m, part in frame.groupby("metric", sort=False, observed=True, dropna=False):
        yield (m if isinstance(m, str) else str(m)), part


def _count_series(table: pa.Table) -> int:
    """Distinct (cluster, namespace, workload, container) of a one-metric table, from the dictionary indices."""
    if not table.num_rows:
        return 0
    cols = list(SERIES_KEY[:-1])
    if float(np.prod([len(table[c].combine_chunks().dictionary) + 1.0 for c in cols])) >= 2.0**62:
        return table.group_by(cols).aggregate([]).num_rows  # mixed radix would overflow: let Arrow hash
    ids = np.zeros(table.num_rows, dtype=np.int64)
    for col in cols:
        arr = table[col].combine_chunks()
        values = arr.dictionary
        # equal strings may sit at several dictionary positions: map every index to its value's first position
        first = pc.index_in(values, value_set=pc.unique(values)).to_numpy(zero_copy_only=False)
        idx = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = np.where(idx >= 0, first[np.maximum(idx, 0)] + 1, 0)
        ids = ids * (len(values) + 1) + codes
    return int(len(np.unique(ids)))


def _check_window_rows(table: pa.Table, metric: str, start: pd.Timestamp, end: pd.Timestamp, what: str) -> None:
    if not table.num_rows:
        return
    if present_values(table["metric"].combine_chunks()) != [metric]:
        metrics = table["metric"].combine_chunks().dictionary_decode()
        other = pc.invert(pc.fill_null(pc.equal(metrics, metric), False))
        examples = sorted(set(metrics.filter(other).to_pylist()), key=str)[:5]
        raise SchemaError(f"{what}: expected only rows of metric {metric!r}; {pc.sum(other).as_py()} rows of {examples}")
    ts = table["ts"]
    if n := ts.null_count:
        raise SchemaError(f"{what}: {n} rows without a timestamp (ts)")
    t0 = pa.scalar(start.value, pa.timestamp("ns", tz="UTC"))
    t1 = pa.scalar(end.value, pa.timestamp("ns", tz="UTC"))
    outside = pc.or_(pc.less(ts, t0), pc.greater_equal(ts, t1))
    if n := pc.sum(outside).as_py():
        examples = [pd.Timestamp(v).isoformat() for v in table.filter(outside)["ts"].to_pylist()[:3]]
        raise SchemaError(
            f"{what}: expected start <= ts < {end.isoformat()}; {n} rows outside the window, e.g. {examples}"
        )
