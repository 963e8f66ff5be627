"""Our detectors on NAB v1.1, scored as NAB scores (models/evaluation/nab.py, proven by nab_scorer_check.py).

    python benchmarks/nab.py --detectors likelihood,robust_mad,isolation_forest [--processes 2] [--datasets DIR]
                             [--config robust_mad='{"window": 96}'] [--files realAWSCloudwatch]

Data: the 58 NAB files and their label windows, verified against MANIFEST.sha256. Method, per detector and file:
`create(name, **config).fit(history)` on the file's probationary rows (NAB's: the first min(15 %, 750) rows, never
scored), then `score(window)` on the whole file; scores are causal (the score at row t uses rows <= t only) and
calibrated to [0, 1] per file, so one threshold can serve the corpus: against the training scores (the base
calibrator), or, for `likelihood`, against the running distribution of the file's own past scores. Then NAB's
per-profile threshold optimisation over all files at once, and the normalised standard / reward_low_FP /
reward_low_FN scores, printed next to NAB's published scoreboard. Rows are fed in file order on a regular grid at
the file's median step (a few NAB files repeat or skip timestamps; NAB itself scores rows, not times).
Seeds: each detector's config `seed` (default 0). Appends a JSON line to benchmarks/out/nab.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._datasets import (  # noqa: E402
    DEFAULT_DATASETS,
    Datasets,
    NabFile,
    nab_files,
    nab_labelled,
    nab_profiles,
)
from models.evaluation.nab import probation_rows, score_corpus  # noqa: E402

# numenta/NAB README "Scoreboard" (NAB v1.0 results, v1.1 corpus): standard, reward_low_FP, reward_low_FN
SCOREBOARD = {
    "ARTime": (74.9, 65.1, 80.4),
    "Numenta HTM": (70.5, 62.6, 75.2),
    "Windowed Gaussian": (39.6, 20.9, 47.4),
    "Null": (0.0, 0.0, 0.0),
}
PROFILE_ORDER = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def detector_target(name: str) -> str:
    """`module:Class` of a catalogued detector (workers import it, so plugins registered here work there too)."""
    from models.catalog import model_class

    cls = model_class(name)
    if getattr(cls, "kind", None) != "detector":
        raise ValueError(f"--detectors: {name!r} is a {getattr(cls, 'kind', '?')}, not a detector")
    return f"{cls.__module__}:{cls.__qualname__}"


def available_detectors() -> list[str]:
    """Catalogued detectors whose modules import (others may still be being written)."""
    from models.catalog import available

    out = []
    for name in available():
        try:
            detector_target(name)
        except (ImportError, ValueError):
            continue
        out.append(name)
    return out


def file_frame(f: NabFile) -> pd.DataFrame:
    """The file as a panel frame, one series, rows on a regular grid at the file's median step."""
    ts = f.frame["timestamp"]
    step = pd.Timedelta(ts.diff().median())
    if not step > pd.Timedelta(0):
        step = pd.Timedelta(minutes=5)
    grid = pd.date_range(ts.iloc[0], periods=len(ts), freq=step.round("s") or step)
    return pd.DataFrame({"series": f.name, "ts": grid, "value": f.frame["value"].to_numpy(dtype=np.float64)})


def run_file(task: tuple) -> tuple[np.ndarray | None, float, str | None]:
    """Fit on the probationary rows, score the whole file: (scores, seconds, error or None)."""
    target, config, frame = task
    import importlib

    t0 = time.perf_counter()
    try:
        module, _, cls = target.partition(":")
        model = getattr(importlib.import_module(module), cls)(**config)
        n = len(frame)
        model.fit(frame.iloc[: probation_rows(n)])
        out = model.score(frame).sort_values("ts")
        scores = out["score"].to_numpy(dtype=np.float64)
        if len(scores) != n:
            raise AssertionError(f"score returned {len(scores)} rows for {n}")
        return scores, time.perf_counter() - t0, None
    except Exception as exc:  # noqa: BLE001 - one file's failure is reported with the file, the run goes on
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"


