"""Scaling policies on real traces: pre-scaling and GA-tuned HPAs against static provisioning, the HPA and an oracle.

    python benchmarks/scaling.py --data nasa                  # NASA-HTTP requests
    python benchmarks/scaling.py --data bitbrains --vms 3     # Bitbrains VM CPU as demand
    python benchmarks/scaling.py --csv FILE --time-column unix_s --value-column requests --split 2024-05-01

Data (../shared/datasets, verified against MANIFEST.sha256; `--csv` takes any trace of counts per row):
- NASA-HTTP: requests per second, aggregated to 1-minute mean requests/s. Fit and tune on July 1995 (the
  forecaster on all of it, the tuners on its last 14 days), evaluate on August from the 4th (after the outage) to
  the end of the log. The outage (1-3 August) is NaN to the forecaster, never a fit or test period.
- Bitbrains Rnd: each VM's CPU MHz (5-minute samples, each held for its 5 minutes) taken as demand. VMs: the
  `--vms` with the highest mean CPU over July-August among VMs 1-100 (chosen on training data only). Fit and tune
  on July-August (tuners: the last 14 days of August), evaluate on September.
Each trace is scaled so that its training p99.5 needs `--peak-pods` pods (a unit choice, from training data).

Simulator (aiops.optimize.whatif.WorkloadModel, printed with the results): each pod serves requests with M/M/1
latency on the CPU it can use (limit 1 core, 10 ms CPU per request, 20 mCPU idle, 50 ms service time); SLO:
p99 <= 500 ms, so one pod serves 52.9 req/s within the SLO; a new pod is Ready 60 s after it starts, a new node
(m5.xlarge, 4 cores) 180 s after the cluster autoscaler asks (it scans every 2 minutes); 1-minute steps; the HPA
syncs every step with the Kubernetes algorithm (tolerance, stabilisation windows, rate policies).

Policies, all on the same replayed test weeks, in one simulator run:
- static peak / static mean: replicas for the training peak / mean demand;
- HPA defaults: minReplicas 1, maxReplicas 2x the training peak's pods, 80 % CPU, Kubernetes default behavior;
- HPA GA-tuned: DEAP NSGA-II (aiops.optimize.tuner) over target, min/max, windows, policies and CPU request,
  `--budget` evaluations on the training weeks, chosen by the rule printed (by default the fewest violation
  minutes at no more replica-hours than the defaults; `--rule slo_budget`: the cheapest within the SLO budget);
- HPA random search: the same space, budget, seed and rule;
- pre-scaling: the planner (aiops.optimize.planner) fed by the gbm forecaster (fit once on the training data,
  predicting 1 hour ahead every 5 minutes from the history up to each origin only), with a lead time of one
  planning interval plus pod start-up, node provisioning and the autoscaler's scan, and square-root staffing
  (R + beta x sqrt(R) replicas for the R a forecast needs: per-minute bursts around a 5-minute mean grow like the
  square root of the load); alone, as the default HPA's minReplicas, as the GA-tuned HPA's, and under an HPA whose
  target and scale-down window are chosen with the planner ("tuned with it"). Its quantile, headroom and beta (and
  in that last mode the HPA's two settings) are chosen on the last training week (a gbm fit before that week
  forecasting it causally) by the tuners' rule: the fewest violation minutes at no more replica-hours than the
  default HPA;
- oracle: the true demand's pods in place just early enough (the shortest lead with no violation).
Reported: SLO-violation minutes and replica-hours, as ratios to the default HPA and to the oracle; requested
core-hours and node cost; the tuning time and simulator evaluations per second. Seed: `--seed` (GA, random
search, forecaster). Appends a JSON line to benchmarks/out/scaling.json and writes a plot per trace beside it
(scaling_<trace>.png: each policy's violation minutes against its replica-hours, as ratios to the default HPA).
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

from aiops.optimize.backtest import coarse, forecast_origins, oracle_schedule, plan_replay  # noqa: E402
from aiops.optimize.planner import PlannerConfig  # noqa: E402
from aiops.optimize.tuner import SearchSpace, TunerConfig, default_candidate, tune  # noqa: E402
from aiops.optimize.whatif import HPA, HPAWithFloor, Scheduled, Static, WorkloadModel, evaluate  # noqa: E402
from aiops.sim.replay import load_trace  # noqa: E402
from aiops.sim.spec import TraceSpec  # noqa: E402

STEP_S = 60
EVERY = 5  # fine steps per planning interval and per forecast step
OUT = Path(__file__).resolve().parent / "out"


def nasa(root: Path) -> list[tuple[str, pd.Series, pd.Timestamp, pd.Timestamp]]:
    path = workload_data.verify(root, f"workload/nasa_http/{workload_data.NASA_FILE}")
    s = _fine(TraceSpec(path=path, time_column="unix_s", value_column="requests"))
    lo, hi = workload_data.NASA_OUTAGE
    s[(s.index >= lo.tz_convert(None)) & (s.index < hi.tz_convert(None))] = np.nan  # the server was down
    train_end = pd.Timestamp("1995-07-28 17:00")
    test_start = pd.Timestamp("1995-08-04 00:00")
    s = s[s.index >= pd.Timestamp("1995-07-01 05:00")]
    s[(s.index >= train_end) & (s.index < hi.tz_convert(None))] = np.nan  # July's log ends; August's begins
    return [("nasa", s, train_end, test_start)]


def _fine(spec: TraceSpec) -> pd.Series:
    tr = load_trace(spec, STEP_S)
    idx = pd.to_datetime(tr.t0 + np.arange(len(tr)) * STEP_S, unit="s")
    return pd.Series(np.where(tr.filled, np.nan, tr.rps * spec.scale), index=idx)


def bitbrains(root: Path, n: int) -> list[tuple[str, pd.Series, pd.Timestamp, pd.Timestamp]]:
    frame = workload_data.bitbrains(root, columns=("cpu_usage_mhz",))
    frame["ts"] = frame["ts"].dt.tz_convert(None)
    sep = pd.Timestamp("2013-09-01")
    means = frame[frame["ts"] < sep].groupby("series")["cpu_usage_mhz"].mean().sort_values(ascending=False)
    out = []
    for sid in means.index[:n]:
        g = frame[frame["series"] == sid].set_index("ts")["cpu_usage_mhz"]
        g = g.reindex(pd.date_range(g.index.min().ceil("5min"), g.index.max(), freq="5min"))
        fine = g.reindex(pd.date_range(g.index[0], g.index[-1] + pd.Timedelta(minutes=4), freq="1min")).ffill(limit=4)
        out.append((sid, fine, sep, sep))
    return out


def csv(path: Path, a) -> list[tuple[str, pd.Series, pd.Timestamp, pd.Timestamp]]:
    s = _fine(TraceSpec(path=path, time_column=a.time_column, value_column=a.value_column, time_unit=a.time_unit))
    split = pd.Timestamp(a.split) if a.split else s.index[int(len(s) * 2 / 3)].floor("D")
    return [(path.stem, s, split, split)]


def gbm_predict(train: pd.Series, seed: int):
    from models.catalog import create

    m = create("gbm", seed=seed, max_horizon=24)
    frame = pd.DataFrame({"series": "trace", "ts": train.index.tz_localize("UTC"), "value": train.to_numpy()})
    t0 = time.perf_counter()
    m.fit(frame)
    fit_s = time.perf_counter() - t0

    def predict(hist: pd.DataFrame, h: int) -> pd.DataFrame:
        hist = hist.assign(ts=pd.to_datetime(hist["ts"]).dt.tz_localize("UTC"))
        out = m.predict(h, history=hist)
        out["ts"] = out["ts"].dt.tz_convert(None)
        return out

    return predict, fit_s, m.context_steps


def run_trace(name: str, raw: pd.Series, train_end: pd.Timestamp, test_start: pd.Timestamp, a, model: WorkloadModel):
    from tqdm import tqdm

    train_raw = raw[raw.index < train_end]
    scale = a.peak_pods * model.pod_capacity / np.nanpercentile(train_raw.to_numpy(), 99.5)
    s = raw * scale
    # the simulator needs a value at every step: unknown steps hold the last known demand
    fine = s.ffill().bfill()
    train = fine[fine.index < train_end]
    test = fine[fine.index >= test_start]
    if a.test_days:
        test = test[test.index < test_start + pd.Timedelta(days=a.test_days)]
    warm = 1440
    test_idx = fine.index.get_indexer([test.index[0]])[0]
    test_run = fine.iloc[test_idx - warm : test_idx + len(test)]
    need_train = model.replicas_needed(train.to_numpy())
    print(f"\n== {name}: train {train.index[0]} .. {train.index[-1]} ({len(train) / 1440:.1f} d), test "
          f"{test.index[0]} .. {test.index[-1]} ({len(test) / 1440:.1f} d); scale x{scale:.4g}; training peak "
          f"{need_train.max()} pods, mean {need_train.mean():.1f}", flush=True)

    # tuners on the last 14 days of training (+1 day of warm-up)
    tune_d = train.iloc[-(a.tune_days + 1) * 1440 :].to_numpy()
    space = SearchSpace.for_demand(tune_d[warm:], model)
    cfg = TunerConfig(budget=a.budget, population=a.population, seed=a.seed, workers=a.workers,
                      slo_budget=a.slo_budget, rule=a.rule)
    results = {}
    for method in ("nsga2", "random"):
        bar = tqdm(total=a.budget, desc=f"{name} {method}", unit="eval", file=sys.stderr, leave=False)
        r = tune(tune_d, model=model, warmup=warm, cfg=cfg, space=space, method=method,
                 progress=lambda d, t: bar.update(d - bar.n))
        bar.close()
        results[method] = r
        print(f"  {method}: {r.seconds:.0f} s, {r.evaluations_per_s:.1f} evaluations/s "
              f"({a.tune_days} d each), front {len(r.front)} points; chosen: {r.rule}: "
              f"{r.chosen.outcome.violation_minutes:.0f} violation min, {r.chosen.outcome.replica_hours:.0f} "
              f"replica-h on the training weeks (default: {r.default.outcome.violation_minutes:.0f}, "
              f"{r.default.outcome.replica_hours:.0f}); {r.chosen.candidate.as_dict()}", flush=True)

    # pre-scaling: the planner's quantile and headroom chosen on the last training week (gbm fit before it,
    # forecasting it causally), by the tuners' rule; then gbm refit on all the training data for the test weeks
    hist5 = coarse(s, EVERY)
    default = default_candidate(space, model)
    ga = results["nsga2"].chosen.candidate
    hpas = {"hpa": HPA(default.hpa, default.cpu_request), "tuned": HPA(ga.hpa, ga.cpu_request)}
    chosen_cfg, val_table = choose_planner(fine, hist5, train_end, a, model, space, hpas)
    predict, fit_s, context = gbm_predict(hist5[hist5.index < train_end].dropna(), a.seed)
    bar = tqdm(desc=f"{name} forecasts", unit="origin", file=sys.stderr, leave=False)
    t0 = time.perf_counter()
    origins = hist5.index[(hist5.index >= test_run.index[0]) & (hist5.index <= test_run.index[-1])]
    fcs = forecast_origins(hist5, predict=predict, origins=origins, horizon=12, context=context,
                           progress=lambda d, t: (setattr(bar, "total", t), bar.update(d - bar.n)))
    bar.close()
    plan_s = time.perf_counter() - t0
    trained = train_end.tz_localize("UTC").to_pydatetime()
    replays = {mode: plan_replay(test_run, hist5, fcs, capacity=model.pod_capacity, cfg=c, model="gbm",
                                 trained_at=trained, replan_every=a.replan_min) for mode, (c, _, _) in chosen_cfg.items()}
    start_reps = int(model.replicas_needed(np.array([test_run.iloc[0]]))[0])
    for rp in replays.values():
        rp.replicas[rp.replicas < 0] = start_reps
    reactive = {m: float((rp.modes == "reactive").mean()) for m, rp in replays.items()}
    print(f"  gbm fit {fit_s:.0f} s; {len(origins)} forecasts in {plan_s:.0f} s; reactive fall-back at "
          + ", ".join(f"{v:.1%} ({m})" for m, v in reactive.items()) + " of origins", flush=True)

    need = model.replicas_needed(test_run.to_numpy())
    joint = chosen_cfg["joint"][1]
    leads = (4, 6, 8, 10, 15)
    pols = {
        "static peak": Static(int(need_train.max())),
        "static mean": Static(int(np.ceil(need_train.mean()))),
        "HPA defaults": HPA(default.hpa, default.cpu_request),
        "HPA GA-tuned": HPA(results["nsga2"].chosen.candidate.hpa, results["nsga2"].chosen.candidate.cpu_request),
        "HPA random search": HPA(results["random"].chosen.candidate.hpa, results["random"].chosen.candidate.cpu_request),
        "pre-scaling": Scheduled(replays["alone"].replicas),
        "pre-scaling + HPA": HPAWithFloor(default.hpa, replays["hpa"].replicas, default.cpu_request),
        "pre-scaling + GA-tuned HPA": HPAWithFloor(ga.hpa, replays["tuned"].replicas, ga.cpu_request),
        "pre-scaling + HPA tuned with it": HPAWithFloor(joint.hpa, replays["joint"].replicas, joint.cpu_request),
        **{f"oracle lead {k}": Scheduled(oracle_schedule(need, k)) for k in leads},
    }
    t0 = time.perf_counter()
    outs = dict(zip(pols, evaluate(test_run.to_numpy(), list(pols.values()), model=model, warmup=warm)))
    eval_s = time.perf_counter() - t0
    oracles = {k: v for k, v in outs.items() if k.startswith("oracle")}
    best = min(oracles, key=lambda k: (oracles[k].violation_minutes, oracles[k].replica_hours))
    rows = {k: v for k, v in outs.items() if not k.startswith("oracle")}
    rows[f"oracle ({best.split()[-1]} min lead)"] = oracles[best]
    base, orc = rows["HPA defaults"], oracles[best]
    table = []
    for k, o in rows.items():
        table.append({"policy": k, "violation_minutes": o.violation_minutes, "replica_hours": round(o.replica_hours, 1),
                      "core_hours": round(o.core_hours, 1), "node_cost_usd": round(o.node_cost, 2),
                      "violations_vs_hpa": _ratio(o.violation_minutes, base.violation_minutes),
                      "replica_hours_vs_hpa": _ratio(o.replica_hours, base.replica_hours),
                      "replica_hours_vs_oracle": _ratio(o.replica_hours, orc.replica_hours)})
    print(f"  test weeks ({len(test) / 1440:.1f} d, {eval_s:.0f} s for {len(pols)} policies):")
    print(f"  {'policy':<28}{'viol. min':>10}{'replica-h':>11}{'core-h':>9}{'nodes $':>9}{'viol/HPA':>10}"
          f"{'rep-h/HPA':>11}{'rep-h/oracle':>13}")
    for r in table:
        print(f"  {r['policy']:<28}{r['violation_minutes']:>10.0f}{r['replica_hours']:>11.0f}{r['core_hours']:>9.0f}"
              f"{r['node_cost_usd']:>9.2f}{_fmt(r['violations_vs_hpa']):>10}{_fmt(r['replica_hours_vs_hpa']):>11}"
              f"{_fmt(r['replica_hours_vs_oracle']):>13}")
    goals = _goals(rows)
    for g, ok in goals.items():
        print(f"  goal {'met' if ok else 'NOT met'}: {g}")
    OUT.mkdir(exist_ok=True)
    png = OUT / f"scaling_{name}.png"
    plot(table, f"{name}: held-out {len(test) / 1440:.1f} days").savefig(png, dpi=110)
    print(f"  plot: {png}")
    return {"trace": name, "scale": scale, "train_end": str(train_end), "test_start": str(test.index[0]),
            "test_days": len(test) / 1440, "table": table, "goals": goals,
            "tuning": {m: {"seconds": round(r.seconds, 1), "evaluations": len(r.evaluated),
                           "evaluations_per_s": round(r.evaluations_per_s, 2), "rule": r.rule,
                           "chosen": r.chosen.candidate.as_dict(), "train": r.chosen.outcome.as_dict(),
                           "default_train": r.default.outcome.as_dict(), "front": len(r.front)}
                       for m, r in results.items()},
            "prescale": {"gbm_fit_s": round(fit_s, 1), "forecasts": len(origins), "forecast_s": round(plan_s, 1),
                         "reactive_share": reactive,
                         "planner": {m: {**c.model_dump(mode="json"), "hpa": lbl} for m, (c, _, lbl) in chosen_cfg.items()},
                         "validation": val_table},
            "oracle_lead_min": int(best.split()[-1])}


def planner_config(a, space: SearchSpace, quantile: str, headroom: float, burst: float) -> PlannerConfig:
    return PlannerConfig(quantile=quantile, headroom=headroom, burst=burst, lead=pd.Timedelta(minutes=a.lead_min),
                         scale_in_hold=pd.Timedelta(minutes=a.hold_min), hold_statistic=a.hold,
                         min_replicas=1, max_replicas=space.max_replicas, max_model_age=pd.Timedelta(days=365))


def hpa_variants(a, h: HPA) -> dict[str, HPA]:
    """The HPA under the planner's floor, with the target and scale-down window tried for the joint mode."""
    out = {}
    for tgt in (float(x) for x in a.floor_targets.split(",")):
        for win in (int(x) for x in a.floor_down_windows.split(",")):
            down = h.hpa.scale_down.model_copy(update={"stabilization_window_s": win})
            out[f"target {tgt:g}, scale-down window {win} s"] = HPA(
                h.hpa.model_copy(update={"target_cpu_utilization": tgt, "scale_down": down}), h.cpu_request)
    return out


