"""Peak memory of ingesting many days window by window: it must be bounded by the window, not the total.

The product's own path: the simulator source (which simulates as it goes and keeps a bounded cache of days)
feeding `aiops.ingest.ingest_range` (validate, atomic writes, watermarks), `--workers` windows in flight. A sampler thread reads /proc/self/status
(VmRSS, VmHWM) every 20 ms; `resource.getrusage(RUSAGE_SELF).ru_maxrss` is reported too. "Growth" is the RSS at the
end minus the RSS after the warm-up (the first day), which should be near zero.

    python benchmarks/ingest_memory.py --workloads 100 --days 30 --seed 0
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _data import WindowSource  # noqa: E402

from aiops.ingest import ingest_range  # noqa: E402
from aiops.settings import load_settings  # noqa: E402
from aiops.sources import make_source  # noqa: E402
from aiops.store import Store  # noqa: E402
from aiops.validation import validate_batch  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Samples VmRSS every `every` seconds; keeps the maximum seen."""

    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every, self.max_rss_kb, self._halt = every, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.max_rss_kb = max(self.max_rss_kb, _status_kb("VmRSS"))
            time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window-hours", type=float, default=6.0)
    ap.add_argument("--step-seconds", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2, help="windows in flight (ingest.workers)")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary directory, removed after")
    args = ap.parse_args(argv)

    window = timedelta(hours=args.window_hours)
    tmp = Path(tempfile.mkdtemp(prefix="aiops-mem-")) if args.data_dir is None else None
    settings = load_settings(
        data_dir=(tmp or args.data_dir) / "store",
        sim={"workloads": args.workloads, "namespaces": max(1, args.workloads // 8), "days": args.days,
             "seed": args.seed, "start": "2026-01-05T00:00:00Z", "step_seconds": args.step_seconds,
             "scrape_glitches": 0},
        ingest={"window_hours": args.window_hours, "step_seconds": args.step_seconds, "workers": args.workers},
    )
    store = Store(settings.data_dir)
    source = make_source(settings)  # the simulator source the ingest flow uses, simulating as it goes
    day0 = settings.sim.resolved_start()

    # imports and the GX suite are a per-process constant: load them before measuring
    validate_batch(next(iter(WindowSource(workloads=1, days=1, seed=0, window=window, kind="synthetic")))[2],
                   name="warm-up")
    rss_start = _status_kb("VmRSS")
    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    trajectory: list[tuple[int, int]] = []  # (day, RSS kB at the end of the day)
    rss_warm = None
    rows = 0
    n_windows = 0
    for day in range(args.days):
        # the real ingest path, a day at a time only so that RSS can be read between days
        summary = ingest_range(source, store, day0 + timedelta(days=day), day0 + timedelta(days=day + 1),
                               window=window, step_s=args.step_seconds, workers=args.workers,
                               batch_windows=settings.ingest.batch_windows)
        if summary.quarantined:
            raise SystemExit(f"benchmark data failed validation: {summary.quarantined[:3]}")
        rows += summary.rows
        n_windows += len(summary.windows)
        rss = _status_kb("VmRSS")
        trajectory.append((day + 1, rss))
        if day == 0:
            rss_warm = rss
    window_rows = rows // max(1, n_windows)
    elapsed = time.perf_counter() - t0
    sampler.stop()
    rss_end = _status_kb("VmRSS")
    hwm = _status_kb("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    rss_warm = rss_warm if rss_warm is not None else rss_end
    window_bytes_est = window_rows * 40  # categorical codes + ts + value, as the simulator's frame holds them

    res = {
        "benchmark": "ingest_memory",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "data": "simulator (aiops.sources.simulator via aiops.ingest.ingest_range)",
        "workloads": args.workloads,
        "days": args.days,
        "seed": args.seed,
        "window_hours": args.window_hours,
        "windows": n_windows,
        "workers": args.workers,
        "rows": rows,
        "rows_per_window": window_rows,
        "elapsed_s": round(elapsed, 1),
        "rss_before_mb": round(rss_start / 1024, 1),
        "rss_after_warmup_mb": round(rss_warm / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        "rss_growth_after_warmup_mb": round((rss_end - rss_warm) / 1024, 1),
        "peak_rss_sampled_mb": round(sampler.max_rss_kb / 1024, 1),
        "vm_hwm_mb": round(hwm / 1024, 1),
        "ru_maxrss_mb": round(maxrss / 1024, 1),
        "total_data_in_memory_mb_if_held": round(rows * 40 / 2**20, 1),
        "one_window_mb_est": round(window_bytes_est / 2**20, 1),
        "rss_by_day_mb": {d: round(r / 1024, 1) for d, r in trajectory},
    }
    print(f"\ningest memory: {rows:,} rows ({args.workloads} workloads x {args.days} days x 13 metrics, "
          f"{n_windows} windows of {args.window_hours:g} h = {window_rows:,} rows each, ingest_range from the simulator), "
          f"{elapsed:.0f} s\n")
    for key, label in [
        ("rss_before_mb", "RSS before ingest (imports, GX suite)"),
        ("rss_after_warmup_mb", "RSS after day 1 (warm-up)"),
        ("rss_end_mb", f"RSS after day {args.days}"),
        ("rss_growth_after_warmup_mb", "growth after warm-up"),
        ("peak_rss_sampled_mb", "peak RSS (sampler, VmRSS every 20 ms)"),
        ("vm_hwm_mb", "peak RSS (VmHWM)"),
        ("ru_maxrss_mb", "peak RSS (getrusage ru_maxrss)"),
        ("one_window_mb_est", "one window's frame (estimate)"),
        ("total_data_in_memory_mb_if_held", "the whole period if held as one frame (estimate)"),
    ]:
        print(f"{label:<52}{res[key]:>10.1f} MB")
    days = sorted(res["rss_by_day_mb"])
    pick = days if len(days) <= 10 else days[:: max(1, len(days) // 10)] + [days[-1]]
    print("\nRSS by day (MB): " + ", ".join(f"d{d}={res['rss_by_day_mb'][d]}" for d in dict.fromkeys(pick)))
    OUT.mkdir(exist_ok=True)
    with open(OUT / "ingest_memory.json", "a") as fh:
        fh.write(json.dumps(res) + "\n")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
