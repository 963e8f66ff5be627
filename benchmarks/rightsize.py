"""Right-sizing on real usage: our PuLP optimiser against KRR, the VPA and Kubecost, and its risk dial.

    python benchmarks/rightsize.py                                  # Bitbrains VMs 1-100: July-August -> September
    python benchmarks/rightsize.py --test-month 2013-08             # the validation split: July -> August
    python benchmarks/rightsize.py --csv FILE --split 2024-05-01    # any usage (series, ts, cpu, memory)

Data: `--data-root` (default ../shared/datasets), every file checked against MANIFEST.sha256 first. Bitbrains
GWA-T-12 Rnd (README section 5), VMs `--vms` (default 1-100), each VM taken as one container, on the 5-minute grid of
`workload_data.bitbrains` (duplicates dropped, gaps up to 30 minutes interpolated, longer ones missing). Recommend
from everything before `--test-month` (default 2013-09), measure on that month. `--csv FILE`: any long usage file
with columns series, ts (UTC), cpu (cores) and memory (bytes), split at `--split` (history before, test from it).
Units: CPU cores = `cpu_usage_mhz` / the VM's MHz per core (`cpu_capacity_provisioned_mhz` / `cpu_cores`, the
median over the history: 2,600, 2,700 or 2,926 MHz), so a request is in the VM's own cores (`--cpu-unit mhz1000` takes
1,000 MHz as a core instead, as earlier notes did); memory bytes = `memory_usage_kb` x 1024. The current spec (the
VPA keeps its request:limit ratio; our `why` states the saving) is the VM as provisioned at the end of the history:
request = limit = its cores and memory. No randomness (`--seed` only draws the scale factors of the timing copies).

Methods, all from the same history: ours (`aiops.optimize.rightsize`, defaults except `--set`, e.g.
`--set 'horizon="P30D"'`: by default the backtest measures 7 days ahead though the month is 30; the CPU risk target
is the dial, swept over `--targets`; `--target` is the headline point), KRR simple at its published defaults (p95 of
14 days, memory = limit = 14-day peak + 15 %), the VPA recommender's target (p90 + 15 %, decaying histograms over the
whole history), Kubecost (peak over `--kubecost-window`, default 14 days, / 0.7; requests only).
Prices: OpenCost's default sheet, $0.031611 per core-hour and $0.004237 per GiB-hour (`--cpu-price`,
`--memory-price`). Reported per method: requested cores and GiB and their price per 730-hour month; the OpenCost
cost of the test period (max(request, usage) x price per interval; CPU and memory parts); CPU risk (share of
intervals with usage above the request, per workload: mean and p95 over workloads); unmet CPU core-hours (usage
above the request); memory risk (share of intervals above the memory request: mean and p95); the OOM proxy (workloads
whose usage ever exceeds their memory limit; "-" when the method sets no limit); the seconds to recommend.
Goals (issue 7), checked and printed: at the headline target, a cost <= KRR's with realised mean CPU risk within one
point of the target, <= 1/4 of KRR's OOM count and fewer unmet core-hours; the dial below every baseline's point
(some swept point no costlier and no riskier, on the mean and on the p95). Appends a JSON line to
benchmarks/out/rightsize.json and draws benchmarks/out/rightsize_dial.png (cost against realised CPU risk; with
`--tag T`, rightsize_dial_T.png).
`--timing-series N` also times the recommendation on N series (copies of the VMs, scaled by seeded log-normal
factors) over the last `--timing-days` of the history.

The memory rule is chosen causally, inside the history (`--memory-quantiles`, default 1, 0.9999, 0.999, 0.99; `--no-
choose-memory` keeps the config's): each is recommended from the history but its last `--validation-days` (30) and
judged on those days, and the rule stated here picks it: the cheapest whose mean memory risk is at most 1 % and
whose OOM proxy is at most a quarter of KRR's on the same validation days (else the costliest, i.e. the peak). The
test period is never looked at for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload_data  # noqa: E402
from _datasets import DEFAULT_DATASETS  # noqa: E402

from aiops.optimize.opencost import GIB, Prices, allocation_cost  # noqa: E402
from aiops.optimize.rightsize import HOURS_PER_MONTH, RightsizeConfig, rightsize  # noqa: E402
from aiops.optimize.rightsize_baselines import kubecost, krr_simple, vpa_target  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
BASELINES = ("KRR simple", "VPA target", "Kubecost")


def load_bitbrains(root: Path, vms: list[int], month: str, cpu_unit: str):
    cols = ("cpu_cores", "cpu_capacity_provisioned_mhz", "cpu_usage_mhz", "memory_capacity_provisioned_kb",
            "memory_usage_kb")
    raw = workload_data.bitbrains(root, vms, columns=cols)
    hist_raw, _ = workload_data.split_month(raw, month)
    ok = (hist_raw["cpu_cores"] > 0) & (hist_raw["cpu_capacity_provisioned_mhz"] > 0)  # 0: the VM was off
    vm_mhz = (hist_raw["cpu_capacity_provisioned_mhz"] / hist_raw["cpu_cores"])[ok].groupby(hist_raw["series"][ok])
    vm_mhz = vm_mhz.median()
    mhz = vm_mhz if cpu_unit == "vm" else pd.Series(1000.0, index=vm_mhz.index)
    # rounded to a micro-core: VMs sit at one value for hours (idle at 10 m, or saturated), and float noise in the
    # divisor would otherwise decide whether a request equal to that value (a 10 m floor, KRR's p95) is below it
    cpu = (raw["cpu_usage_mhz"] / raw["series"].map(mhz)).round(6)
    usage = pd.DataFrame({"series": raw["series"], "ts": raw["ts"], "cpu": cpu,
                          "memory": raw["memory_usage_kb"] * 1024.0})
    hist, test = workload_data.split_month(usage, month)
    last = hist_raw[ok & (hist_raw["memory_capacity_provisioned_kb"] > 0)].groupby("series").last()
    cores = last["cpu_cores"] * vm_mhz.reindex(last.index) / mhz.reindex(last.index)
    mem = last["memory_capacity_provisioned_kb"] * 1024.0
    current = pd.DataFrame({"series": last.index, "cpu_request": cores.to_numpy(), "cpu_limit": cores.to_numpy(),
                            "memory_request": mem.to_numpy(), "memory_limit": mem.to_numpy()})
    return hist, test, current, {"vm_mhz_per_core": vm_mhz.round(1).value_counts().to_dict()}


def load_csv(path: Path, split: str):
    usage = pd.read_csv(path)
    missing = [c for c in ("series", "ts", "cpu", "memory") if c not in usage.columns]
    if missing:
        raise SystemExit(f"--csv {path}: missing column(s) {missing}; expected series, ts (UTC), cpu (cores), "
                         f"memory (bytes); it has {list(usage.columns)}")
    usage["ts"] = pd.to_datetime(usage["ts"], utc=True)
    at = pd.Timestamp(split)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    hist, test = usage[usage["ts"] < at], usage[usage["ts"] >= at]
    if hist.empty or test.empty:
        raise SystemExit(f"--split {split}: the history or the test part is empty (ts from {usage['ts'].min()} "
                         f"to {usage['ts'].max()})")
    return hist.reset_index(drop=True), test.reset_index(drop=True), None, {}


def evaluate(rec: pd.DataFrame, test: pd.DataFrame, prices: Prices, step: pd.Timedelta) -> dict:
    """The issue's metrics of one method's recommendations on the test period."""
    # series new in the test period have no recommendation: no request (cost = usage, every interval above it)
    r = rec.set_index("series").reindex(pd.Index(sorted(test["series"].unique()), name="series"))
    code = pd.Categorical(test["series"], categories=r.index).codes
    n, hours = len(r), step / pd.Timedelta(hours=1)
    creq = np.nan_to_num(r["cpu_request"].to_numpy(float))[code]  # no request: Kubernetes schedules 0
    mreq = np.nan_to_num(r["memory_request"].to_numpy(float))[code]
    mlim = r["memory_limit"].to_numpy(float)[code]
    cpu, mem = test["cpu"].to_numpy(float), test["memory"].to_numpy(float)

    def share(values, above, ok):
        cnt = np.bincount(code[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(code[ok], weights=(values[ok] > above[ok]).astype(float), minlength=n) / cnt

    c_ok, m_ok = np.isfinite(cpu), np.isfinite(mem)
    cpu_risk, mem_risk = share(cpu, creq, c_ok), share(mem, mreq, m_ok)
    unmet = float(np.sum(np.clip(cpu[c_ok] - creq[c_ok], 0, None)) * hours)
    limited = np.isfinite(r["memory_limit"].to_numpy(float))
    over = np.bincount(code[m_ok], weights=(mem[m_ok] > np.where(np.isnan(mlim), np.inf, mlim)[m_ok]), minlength=n)
    cost = allocation_cost(r.reset_index()[["series", "cpu_request", "memory_request"]], test, step=step,
                           **prices.model_dump())
    cores, gib = float(r["cpu_request"].sum()), float(r["memory_request"].sum() / GIB)
    return {
        "requested_cores": round(cores, 2), "requested_gib": round(gib, 1),
        "request_price_per_month": round((cores * prices.cpu_price_per_core_hour + gib
                                          * prices.memory_price_per_gib_hour) * HOURS_PER_MONTH, 2),
        "cost": round(float(cost["total_cost"].sum()), 2), "cpu_cost": round(float(cost["cpu_cost"].sum()), 2),
        "memory_cost": round(float(cost["memory_cost"].sum()), 2),
        "cpu_risk_mean": float(np.nanmean(cpu_risk)), "cpu_risk_p95": float(np.nanquantile(cpu_risk, 0.95)),
        "unmet_core_hours": round(unmet, 1),
        "memory_risk_mean": float(np.nanmean(mem_risk)), "memory_risk_p95": float(np.nanquantile(mem_risk, 0.95)),
        "oom_workloads": int(np.sum(over > 0)) if limited.any() else None,
        "undefined": int(r["cpu_request"].isna().sum()),
    }


def choose_memory(hist: pd.DataFrame, current: pd.DataFrame | None, base: dict, a, prices: Prices) -> dict:
    """The memory quantile the stated rule picks on the history's last `validation_days` (see the docstring)."""
    cut = hist["ts"].max() - pd.Timedelta(days=a.validation_days)
    early, late = hist[hist["ts"] <= cut], hist[hist["ts"] > cut]
    step = pd.Series(early.groupby("series")["ts"].diff().dropna()).median()
    krr = evaluate(krr_simple(early), late, prices, step)
    rows = []
    for q in sorted({float(x) for x in a.memory_quantiles.split(",")}, reverse=True):
        cfg = RightsizeConfig(**{**base, "memory_quantile": q, "cpu_risk": {"default": a.target}})
        r = evaluate(rightsize(early, cfg, current=current).recommendations, late, prices, step)
        rows.append({"memory_quantile": q, "memory_cost": r["memory_cost"], "memory_risk_mean": r["memory_risk_mean"],
                     "oom_workloads": r["oom_workloads"]})
    ok = [r for r in rows if r["memory_risk_mean"] <= 0.01 and (r["oom_workloads"] or 0) <= (krr["oom_workloads"] or 0) / 4]
    pick = min(ok, key=lambda r: r["memory_cost"]) if ok else max(rows, key=lambda r: r["memory_cost"])
    print(f"memory rule chosen on {late['ts'].min():%Y-%m-%d}..{late['ts'].max():%Y-%m-%d} (history only; KRR "
          f"OOM proxy {krr['oom_workloads']}): " + "; ".join(
              f"p{100 * r['memory_quantile']:g} ${r['memory_cost']:,.0f}, risk {_pct(r['memory_risk_mean'], 2)}, "
              f"OOM {r['oom_workloads']}" for r in rows) + f" -> p{100 * pick['memory_quantile']:g}")
    return {"chosen": pick["memory_quantile"], "validation": [str(late["ts"].min()), str(late["ts"].max())],
            "krr_oom": krr["oom_workloads"], "candidates": rows}