def choose_planner(fine: pd.Series, hist5: pd.Series, train_end: pd.Timestamp, a, model: WorkloadModel,
                   space: SearchSpace, hpas: dict[str, HPA]
                   ) -> tuple[dict[str, tuple[PlannerConfig, HPA | None, str]], list[dict]]:
    """Per mode, the planner setting (and for "joint" the HPA under it) with the fewest violation minutes at no more
    replica-hours than the default HPA (`hpas["hpa"]`) on the validation week (the last training week, forecast by
    a gbm fit before it); the cheapest when none is that cheap. Modes: "alone", one per HPA of `hpas` (the planner
    as that HPA's minReplicas), and "joint" (the default HPA's target and scale-down window chosen with it)."""
    val_start = train_end - pd.Timedelta(days=7)
    predict, _, context = gbm_predict(hist5[hist5.index < val_start].dropna(), a.seed)
    run = fine[(fine.index >= val_start - pd.Timedelta(days=1)) & (fine.index < train_end)]
    origins = hist5.index[(hist5.index >= run.index[0]) & (hist5.index <= run.index[-1])]
    fcs = forecast_origins(hist5, predict=predict, origins=origins, horizon=12, context=context)
    grid = [(q, h, b) for q in a.quantiles.split(",") for h in (float(x) for x in a.headrooms.split(","))
            for b in (float(x) for x in a.bursts.split(","))]
    trained = val_start.tz_localize("UTC").to_pydatetime()
    reps = {}
    for g in grid:
        rp = plan_replay(run, hist5, fcs, capacity=model.pod_capacity, cfg=planner_config(a, space, *g),
                         model="gbm", trained_at=trained, replan_every=a.replan_min)
        rp.replicas[rp.replicas < 0] = int(model.replicas_needed(np.array([run.iloc[0]]))[0])
        reps[g] = rp.replicas
    modes: dict[str, dict[str, HPA | None]] = {"alone": {"": None}, **{m: {"": h} for m, h in hpas.items()},
                                               "joint": hpa_variants(a, hpas["hpa"])}
    pols, keys = [hpas["hpa"]], [None]
    for mode, under in modes.items():
        for label, h in under.items():
            for g, r in reps.items():
                pols.append(Scheduled(r) if h is None else HPAWithFloor(h.hpa, r, h.cpu_request))
                keys.append((mode, label, g))
    outs = evaluate(run.to_numpy(), pols, model=model, warmup=1440)
    base = outs[0]
    table, chosen = [], {}
    for mode, under in modes.items():
        rows = [{"mode": mode, "hpa": k[1], "quantile": k[2][0], "headroom": k[2][1], "burst": k[2][2], **o.as_dict()}
                for k, o in zip(keys[1:], outs[1:]) if k[0] == mode]
        table += rows
        ok = [r for r in rows if r["replica_hours"] <= base.replica_hours]
        best = (min(ok, key=lambda r: (r["violation_minutes"], r["replica_hours"])) if ok
                else min(rows, key=lambda r: r["replica_hours"]))
        chosen[mode] = (planner_config(a, space, best["quantile"], best["headroom"], best["burst"]),
                        under[best["hpa"]], best["hpa"])
        print(f"  planner ({mode}{': ' + best['hpa'] if best['hpa'] else ''}) on the validation week: "
              f"{best['quantile']} + {best['headroom']:.0%} headroom + {best['burst']:g} sqrt(R) burst: "
              f"{best['violation_minutes']:.0f} violation min, {best['replica_hours']:.0f} replica-h (default HPA "
              f"{base.violation_minutes:.0f}, {base.replica_hours:.0f})", flush=True)
    table.append({"mode": "HPA defaults", **base.as_dict()})
    return chosen, table


