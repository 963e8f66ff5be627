"""Proof that models/evaluation/nab.py scores as NAB does: NAB's own detector outputs, rescored, against NAB's results.

    python benchmarks/nab_scorer_check.py [--datasets DIR] [--detectors numenta,windowedGaussian]

Data: the NAB v1.1 corpus and the published per-row `anomaly_score` of every detector under
`anomaly/nab/results/` (numenta, windowedGaussian), each file verified against MANIFEST.sha256. For each detector
and profile it computes (1) our score with our corpus-wide threshold optimisation, (2) our score at NAB's own
threshold (config/thresholds.json, what NAB's score step reads), and compares both with results/final_results.json;
(3) at NAB's threshold, file by file with NAB's `<detector>_<profile>_scores.csv` (score and tp/tn/fp/fn counts).
Prints a table detector x profile (ours, published, diff) and exits 1 if any difference exceeds --tolerance (0.5
points) or any file's counts differ. Our optimiser may find a better threshold than NAB's published one (those are
not detector scores, so they come from a search, not from an exhaustive sweep); then `ours` exceeds `published`.
Appends a JSON line to benchmarks/out/nab_scorer_check.json. No randomness.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._datasets import (  # noqa: E402
    DEFAULT_DATASETS,
    Datasets,
    nab_files,
    nab_json,
    nab_labelled,
    nab_profiles,
    nab_published_file_scores,
    nab_result_detectors,
    nab_result_scores,
)
from models.evaluation.nab import score_corpus  # noqa: E402


def check(ds: Datasets, detectors: list[str] | None = None, profiles: list[str] | None = None) -> list[dict]:
    """One row per detector and profile: our scores next to NAB's published ones, and their differences."""
    files = nab_files(ds)
    labelled = nab_labelled(files)
    all_profiles = nab_profiles(ds)
    use = {p: all_profiles[p] for p in (profiles or all_profiles)}
    final = nab_json(ds, "results/final_results.json")
    nab_thr = nab_json(ds, "config/thresholds.json")
    rows = []
    for det in detectors or nab_result_detectors(ds):
        scores = nab_result_scores(ds, det, files)
        ours = score_corpus(labelled, scores, use)
        at_nab = score_corpus(labelled, scores, use, thresholds={p: nab_thr[det][p]["threshold"] for p in use})
        for p in use:
            row = {"detector": det, "profile": p, "ours": ours[p].score, "ours_threshold": ours[p].threshold,
                   "ours_at_nab_threshold": at_nab[p].score, "nab_threshold": at_nab[p].threshold,
                   "published": float(final[det][p]), "raw": ours[p].raw, "raw_at_nab_threshold": at_nab[p].raw}
            row["diff"] = row["ours"] - row["published"]
            row["diff_at_nab_threshold"] = row["ours_at_nab_threshold"] - row["published"]
            pub = nab_published_file_scores(ds, det, p)
            if pub is not None:
                mine = at_nab[p].per_file.set_index("file")
                pub = pub.set_index("File").loc[mine.index]
                row["files"] = len(pub)
                row["file_max_abs_diff"] = float(np.abs(mine["score"] - pub["Score"]).max())
                row["files_count_mismatch"] = int((mine[["tp", "tn", "fp", "fn"]].to_numpy()
                                                   != pub[["TP", "TN", "FP", "FN"]].to_numpy()).any(axis=1).sum())
            rows.append(row)
    return rows


def failures(rows: list[dict], tolerance: float) -> list[str]:
    """Every comparison that is off by more than `tolerance` points (or whose per-file counts differ)."""
    bad = []
    for r in rows:
        name = f"{r['detector']}/{r['profile']}"
        for key in ("diff", "diff_at_nab_threshold", "file_max_abs_diff"):
            if key in r and not abs(r[key]) <= tolerance:
                bad.append(f"{name}: {key} = {r[key]:+.4f} (tolerance {tolerance})")
        if r.get("files_count_mismatch"):
            bad.append(f"{name}: tp/tn/fp/fn differ from NAB's in {r['files_count_mismatch']} file(s)")
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="the shared datasets directory")
    p.add_argument("--detectors", default=None, help="comma-separated NAB result detectors (default: all present)")
    p.add_argument("--tolerance", type=float, default=0.5, help="largest accepted difference, in NAB points")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "nab_scorer_check.json")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = check(Datasets(a.datasets), a.detectors.split(",") if a.detectors else None)
    secs = time.perf_counter() - t0
    print(f"{'detector':18s} {'profile':20s} {'ours':>8s} {'pub':>8s} {'diff':>7s} | {'at NAB thr':>10s} "
          f"{'diff':>7s} | {'files':>5s} {'max |d| file':>12s} {'count!=':>7s} | {'our thr':>9s} {'NAB thr':>9s}")
    for r in rows:
        print(f"{r['detector']:18s} {r['profile']:20s} {r['ours']:8.3f} {r['published']:8.3f} {r['diff']:+7.3f} | "
              f"{r['ours_at_nab_threshold']:10.3f} {r['diff_at_nab_threshold']:+7.3f} | {r.get('files', 0):5d} "
              f"{r.get('file_max_abs_diff', float('nan')):12.2e} {r.get('files_count_mismatch', 0):7d} | "
              f"{r['ours_threshold']:9.6f} {r['nab_threshold']:9.6f}")
    bad = failures(rows, a.tolerance)
    print(f"{len(rows)} comparisons in {secs:.1f} s: " + ("all within tolerance" if not bad else "FAILED"))
    for b in bad:
        print("  " + b)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps({"benchmark": "nab_scorer_check", "tolerance": a.tolerance, "ok": not bad,
                            "seconds": round(secs, 2), "rows": rows,
                            "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