def dial_goals(rows: dict, dial: list[dict], headline: dict, target: float) -> dict[str, bool]:
    krr = rows["KRR simple"]
    goals = {
        f"at target {target:.1%}: cost <= KRR's": headline["cost"] <= krr["cost"],
        f"at target {target:.1%}: realised mean CPU risk within 1 point of the target":
            abs(headline["cpu_risk_mean"] - target) <= 0.01,
        f"at target {target:.1%}: OOM count <= 1/4 of KRR's ({krr['oom_workloads']})":
            (headline["oom_workloads"] or 0) <= krr["oom_workloads"] / 4,
        f"at target {target:.1%}: fewer unmet CPU core-hours than KRR": headline["unmet_core_hours"]
            < krr["unmet_core_hours"],
        f"at target {target:.1%}: p95 of CPU risk below KRR's": headline["cpu_risk_p95"] < krr["cpu_risk_p95"],
    }
    for b in BASELINES:
        for stat in ("mean", "p95"):
            key = f"cpu_risk_{stat}"
            goals[f"dial below {b} on the {stat} of CPU risk"] = any(
                d["cost"] <= rows[b]["cost"] and d[key] <= rows[b][key] for d in dial)
        goals[f"one dial point at once cheaper and safer than {b} on mean and p95"] = any(
            d["cost"] <= rows[b]["cost"] and d["cpu_risk_mean"] <= rows[b]["cpu_risk_mean"]
            and d["cpu_risk_p95"] <= rows[b]["cpu_risk_p95"] for d in dial)
    return goals