def plot(table: list[dict], title: str):
    """Each policy's SLO-violation minutes against its replica-hours, both as ratios to the default HPA, with the
    goal's box (at most half the violations at no more replica-hours) shaded; policies far off (static provisioning)
    are listed in the title instead."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    rows = [r for r in table if r["violations_vs_hpa"] is not None]
    shown = [r for r in rows if r["violations_vs_hpa"] <= 2.0 and r["replica_hours_vs_hpa"] <= 2.0]
    off = [r for r in rows if r not in shown]
    ax.fill_between([0, 1.0], 0, 0.5, color="tab:green", alpha=0.12, label="goal: <= 1/2 the violations at <= the cost")
    markers = "o^vsDP*Xhd<>p8"
    for k, r in enumerate(shown):
        x, y = r["replica_hours_vs_hpa"], r["violations_vs_hpa"]
        pre = r["policy"].startswith("pre-scaling")
        ax.scatter([x], [y], s=110 if pre else 55, marker=markers[k % len(markers)], zorder=3,
                   color=f"C{k % 10}", edgecolor="black" if pre else "none",
                   label=f"{r['policy']}: {y:.2f} / {x:.2f}")
    ax.axhline(1.0, color="0.8", lw=0.8)
    ax.axvline(1.0, color="0.8", lw=0.8)
    xs = [r["replica_hours_vs_hpa"] for r in shown]
    ax.set_xlim(min(xs + [1.0]) - 0.03, max(xs + [1.0]) + 0.03)
    ax.set_ylim(0, max([r["violations_vs_hpa"] for r in shown] + [1.0]) * 1.08)
    ax.set_xlabel("replica-hours / default HPA's")
    ax.set_ylabel("SLO-violation minutes / default HPA's")
    extra = "\noff the chart: " + ", ".join(f"{r['policy']} ({r['violations_vs_hpa']:.2f} / "
                                            f"{r['replica_hours_vs_hpa']:.2f})" for r in off) if off else ""
    ax.set_title(f"Scaling policies, {title}{extra}", fontsize=9)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="violations / replica-h")
    return fig


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else round(a / b, 3)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _dominates(a, b) -> bool:
    """No worse on both objectives and better on at least one (equal settings do not dominate)."""
    no_worse = a.violation_minutes <= b.violation_minutes and a.replica_hours <= b.replica_hours
    return no_worse and (a.violation_minutes < b.violation_minutes or a.replica_hours < b.replica_hours)


def _goals(rows: dict) -> dict[str, bool]:
    h, p, ph = rows["HPA defaults"], rows["pre-scaling"], rows["pre-scaling + HPA"]
    pt, pj = rows["pre-scaling + GA-tuned HPA"], rows["pre-scaling + HPA tuned with it"]
    ga, rnd, peak = rows["HPA GA-tuned"], rows["HPA random search"], rows["static peak"]
    best = min((p, ph, pt, pj), key=lambda o: (o.violation_minutes, o.replica_hours))
    return {
        "pre-scaling alone <= 1/2 of the default HPA's violation minutes at <= its replica-hours":
            p.violation_minutes <= 0.5 * h.violation_minutes and p.replica_hours <= h.replica_hours,
        "pre-scaling on the default HPA <= 1/2 of its violation minutes at <= its replica-hours":
            ph.violation_minutes <= 0.5 * h.violation_minutes and ph.replica_hours <= h.replica_hours,
        "pre-scaling on the HPA tuned with it <= 1/2 of the default HPA's violation minutes at <= its replica-hours":
            pj.violation_minutes <= 0.5 * h.violation_minutes and pj.replica_hours <= h.replica_hours,
        "pre-scaling on the GA-tuned HPA <= 1/2 of the default HPA's violation minutes at <= its replica-hours":
            pt.violation_minutes <= 0.5 * h.violation_minutes and pt.replica_hours <= h.replica_hours,
        "pre-scaling <= 1/2 the replica-hours of static peak": best.replica_hours <= 0.5 * peak.replica_hours,
        "GA-tuned HPA dominates the default HPA": _dominates(ga, h),
        "GA-tuned HPA dominates random search": _dominates(ga, rnd),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("nasa", "bitbrains"), default="nasa")
    p.add_argument("--csv", type=Path, help="any trace CSV(.gz) of counts per row instead of --data")
    p.add_argument("--time-column", default="unix_s")
    p.add_argument("--value-column", default="requests")
    p.add_argument("--time-unit", choices=("s", "ms"), default="s")
    p.add_argument("--split", help="with --csv: first test day (default: two thirds in)")
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    p.add_argument("--vms", type=int, default=3, help="Bitbrains: how many VMs (highest training mean CPU)")
    p.add_argument("--peak-pods", type=int, default=20)
    p.add_argument("--budget", type=int, default=400, help="simulator evaluations per tuner")
    p.add_argument("--population", type=int, default=40)
    p.add_argument("--tune-days", type=int, default=14)
    p.add_argument("--test-days", type=float, default=None, help="cap the test period (days)")
    p.add_argument("--rule", choices=("within_cost", "slo_budget"), default="within_cost",
                   help="how the tuners pick their point (aiops.optimize.tuner.choose)")
    p.add_argument("--slo-budget", type=float, default=0.001, help="share of minutes the chosen point may violate")
    p.add_argument("--quantiles", default="p50,p90", help="planner quantiles tried on the validation week")
    p.add_argument("--headrooms", default="0", help="planner headrooms tried on the validation week")
    p.add_argument("--bursts", default="0,1.5,1.6,1.7,1.8,1.9,2",
                   help="planner square-root-staffing betas tried on the validation week")
    p.add_argument("--hold", choices=("max", "mean"), default="mean",
                   help="scale-in hold on the observed demand's peak or its level (staffed like the forecast)")
    p.add_argument("--hold-min", type=int, default=30, help="scale-in hold window (minutes)")
    p.add_argument("--floor-targets", default="0.8,0.9,1.0,1.1",
                   help="HPA targets tried under the planner's floor (the joint mode)")
    p.add_argument("--floor-down-windows", default="300,60",
                   help="HPA scale-down stabilisation windows (s) tried under the planner's floor (the joint mode)")
    p.add_argument("--lead-min", type=int, default=11, help="planner lead: replanning interval + pod start-up + "
                   "node provisioning + the autoscaler's scan (5 + 1 + 3 + 2 minutes)")
    p.add_argument("--replan-min", type=int, default=None, help="re-plan every N minutes between the 5-minute "
                   "forecasts (then --lead-min N + 6)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    model = WorkloadModel()
    print(f"simulator: {model.model_dump()}; pod capacity within the SLO {model.pod_capacity:.1f} req/s")
    if a.csv:
        traces = csv(a.csv, a)
    elif a.data == "nasa":
        traces = nasa(a.datasets)
    else:
        traces = bitbrains(a.datasets, a.vms)
    t0 = time.perf_counter()
    results = [run_trace(*t, a, model) for t in traces]
    OUT.mkdir(exist_ok=True)
    rec = {"benchmark": "scaling", "data": str(a.csv) if a.csv else a.data, "args": {k: str(v) for k, v in vars(a).items()},
           "model": model.model_dump(), "pod_capacity": model.pod_capacity, "results": results,
           "seconds": round(time.perf_counter() - t0, 1), "load_avg_1m": round(os.getloadavg()[0], 2),
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(OUT / "scaling.json", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"\n{rec['seconds']:.0f} s in all; appended to {OUT / 'scaling.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
