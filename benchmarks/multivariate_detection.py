"""Our detectors on multivariate server data: SMD (8 machines) and JumpStarter (Dataset2, Dataset3; 30 services each).

    python benchmarks/multivariate_detection.py --detectors robust_mad,isolation_forest [--processes 2]
        [--data smd,jumpstarter2,jumpstarter3] [--entities 3] [--label-free-threshold 0.99] [--datasets DIR]

Data: every file verified against MANIFEST.sha256 (see benchmarks/_datasets.py). Method, per machine or service:
`create(name, **config).fit(train)` on the unlabelled train half (all metrics as the value columns of one series, on
a regular grid: 1 min for SMD, 5 min for JumpStarter; the publishers removed the timestamps), then `score(test)` on
the test half, which follows the train half in time, so scores are causal and continue from the train's tail.
Reported per dataset, as the mean over entities that have anomalies and pooled over all entities
(models/evaluation/detection.py):

* F1 at the best threshold, point-wise (an oracle: the threshold looks at the labels);
* F1 at a label-free threshold: the calibrated score `--label-free-threshold` q (default 0.99). The detector base
  calibrates each entity's scores against its own training scores, so this is the training q-quantile per entity;
* PA-F1 (point-adjusted: a segment with one detection counts as detected in full), at the best threshold, the
  figure most papers report (inflated; compare with care) and at the label-free threshold.

Published SMD numbers use all 28 machines; on this 8-machine subset they are not comparable. Seeds: each detector's
config `seed` (default 0). Appends a JSON line to benchmarks/out/multivariate_detection.json.
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

from benchmarks._datasets import DEFAULT_DATASETS, Datasets, Entity, jumpstarter, smd  # noqa: E402
from benchmarks.nab import _parse_configs, available_detectors, detector_target  # noqa: E402
from models.evaluation.detection import at_threshold, best_f1  # noqa: E402

DATA = {"smd": ("1min", lambda ds, limit: smd(ds, limit)),
        "jumpstarter2": ("5min", lambda ds, limit: jumpstarter(ds, "Dataset2", limit)),
        "jumpstarter3": ("5min", lambda ds, limit: jumpstarter(ds, "Dataset3", limit))}
START = pd.Timestamp("2000-01-01", tz="UTC")  # the data has no timestamps; only the step matters


def frames(e: Entity, step: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test of one entity as panel frames (columns m00, m01, ...), test right after train."""
    cols = [f"m{j:02d}" for j in range(e.train.shape[1])]
    ts = pd.date_range(START, periods=len(e.train) + len(e.test), freq=step)
    train = pd.DataFrame(e.train, columns=cols)
    test = pd.DataFrame(e.test, columns=cols)
    train.insert(0, "ts", ts[: len(e.train)])
    test.insert(0, "ts", ts[len(e.train):])
    train.insert(0, "series", e.name)
    test.insert(0, "series", e.name)
    return train, test


def run_entity(task: tuple) -> tuple[np.ndarray | None, float, str | None]:
    """Fit on train, score test: (test scores, seconds, error or None)."""
    target, config, train, test = task
    import importlib

    t0 = time.perf_counter()
    try:
        module, _, cls = target.partition(":")
        model = getattr(importlib.import_module(module), cls)(**config)
        model.fit(train)
        scores = model.score(test).sort_values("ts")["score"].to_numpy(dtype=np.float64)
        if len(scores) != len(test):
            raise AssertionError(f"score returned {len(scores)} rows for {len(test)}")
        return scores, time.perf_counter() - t0, None
    except Exception as exc:  # noqa: BLE001 - reported with the entity; the run goes on
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"


def evaluate(scores: list[np.ndarray], labels: list[np.ndarray], q: float) -> dict:
    """The four F1 figures, as mean over entities with anomalies and pooled over all entities."""
    with_anomalies = [k for k, y in enumerate(labels) if y.any()]
    figures = {
        "f1_best": lambda s, y: best_f1(s, y),
        "f1_label_free": lambda s, y: at_threshold(s, y, q),
        "pa_f1_best": lambda s, y: best_f1(s, y, adjust=True),
        "pa_f1_label_free": lambda s, y: at_threshold(s, y, q, adjust=True),
    }
    out = {"entities": len(labels), "entities_with_anomalies": len(with_anomalies), "label_free_threshold": q}
    for key, fn in figures.items():
        per = [fn(scores[k], labels[k]) for k in with_anomalies]
        pooled = fn(scores, labels)
        out[key] = {"mean": float(np.mean([c.f1 for c in per])) if per else float("nan"),
                    "pooled": pooled.f1, "pooled_counts": pooled.as_dict(),
                    "per_entity": [round(c.f1, 4) for c in per]}
    return out


