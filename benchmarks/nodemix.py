"""Node mix on real pod sizes: the pattern MILP (`aiops.optimize.nodemix.pack`) against FFD and the bounds.

    python benchmarks/nodemix.py --data-root ../shared/datasets --pods 1000 --seed 0
    python benchmarks/nodemix.py --sizes 100,300,1000,3000 --time-limits 30,120 --seed 0   # the README table

Pods: Bitbrains GWA-T-12 "Rnd" VMs 1-100 (`../shared/datasets/workload/bitbrains_rnd`, checked against its
MANIFEST), July-August 2013 only. Each (VM, ISO week) with at least a day of 5-minute samples is one pod size, as a
right-sizer would set it from that week: CPU request = the week's p95 of cpu_usage_mhz in cores (divided by the VM's
MHz per core, cpu_capacity_provisioned_mhz / cpu_cores, median over its samples; 2,600 MHz, the median of the
others, where the VM reports no cores), memory request = the week's peak memory_usage_kb x 1024 x 1.15 (KRR's
margin); floors of 25 millicores and 250 MiB (the VPA recommender's minimums). `--cpu-unit ghz` takes MHz / 1000 as
cores instead (an 8-core VM at full load is then a 21-core pod). N pods are drawn from those sizes with replacement
(numpy default_rng(seed)); the sizes of N are nested (the first N of one draw). `--synthetic` uses a seeded
log-normal mix instead (no data needed).

Catalog: `NodeMixConfig()`'s default, AWS us-east-1 on-demand m5/c5/r5 (large to 9xlarge), allocatable by GKE's
reservation rule, 110 pods per node. For each N and time limit: FFD (best rule) and MILP $/h, the lower bound and
its kind (pattern LP, or Farley's bound of it when column generation did not finish, or the resource bound), the
resource bound, gap = (MILP - bound) / MILP, MILP / FFD, wall-clock seconds, CBC status. Writes
benchmarks/out/nodemix.json and prints a markdown table. The machine is shared: its load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiops.optimize.nodemix import NodeMixConfig, first_fit_decreasing, pack  # noqa: E402

MIB = 1024**2
GIB = 1024**3
MHZ_PER_CORE_DEFAULT = 2600.0
MIN_CPU, MIN_MEMORY = 0.025, 250 * MIB  # the VPA recommender's minimum recommendation
MEMORY_MARGIN = 0.15  # KRR simple: peak x 1.15


def bitbrains_sizes(root: Path, cpu_unit: str) -> pd.DataFrame:
    """One row per (VM, ISO week) of July-August 2013: vm, week, cpu (cores), memory (bytes)."""
    from workload_data import bitbrains, split_month
    frame = bitbrains(root, columns=("cpu_usage_mhz", "memory_usage_kb", "cpu_capacity_provisioned_mhz",
                                     "cpu_cores"))
    hist, _ = split_month(frame, "2013-09")
    on = hist[hist["cpu_cores"] > 0]
    per_core = (on["cpu_capacity_provisioned_mhz"] / on["cpu_cores"]).groupby(on["series"]).median()
    hist = hist.assign(week=hist["ts"].dt.isocalendar().week.astype(int))
    g = hist.groupby(["series", "week"])
    weeks = g.agg(p95=("cpu_usage_mhz", lambda s: s.quantile(0.95)), peak=("memory_usage_kb", "max"),
                  samples=("cpu_usage_mhz", "count")).reset_index()
    weeks = weeks[weeks["samples"] >= 288]
    mhz = weeks["series"].map(per_core).fillna(MHZ_PER_CORE_DEFAULT) if cpu_unit == "core" else 1000.0
    cpu = np.maximum(np.ceil(weeks["p95"] / mhz * 1000) / 1000, MIN_CPU)
    memory = np.maximum(np.ceil(weeks["peak"] * 1024 * (1 + MEMORY_MARGIN) / MIB) * MIB, MIN_MEMORY)
    return pd.DataFrame({"vm": weeks["series"], "week": weeks["week"], "cpu": cpu, "memory": memory})


def synthetic_sizes(seed: int, n: int = 900) -> pd.DataFrame:
    """A log-normal mix with a quarter of big pods (4-8.5 cores), for when the datasets are not there."""
    rng = np.random.default_rng(seed + 1)
    big = rng.random(n) < 0.25
    cpu = np.where(big, rng.uniform(4, 8.5, n), np.exp(rng.normal(-1.5, 1.2, n)).clip(MIN_CPU, 4)).round(3)
    mem = np.where(big, rng.uniform(8, 44, n), np.exp(rng.normal(0.5, 1.2, n)).clip(0.25, 16)) * GIB
    return pd.DataFrame({"vm": [f"s{i}" for i in range(n)], "week": 0, "cpu": cpu,
                         "memory": np.maximum(np.ceil(mem / MIB) * MIB, MIN_MEMORY)})


def draw(sizes: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    idx = np.random.default_rng(seed).integers(0, len(sizes), n)
    s = sizes.iloc[idx].reset_index(drop=True)
    return pd.DataFrame({"name": [f"pod-{i:05d}-{v}-w{w}" for i, (v, w) in enumerate(zip(s["vm"], s["week"]))],
                         "cpu": s["cpu"].to_numpy(), "memory": s["memory"].to_numpy()})


def run(pods: pd.DataFrame, time_limit: float) -> dict:
    config = NodeMixConfig(time_limit_s=time_limit)
    t = time.perf_counter()
    ffd = first_fit_decreasing(pods, config)
    ffd_s = time.perf_counter() - t
    t = time.perf_counter()
    res = pack(pods, config)
    wall = time.perf_counter() - t
    rule = min(ffd.heuristics, key=ffd.heuristics.get)
    return {
        "pods": len(pods), "distinct_sizes": int(pods.groupby(["cpu", "memory"]).ngroups),
        "requested_cores": round(float(pods["cpu"].sum()), 1),
        "requested_tib": round(float(pods["memory"].sum()) / 1024**4, 3), "time_limit_s": time_limit,
        "ffd_per_hour": round(ffd.cost_per_hour, 4), "ffd_rule": rule, "ffd_seconds": round(ffd_s, 2),
        "milp_per_hour": round(res.cost_per_hour, 4), "milp_per_month": round(res.cost_per_month, 0),
        "method": res.method, "bound_per_hour": round(res.bound, 4), "bound_kind": res.bound_kind,
        "resource_bound_per_hour": round(res.resource_bound, 4), "gap": round(res.gap, 5),
        "milp_over_ffd": round(res.cost_per_hour / ffd.cost_per_hour, 4), "solve_seconds": round(wall, 2),
        "status": res.status, "cbc_status": res.cbc_status, "node_counts": res.node_counts,
        "mean_cpu_utilisation": round(float(res.nodes["cpu_utilisation"].mean()), 4),
        "mean_memory_utilisation": round(float(res.nodes["memory_utilisation"].mean()), 4),
        "notes": list(res.notes), "summary": res.summary(),
    }


def table(rows: list[dict]) -> str:
    head = ("| pods | sizes | limit s | FFD $/h | MILP $/h | won | bound $/h (kind) | resource bound | gap | "
            "MILP/FFD | solve s | CBC |")
    lines = [head, "|" + "---|" * 12]
    kinds = {"LP": "pattern LP", "Farley": "Farley", "fractional": "resource"}
    for r in rows:
        lines.append(f"| {r['pods']:,} | {r['distinct_sizes']} | {r['time_limit_s']:g} | {r['ffd_per_hour']:.2f} | "
                     f"{r['milp_per_hour']:.2f} | {r['method']} | {r['bound_per_hour']:.2f} "
                     f"({kinds.get(r['bound_kind'].split()[0], r['bound_kind'])}) | {r['resource_bound_per_hour']:.2f} | "
                     f"{r['gap']:.1%} | {r['milp_over_ffd']:.3f} | {r['solve_seconds']:.1f} | {r['cbc_status']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=Path("../shared/datasets"))
    p.add_argument("--pods", type=int, default=None, help="one size only (else --sizes)")
    p.add_argument("--sizes", default="100,300,1000,3000")
    p.add_argument("--time-limits", default="30", help="comma-separated NodeMixConfig.time_limit_s values")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-unit", choices=("core", "ghz"), default="core")
    p.add_argument("--synthetic", action="store_true", help="log-normal pod sizes instead of Bitbrains")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "nodemix.json")
    a = p.parse_args(argv)
    sizes = synthetic_sizes(a.seed) if a.synthetic else bitbrains_sizes(a.data_root, a.cpu_unit)
    counts = [a.pods] if a.pods else [int(x) for x in a.sizes.split(",")]
    limits = [float(x) for x in a.time_limits.split(",")]
    pool = draw(sizes, max(counts), a.seed)
    rows = []
    for limit in limits:
        for n in counts:
            rows.append(run(pool.iloc[:n].reset_index(drop=True), limit))
            print(f"{n} pods, {limit:g} s: {rows[-1]['summary']}", flush=True)
    import pulp
    import scipy
    out = {"benchmark": "nodemix", "data": "synthetic log-normal" if a.synthetic else
           "Bitbrains Rnd VMs 1-100, (VM, ISO week) of 2013-07/08: p95 CPU, peak memory x 1.15",
           "cpu_unit": a.cpu_unit, "seed": a.seed, "size_table_rows": len(sizes),
           "catalog": {t.name: t.price_per_hour for t in NodeMixConfig().catalog}, "runs": rows,
           "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
           "scipy": scipy.__version__, "pulp": pulp.__version__,
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(table(rows))
    return out


if __name__ == "__main__":
    main()