def plot(rows: dict, dial: list[dict], title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, stat in zip(axes, ("mean", "p95")):
        key = f"cpu_risk_{stat}"
        ax.plot([100 * d[key] for d in dial], [d["cost"] for d in dial], "o-", color="C0", label="ours (the dial)")
        for d in dial:
            ax.annotate(f"{100 * d['target']:g}%", (100 * d[key], d["cost"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color="C0")
        for k, b in enumerate(BASELINES):
            ax.scatter([100 * rows[b][key]], [rows[b]["cost"]], s=70, marker="sD^"[k], color=f"C{k + 1}", zorder=3,
                       label=f"{b}: {100 * rows[b][key]:.1f} %, ${rows[b]['cost']:,.0f}")
        ax.set_xlabel(f"realised CPU risk, {stat} over workloads (% of intervals above the request)")
        ax.set_ylabel("OpenCost cost of the test period ($)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Right-sizing risk dial (labels: target set), {title}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def timing(hist: pd.DataFrame, n: int, days: int, config: RightsizeConfig, seed: int) -> dict:
    """Seconds to recommend for n series: copies of the history's series over its last `days`, scaled by seeded
    log-normal factors (sigma 0.5) so the copies differ."""
    h = hist[hist["ts"] > hist["ts"].max() - pd.Timedelta(days=days)]
    names = h["series"].unique()
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(int(np.ceil(n / len(names)))):
        f = h.copy()
        scale = rng.lognormal(0, 0.5, len(names))
        m = f["series"].map(dict(zip(names, scale)))
        f["cpu"], f["memory"] = f["cpu"] * m, f["memory"] * m
        f["series"] = f["series"] + f"_c{k:02d}"
        parts.append(f)
    big = pd.concat(parts, ignore_index=True)
    keep = big["series"].unique()[:n]
    big = big[big["series"].isin(keep)]
    t0 = time.perf_counter()
    res = rightsize(big, config)
    return {"series": int(len(keep)), "days": days, "rows": int(len(big)),
            "seconds": round(time.perf_counter() - t0, 2), "solve_seconds": round(res.solve_seconds, 2),
            "status": res.status}


def _vms(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %".replace(".00 %", " %")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", "--datasets", type=Path, default=DEFAULT_DATASETS)
    p.add_argument("--vms", default="1-100", help="Bitbrains VMs, e.g. 1-100 or 1-10,42")
    p.add_argument("--test-month", default="2013-09", help="Bitbrains: the month measured (history = before it)")
    p.add_argument("--cpu-unit", choices=("vm", "mhz1000"), default="vm",
                   help="Bitbrains: a core is the VM's MHz per core (vm) or 1,000 MHz")
    p.add_argument("--csv", type=Path, help="usage CSV(.gz): series, ts, cpu (cores), memory (bytes)")
    p.add_argument("--split", help="with --csv: first timestamp of the test period")
    p.add_argument("--targets", default="0.0005,0.001,0.002,0.005,0.01,0.02,0.03,0.05,0.08,0.1,0.15",
                   help="CPU risk targets swept (the dial)")
    p.add_argument("--target", type=float, default=0.05, help="the headline target the goals are checked at")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a RightsizeConfig field, e.g. --set memory_quantile=1.0 (repeatable)")
    p.add_argument("--kubecost-window", default="14D")
    p.add_argument("--cpu-price", type=float, default=Prices().cpu_price_per_core_hour)
    p.add_argument("--memory-price", type=float, default=Prices().memory_price_per_gib_hour)
    p.add_argument("--timing-series", type=int, default=0, help="also time N series (0: skip)")
    p.add_argument("--timing-days", type=int, default=28)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-quantiles", default="1,0.9999,0.999,0.99",
                   help="memory request quantiles the validation inside the history chooses from")
    p.add_argument("--no-choose-memory", action="store_true", help="keep the config's memory_quantile")
    p.add_argument("--validation-days", type=int, default=30)
    p.add_argument("--tag", default="", help="suffix of the plot's name (rightsize_dial_<tag>.png), for variants")
    a = p.parse_args(argv)
    t_all = time.perf_counter()
    prices = Prices(cpu_price_per_core_hour=a.cpu_price, memory_price_per_gib_hour=a.memory_price)
    if a.csv:
        if not a.split:
            raise SystemExit("--csv needs --split (the first timestamp of the test period)")
        hist, test, current, info = load_csv(a.csv, a.split)
        name = a.csv.name
    else:
        hist, test, current, info = load_bitbrains(a.data_root, _vms(a.vms), a.test_month, a.cpu_unit)
        name = f"Bitbrains VMs {a.vms}, test {a.test_month}, cores: {a.cpu_unit}"
    step = pd.Series(hist.groupby("series")["ts"].diff().dropna()).median()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    base = RightsizeConfig(prices=prices, **overrides).model_dump()
    chosen_memory = None
    if not a.no_choose_memory and "memory_quantile" not in overrides:
        chosen_memory = choose_memory(hist, current, base, a, prices)
        base["memory_quantile"] = chosen_memory["chosen"]
    print(f"{name}: {hist['series'].nunique()} series, history {hist['ts'].min():%Y-%m-%d} to "
          f"{hist['ts'].max():%Y-%m-%d %H:%M}, test {test['ts'].min():%Y-%m-%d} to {test['ts'].max():%Y-%m-%d %H:%M}, "
          f"step {step}; prices ${prices.cpu_price_per_core_hour}/core-h, ${prices.memory_price_per_gib_hour}/GiB-h")
    recs, seconds = {}, {}
    for label, fn in (("KRR simple", lambda: krr_simple(hist)),
                      ("VPA target", lambda: vpa_target(hist, current=current)),
                      ("Kubecost", lambda: kubecost(hist, window=a.kubecost_window))):
        t0 = time.perf_counter()
        recs[label] = fn()
        seconds[label] = round(time.perf_counter() - t0, 2)
    rows = {b: {**evaluate(recs[b], test, prices, step), "seconds": seconds[b]} for b in BASELINES}
    targets = sorted({float(t) for t in a.targets.split(",")} | {a.target})
    dial, solves = [], {}
    for t in targets:
        cfg = RightsizeConfig(**{**base, "cpu_risk": {"default": t}})
        t0 = time.perf_counter()
        res = rightsize(hist, cfg, current=current)
        secs = round(time.perf_counter() - t0, 2)
        dial.append({"target": t, **evaluate(res.recommendations, test, prices, step), "seconds": secs,
                     "status": res.status, "gap": res.gap})
        if t == a.target:
            headline_rec = res.recommendations
    headline = next(d for d in dial if d["target"] == a.target)
    rows[f"ours, target {100 * a.target:g} %"] = headline
    print("\n| method | requested cores | requested GiB | request price $/month | OpenCost cost $ (CPU + memory) "
          "| CPU risk mean | CPU risk p95 | unmet CPU core-h | memory risk mean | memory risk p95 | OOM proxy | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, r in rows.items():
        oom = "-" if r["oom_workloads"] is None else r["oom_workloads"]
        print(f"| {k} | {r['requested_cores']:,.1f} | {r['requested_gib']:,.0f} | {r['request_price_per_month']:,.0f} "
              f"| {r['cost']:,.0f} ({r['cpu_cost']:,.0f} + {r['memory_cost']:,.0f}) | {_pct(r['cpu_risk_mean'])} "
              f"| {_pct(r['cpu_risk_p95'])} | {r['unmet_core_hours']:,.0f} | {_pct(r['memory_risk_mean'])} "
              f"| {_pct(r['memory_risk_p95'])} | {oom} | {r['seconds']:.1f} |")
    print("\nThe dial (ours, one run per CPU risk target):\n")
    print("| target | OpenCost cost $ | CPU cost $ | CPU risk mean | CPU risk p95 | unmet CPU core-h "
          "| memory risk mean | OOM proxy | cost <= KRR and within 1 point |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    krr = rows["KRR simple"]
    for d in dial:
        ok = d["cost"] <= krr["cost"] and abs(d["cpu_risk_mean"] - d["target"]) <= 0.01
        print(f"| {_pct(d['target'], 2)} | {d['cost']:,.0f} | {d['cpu_cost']:,.0f} | {_pct(d['cpu_risk_mean'])} "
              f"| {_pct(d['cpu_risk_p95'])} | {d['unmet_core_hours']:,.0f} | {_pct(d['memory_risk_mean'])} "
              f"| {d['oom_workloads']} | {'yes' if ok else 'no'} |")
    goals = dial_goals(rows, dial, headline, a.target)
    print()
    for g, ok in goals.items():
        print(f"goal {'met' if ok else 'NOT met'}: {g}")
    OUT.mkdir(exist_ok=True)
    png = OUT / f"rightsize_dial{'_' + a.tag if a.tag else ''}.png"
    plot(rows, dial, name, png)
    print(f"\nplot: {png}")
    extra = {}
    if a.timing_series:
        extra = timing(hist, a.timing_series, a.timing_days, RightsizeConfig(**base), a.seed)
        print(f"timing: {extra}")
    rec = {"benchmark": "rightsize", "data": name, "tag": a.tag, "args": {k: str(v) for k, v in vars(a).items()},
           "config": RightsizeConfig(**base).model_dump(mode="json"), "info": info, "step": str(step),
           "memory_choice": chosen_memory,
           "methods": rows, "dial": dial, "goals": goals, "timing": extra,
           "headline_why_example": str(headline_rec["why"].iloc[0]),
           "seconds": round(time.perf_counter() - t_all, 1), "load_avg_1m": round(os.getloadavg()[0], 2),
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(OUT / "rightsize.json", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"{rec['seconds']:.0f} s in all; appended to {OUT / 'rightsize.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