def run(ds: Datasets, detectors: list[str], configs: dict[str, dict], *, processes: int = 1,
        files_filter: str | None = None) -> list[dict]:
    """Score each detector on the corpus (or the files whose name contains `files_filter`)."""
    files = nab_files(ds)
    if files_filter:
        files = [f for f in files if files_filter in f.name]
        if not files:
            raise ValueError(f"--files: no NAB file name contains {files_filter!r}")
    labelled = nab_labelled(files)
    profiles = nab_profiles(ds)
    frames = [file_frame(f) for f in files]
    pool = (ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            if processes > 1 else None)
    results = []
    try:
        for name in detectors:
            target, config = detector_target(name), configs.get(name, {})
            tasks = [(target, config, fr) for fr in frames]
            t0 = time.perf_counter()
            outs = list(pool.map(run_file, tasks)) if pool else [run_file(t) for t in tasks]
            wall = time.perf_counter() - t0
            errors = {f.name: err for f, (_, _, err) in zip(files, outs) if err}
            scores = [s if s is not None else np.full(f.n, np.nan) for f, (s, _, _) in zip(labelled, outs)]
            res = score_corpus(labelled, scores, profiles)
            results.append({
                "detector": name, "config": config, "files": len(files), "failed_files": errors,
                "seconds_wall": round(wall, 2), "seconds_cpu_sum": round(sum(o[1] for o in outs), 2),
                "profiles": {p: {"score": r.score, "raw": r.raw, "threshold": r.threshold} for p, r in res.items()},
            })
    finally:
        if pool:
            pool.shutdown()
    return results


def _parse_configs(items: list[str]) -> dict[str, dict]:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            cfg = json.loads(text) if sep else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config {item!r}: the part after '=' must be a JSON object ({exc})") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"--config {item!r}: expected NAME='{{\"key\": value}}'")
        out[name] = cfg
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="the shared datasets directory")
    p.add_argument("--detectors", default=None, help="comma-separated catalog names (default: every detector)")
    p.add_argument("--config", action="append", default=[], help="NAME='{json config}' for one detector")
    p.add_argument("--processes", type=int, default=1, help="worker processes (files run in parallel)")
    p.add_argument("--files", default=None, help="only files whose name contains this (a partial, quick run)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "nab.json")
    a = p.parse_args(argv)
    if a.processes < 1:
        p.error(f"--processes: expected a whole number >= 1, received {a.processes}")
    names = a.detectors.split(",") if a.detectors else available_detectors()
    for n in names:
        detector_target(n)  # unknown names fail here, listing the known ones
    results = run(Datasets(a.datasets), names, _parse_configs(a.config), processes=a.processes,
                  files_filter=a.files)
    partial = f" (files matching {a.files!r} only: not comparable with the scoreboard)" if a.files else ""
    print(f"NAB v1.1, {results[0]['files'] if results else 0} files{partial}")
    print(f"{'detector':36s} {'standard':>9s} {'low_FP':>9s} {'low_FN':>9s}  {'thr std':>8s}  {'wall s':>7s}  failed")
    for r in results:
        sc = [r["profiles"][q]["score"] for q in PROFILE_ORDER]
        print(f"{r['detector']:36s} {sc[0]:9.2f} {sc[1]:9.2f} {sc[2]:9.2f}  "
              f"{r['profiles']['standard']['threshold']:8.4f}  {r['seconds_wall']:7.1f}  {len(r['failed_files'])}")
    for name, sc in SCOREBOARD.items():
        print(f"{name + ' (NAB scoreboard)':36s} {sc[0]:9.1f} {sc[1]:9.1f} {sc[2]:9.1f}")
    failed = [(r["detector"], f, e) for r in results for f, e in r["failed_files"].items()]
    for det, f, e in failed[:10]:
        print(f"FAILED {det} on {f}: {e.splitlines()[0]}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as fh:
        fh.write(json.dumps({"benchmark": "nab", "files_filter": a.files, "processes": a.processes,
                             "results": results, "scoreboard": SCOREBOARD, "cpus": os.cpu_count(),
                             "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