def run(ds: Datasets, detectors: list[str], data: list[str], configs: dict[str, dict], *, processes: int = 1,
        entities: int | None = None, q: float = 0.99) -> list[dict]:
    """Every detector on every dataset; one row per (dataset, detector)."""
    pool = (ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            if processes > 1 else None)
    results = []
    try:
        for key in data:
            step, load = DATA[key]
            ents = load(ds, entities)
            pairs = [frames(e, step) for e in ents]
            for name in detectors:
                target, config = detector_target(name), configs.get(name, {})
                tasks = [(target, config, tr, te) for tr, te in pairs]
                t0 = time.perf_counter()
                outs = list(pool.map(run_entity, tasks)) if pool else [run_entity(t) for t in tasks]
                wall = time.perf_counter() - t0
                errors = {e.name: err for e, (_, _, err) in zip(ents, outs) if err}
                scores = [s if s is not None else np.full(len(e.test), np.nan) for e, (s, _, _) in zip(ents, outs)]
                res = evaluate(scores, [e.labels for e in ents], q)
                results.append({"dataset": key, "detector": name, "config": config, "failed": errors,
                                "seconds_wall": round(wall, 2), **res})
    finally:
        if pool:
            pool.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="the shared datasets directory")
    p.add_argument("--detectors", default=None, help="comma-separated catalog names (default: every detector)")
    p.add_argument("--data", default="smd,jumpstarter2,jumpstarter3", help=f"any of {', '.join(DATA)}")
    p.add_argument("--config", action="append", default=[], help="NAME='{json config}' for one detector")
    p.add_argument("--processes", type=int, default=1, help="worker processes (entities run in parallel)")
    p.add_argument("--entities", type=int, default=None, help="only the first N entities per dataset (quick run)")
    p.add_argument("--label-free-threshold", type=float, default=0.99,
                   help="calibrated score above which a point is an anomaly (the training quantile)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "multivariate_detection.json")
    a = p.parse_args(argv)
    data = a.data.split(",")
    unknown = [d for d in data if d not in DATA]
    if unknown:
        p.error(f"--data: unknown {unknown}; expected any of {', '.join(DATA)}")
    if a.processes < 1 or (a.entities is not None and a.entities < 1) or not 0 < a.label_free_threshold < 1:
        p.error("--processes and --entities must be >= 1 and --label-free-threshold in (0, 1)")
    names = a.detectors.split(",") if a.detectors else available_detectors()
    for n in names:
        detector_target(n)
    results = run(Datasets(a.datasets), names, data, _parse_configs(a.config), processes=a.processes,
                  entities=a.entities, q=a.label_free_threshold)
    print(f"F1 (mean over entities with anomalies / pooled); label-free threshold = calibrated score "
          f"{a.label_free_threshold}{'; first ' + str(a.entities) + ' entities only' if a.entities else ''}")
    print(f"{'dataset':13s} {'detector':18s} {'ent':>4s} {'F1 best':>13s} {'F1 label-free':>13s} "
          f"{'PA-F1 best':>13s} {'PA-F1 l-free':>13s} {'wall s':>7s} failed")
    for r in results:
        cells = " ".join(f"{r[k]['mean']:6.3f}/{r[k]['pooled']:6.3f}"
                         for k in ("f1_best", "f1_label_free", "pa_f1_best", "pa_f1_label_free"))
        print(f"{r['dataset']:13s} {r['detector']:18s} {r['entities']:4d} {cells} {r['seconds_wall']:7.1f} "
              f"{len(r['failed'])}")
    failed = [(r["dataset"], r["detector"], k, e) for r in results for k, e in r["failed"].items()]
    for d, det, k, e in failed[:10]:
        print(f"FAILED {det} on {d}/{k}: {e.splitlines()[0]}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as fh:
        fh.write(json.dumps({"benchmark": "multivariate_detection", "entities_limit": a.entities,
                             "processes": a.processes, "results": results, "cpus": os.cpu_count(),
                             "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
