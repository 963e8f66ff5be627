"""Rows/s of ingestion (aiops.ingest.ingest_range: validate, atomic write, watermark) vs plain pyarrow writes.

Over windows of 6 h at 1-min steps (all 13 catalogue metrics of every workload), timing only the writing side:

* ingest: `ingest_range` over a source serving the frames (generated beforehand): per window `validate_batch`
          (great-expectations) and one atomic `write_window` per metric (temp file + fsync + rename + directory
          fsync + SQLite watermark), `--workers` windows at once as the ingest flow does;
* pyarrow, file per window: `pa.Table.from_pandas` + `pq.write_table` per metric and window, no validation,
          no fsync, no watermark;
* pyarrow, one file: the same tables appended to a single `ParquetWriter`.

Frame generation (simulator or numpy) is not timed. Prints a table and appends a JSON line to
benchmarks/out/ingest_throughput.json.

    python benchmarks/ingest_throughput.py --workloads 100 --days 7 --seed 0
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _data import WindowSource  # noqa: E402

from aiops.ingest import ingest_range  # noqa: E402
from aiops.store import Store  # noqa: E402
from aiops.store.store import split_by_metric  # noqa: E402
from aiops.validation import validate_batch  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


class FrameSource:
    """A MetricSource serving frames generated beforehand, so the timing is ingest's alone."""

    def __init__(self, name: str, frames):
        self.name = name
        self._by_start = {ws: f for ws, _, f in frames}

    def fetch(self, start, end, metrics, step_s):
        frame = self._by_start[start]
        return frame if len(metrics) == frame["metric"].nunique() else frame[frame["metric"].isin(metrics)]

    def close(self):
        pass


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", type=int, default=100)
    ap.add_argument("--days", type=int, default=7, help="days of data (30 allowed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window-hours", type=float, default=6.0)
    ap.add_argument("--step-seconds", type=int, default=60)
    ap.add_argument("--data", choices=["auto", "simulator", "synthetic"], default="auto")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary directory, removed after")
    ap.add_argument("--workers", type=int, default=2, help="batches in flight (ingest.workers; 1: one by one)")
    ap.add_argument("--batch-windows", type=int, default=4, help="windows validated together (ingest.batch_windows)")
    ap.add_argument("--repeat", type=int, default=3, help="ingest/pyarrow pairs; the median pair is reported")
    ap.add_argument("--profile", action="store_true", help="print the top functions of the store path")
    args = ap.parse_args(argv)

    window = timedelta(hours=args.window_hours)
    src = WindowSource(workloads=args.workloads, days=args.days, seed=args.seed, window=window,
                       step_s=args.step_seconds, kind=args.data)
    tmp = None
    if args.data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="aiops-bench-"))
        base = tmp
    else:
        base = args.data_dir
    # one-off cost of a process: importing great_expectations and building the suite (not per window)
    t = time.perf_counter()
    validate_batch(next(iter(WindowSource(workloads=1, days=1, seed=0, window=window, kind="synthetic")))[2],
                   name="warm-up")
    t_warmup = time.perf_counter() - t

    t = time.perf_counter()
    frames = list(src)
    t_gen = time.perf_counter() - t
    rows = sum(len(f) for _, _, f in frames)
    source = FrameSource(src.kind, frames)
    prof = cProfile.Profile() if args.profile else None
    runs = []
    for rep in range(args.repeat):
        # each repeat times the ingest path and the pyarrow baselines back to back on fresh directories, so a
        # busy spell of this shared machine hits both arms of a pair; the median pair is reported
        run_dir = base / f"run{rep}"
        store = Store(run_dir / "store")
        per_window_dir = run_dir / "pyarrow_per_window"
        one_file = run_dir / "pyarrow_one_file" / "all.parquet"
        one_file.parent.mkdir(parents=True, exist_ok=True)
        if prof:
            prof.enable()
        t = time.perf_counter()
        summary = ingest_range(source, store, frames[0][0], frames[-1][1], window=window,
                               step_s=args.step_seconds, workers=args.workers, batch_windows=args.batch_windows)
        t_store = time.perf_counter() - t
        if prof:
            prof.disable()
        if summary.quarantined or summary.rows != rows:
            raise SystemExit(f"benchmark data did not ingest cleanly: {summary.quarantined[:3]}, {summary.rows} rows")

        # pyarrow straight: one file per metric and window (the store's layout, no validation, fsync or watermark)
        t = time.perf_counter()
        for ws, _, frame in frames:
            for metric, part in split_by_metric(frame):
                path = per_window_dir / f"metric={metric}" / f"{ws:%Y%m%dT%H%M%S}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path)
        t_pa_windows = time.perf_counter() - t

        # pyarrow straight: one file in total
        t = time.perf_counter()
        writer = None
        for _, _, frame in frames:
            for metric, part in split_by_metric(frame):
                table = pa.Table.from_pandas(part, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(one_file, table.schema)
                writer.write_table(table)
        if writer is not None:
            writer.close()
        t_pa_one = time.perf_counter() - t
        runs.append((t_pa_windows / t_store, t_store, t_pa_windows, t_pa_one, store))
        print(f"  repeat {rep + 1}: ingest {t_store:.2f} s, pyarrow per window {t_pa_windows:.2f} s, "
              f"one file {t_pa_one:.2f} s, ratio {t_pa_windows / t_store:.2f}", flush=True)
    runs.sort(key=lambda r: r[0])
    _, t_store, t_pa_windows, t_pa_one, store = runs[len(runs) // 2]
    ratios = [round(r[0], 3) for r in runs]

    store_bytes = sum(p.stat().st_size for p in store.raw_dir.rglob("*.parquet"))
    res = {
        "benchmark": "ingest_throughput",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "data": src.kind,
        "workloads": args.workloads,
        "days": args.days,
        "seed": args.seed,
        "window_hours": args.window_hours,
        "workers": args.workers,
        "batch_windows": args.batch_windows,
        "repeat": args.repeat,
        "ratios_sorted": ratios,
        "windows": src.n_windows,
        "rows": rows,
        "store_s": round(t_store, 3),
        "pyarrow_per_window_s": round(t_pa_windows, 3),
        "pyarrow_one_file_s": round(t_pa_one, 3),
        "generate_s": round(t_gen, 3),
        "gx_warmup_s": round(t_warmup, 3),
        "store_rows_per_s": round(rows / t_store),
        "pyarrow_per_window_rows_per_s": round(rows / t_pa_windows),
        "pyarrow_one_file_rows_per_s": round(rows / t_pa_one),
        "ratio_vs_per_window": round(t_pa_windows / t_store, 3),
        "ratio_vs_one_file": round(t_pa_one / t_store, 3),
        "store_raw_bytes": store_bytes,
        "watermarks": len(store.windows()),
    }
    print(f"\ningest throughput: {rows:,} rows ({args.workloads} workloads x {args.days} days x 13 metrics, "
          f"{src.n_windows} windows of {args.window_hours:g} h, data: {src.kind})\n")
    print(f"{'path':<44}{'seconds':>10}{'rows/s':>14}{'ratio':>8}")
    lines = [
        (f"aiops ingest_range ({args.workers} workers, {args.batch_windows}-window batches)", t_store, 1.0),
        ("pyarrow, one file per metric and window", t_pa_windows, t_pa_windows / t_store),
        ("pyarrow, one file in total", t_pa_one, t_pa_one / t_store),
    ]
    for name, secs, ratio in lines:
        r = f"{ratio:>8.2f}" if ratio is not None else f"{'':>8}"
        print(f"{name:<44}{secs:>10.2f}{rows / secs:>14,.0f}{r}")
    print(f"(not timed: data generation {t_gen:.1f} s; GX import + suite build, once a process, {t_warmup:.1f} s)")
    print(f"\nratio (ingest rows/s / pyarrow per-window rows/s), median of {args.repeat} pairs = "
          f"{res['ratio_vs_per_window']:.2f} (target >= 0.5); all pairs: {ratios}")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    OUT.mkdir(exist_ok=True)
    with open(OUT / "ingest_throughput.json", "a") as fh:
        fh.write(json.dumps(res) + "\n")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
