"""Training and scoring time per 1,000 series for every catalogued model, on this machine.

    .venv/bin/python benchmarks/model_timing.py                      # every model, 1,000 series, 7 days, seed 0
    .venv/bin/python benchmarks/model_timing.py --models arima,prophet --series 200

Data: the built-in simulator (aiops.sim), as the demo produces it: a cluster of ceil(N / 2) workloads
(`SimSettings(workloads, namespaces=ceil(workloads / 25), seed=--seed)`, incidents and scrape glitches on)
simulated at 60-second steps for `--days` + 1 days from 2024-01-01, then `request_rate` and `cpu_usage` of each
workload (the demo's two forecasting tasks) averaged into the 5-minute grid the models see
(TrainSettings.step_seconds; a block mean, what models.panel.regularize does on this gap-free grid). That gives N
univariate series `sim/<namespace>/<workload>/<container>:<metric>` of 288 points a day. The first `--days` days
(2,016 points per series at 7 days) are the training history; the day after is the new data.

Method, per model, each with the config the demo trains (aiops.settings.TrainSettings.model_configs; catalog
defaults otherwise):
  1. warm-up: import the model's module, then fit and predict/score on 2 series. That loads the heavy libraries
     (TensorFlow, Prophet, LightGBM, statsforecast and its numba kernels) and pays first-call costs; reported as
     "warm-up s" and never counted as fit time.
  2. how many series to measure on (`measured on`): a pilot times fit + predict/score on 10 and on 20 series,
     which separates a fixed cost (the autoencoder's fixed number of Adam steps) from the CPU cost per series,
     and projects the CPU time on N (default 1,000) series. A model projected within `--budget` CPU seconds is
     measured on N; a slower one (prophet, gbm, lstm at the defaults) on as many as the budget allows (at least
     `--min-series`), its times scaled linearly to 1,000 series. Linearity is checked by timing it again on half
     as many series: "lin" is fit CPU s/1k at n divided by fit CPU s/1k at n/2 (1.0 = linear; below 1, a fixed
     cost, so the scaled figure is an upper bound). `--linearity all` checks every model; `--measure` forces
     the count.
  3. fit: `create(name, **config).fit(history)` on the training days of the chosen series.
  4. then one call on the new day. Forecasters: `predict(horizon=12, history=...)` with the whole span up to the
     end of the new day (what aiops.training passes at a forecast origin: checking that frame is part of the
     time). Detectors: `score(window)` of the new day (288 points per series), the fit's tail as context.
Wall time is time.perf_counter; CPU time is time.process_time (this process, all its threads: TensorFlow and
BLAS threads count) plus the CPU time of finished child processes (Prophet's Stan optimiser runs as one).
Figures are seconds per 1,000 series: time * 1000 / measured series. The machine is shared, so `os.getloadavg()`
is recorded after each fit and each predict/score. A model that fails is reported with its error and the others
still run.

Prints one progress line per model as it finishes, then the table; appends a JSON line to
benchmarks/out/model_timing.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiops.settings import SimSettings, TrainSettings  # noqa: E402
from models.catalog import available, create, model_class  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SIM_STEP_S = 60
METRICS = ("request_rate", "cpu_usage")
HORIZON = 12
PILOT = 10
WARMUP = 2


def simulate(n_series: int, days: int, seed: int) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The panel frame (series, ts, value) of `days` + 1 days, and the start of the last (new) day."""
    from aiops.sim.engine import Engine
    from aiops.sim.generate import build_cluster

    workloads = math.ceil(n_series / len(METRICS))
    sim = SimSettings(workloads=workloads, namespaces=min(200, math.ceil(workloads / 25)), days=days + 1,
                      step_seconds=SIM_STEP_S, seed=seed, start=START)
    engine = Engine(build_cluster(sim, start=START), start=START, step_s=SIM_STEP_S, seed=seed)
    step = TrainSettings().step_seconds
    per = step // SIM_STEP_S
    kept: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    times = []
    for _ in range(days + 1):  # a day at a time: only the two metrics are kept, not all 13
        res = engine.run(86400 // SIM_STEP_S)
        for m in METRICS:
            a = res.arrays[m]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bucket stays NaN (a gap)
                kept[m].append(np.nanmean(a.reshape(-1, per, a.shape[1]), axis=1))
        times.append(res.times[::per])
    ts = pd.DatetimeIndex(np.concatenate(times)).tz_localize("UTC")
    names = [f"sim/{ns}/{w}/{c}" for ns, w, c in zip(res.namespaces, res.workloads, res.containers)]
    frames = []
    for m in METRICS:
        vals = np.concatenate(kept[m])  # (steps, workloads)
        ids = np.array([f"{n}:{m}" for n in names], dtype=object)
        frames.append(pd.DataFrame({"series": np.tile(ids, len(ts)), "ts": np.repeat(ts, len(ids)),
                                    "value": vals.ravel()}))
    frame = pd.concat(frames, ignore_index=True)
    ids = np.sort(frame["series"].unique())[:n_series] if workloads * len(METRICS) > n_series else None
    if ids is not None:
        frame = frame.loc[frame["series"].isin(ids)]
    frame = frame.sort_values(["series", "ts"], kind="stable").reset_index(drop=True)
    return frame, pd.Timestamp(START) + pd.Timedelta(days=days)


class Data:
    """The simulated frame split by series, so subsets of any size are cheap to take."""

    def __init__(self, frame: pd.DataFrame, new_day: pd.Timestamp, seed: int):
        self.new_day = new_day
        self.groups = {sid: g for sid, g in frame.groupby("series", sort=True)}
        # a seeded order: any prefix mixes both metrics and all namespaces
        self.order = list(np.random.default_rng(seed).permutation(sorted(self.groups)))

    def take(self, n: int, skip: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(training history, whole span, new day) of n series."""
        ids = self.order[skip:skip + n]
        whole = pd.concat([self.groups[s] for s in ids], ignore_index=True)
        new = whole["ts"] >= self.new_day
        return whole.loc[~new].reset_index(drop=True), whole, whole.loc[new].reset_index(drop=True)


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (Prophet runs Stan as a child)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_once(name: str, config: dict, data: Data, n: int, skip: int = 0) -> dict:
    """Fit and one predict/score on n series: wall and CPU seconds of each, with the load average after each."""
    train, whole, new = data.take(n, skip)
    model = create(name, **config)
    w, c = time.perf_counter(), _cpu()
    model.fit(train)
    fit_wall, fit_cpu, load_fit = time.perf_counter() - w, _cpu() - c, _load()
    w, c = time.perf_counter(), _cpu()
    if model.kind == "forecaster":
        out = model.predict(HORIZON, history=whole)
        expected = n * HORIZON
    else:
        out = model.score(new)
        expected = len(new)
    use_wall, use_cpu, load_use = time.perf_counter() - w, _cpu() - c, _load()
    if len(out) != expected:  # a timing of a call that did not do the work would be meaningless
        raise AssertionError(f"{name}: {len(out)} output rows on {n} series, expected {expected}")
    return {"n": n, "fit_wall": fit_wall, "fit_cpu": fit_cpu, "use_wall": use_wall, "use_cpu": use_cpu,
            "load_fit": load_fit, "load_use": load_use}


def per_1k(r: dict) -> dict:
    return {k: round(r[k] * 1000 / r["n"], 3) for k in ("fit_wall", "fit_cpu", "use_wall", "use_cpu")}


def measure(name: str, config: dict, data: Data, a: argparse.Namespace) -> dict:
    cls_w = time.perf_counter()
    cls = model_class(name)
    import_s = time.perf_counter() - cls_w
    row = {"model": name, "kind": cls.kind, "global_model": bool(cls.global_model), "config": config,
           "import_s": round(import_s, 3)}
    w = time.perf_counter()
    run_once(name, config, data, WARMUP)
    row["warmup_s"] = round(time.perf_counter() - w, 2)
    n = a.series
    if name in a.measure:
        n = min(a.measure[name], a.series)
    elif a.series > 2 * PILOT:
        # two pilot sizes separate a fixed cost (a global model's fixed number of training steps) from the cost
        # per series, so a model with a large fixed cost is not mistaken for a slow one
        t1, t2 = (run_once(name, config, data, k) for k in (PILOT, 2 * PILOT))
        c1, c2 = (r["fit_cpu"] + r["use_cpu"] for r in (t1, t2))
        marginal = max((c2 - c1) / PILOT, 0.0)
        fixed = max(c1 - PILOT * marginal, 0.0)
        row["pilot"] = {"fixed_cpu_s": round(fixed, 2), "cpu_s_per_series": round(marginal, 4),
                        "projected_cpu_s": round(fixed + a.series * marginal, 1)}
        if fixed + a.series * marginal > a.budget and marginal > 0:
            n = int((a.budget - fixed) / marginal) // 10 * 10
            n = max(min(n, a.series), min(a.min_series, a.series))
    res = run_once(name, config, data, n)
    row.update(measured_on=n, **per_1k(res), load_fit=res["load_fit"], load_use=res["load_use"])
    if a.linearity == "all" or (a.linearity == "scaled" and n < a.series):
        half = run_once(name, config, data, max(n // 2, 1))
        row["half"] = per_1k(half) | {"n": half["n"], "load_fit": half["load_fit"]}
        row["lin"] = round(row["fit_cpu"] / row["half"]["fit_cpu"], 2) if row["half"]["fit_cpu"] > 0 else None
    return row


def table(rows: list[dict], series: int) -> str:
    head = (f"| model | kind | measured on | fit wall s/1k | fit CPU s/1k | predict/score wall s/1k | "
            f"predict/score CPU s/1k | warm-up s | lin | load 1m (fit, use) |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('kind', '?')} | failed: {r['error'][:120]} |")
            continue
        on = f"{r['measured_on']}" + ("" if r["measured_on"] == series else f" (scaled; half: {r['half']['n']})"
                                       if "half" in r else " (scaled)")
        lin = "" if r.get("lin") is None else f"{r['lin']:.2f}"
        lines.append(f"| {r['model']} | {r['kind']} | {on} | {r['fit_wall']:.2f} | {r['fit_cpu']:.2f} | "
                     f"{r['use_wall']:.2f} | {r['use_cpu']:.2f} | {r['warmup_s']:.1f} | {lin} | "
                     f"{r['load_fit'][0]}, {r['load_use'][0]} |")
    return "\n".join(lines)


def _measure_arg(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        if not v.isdigit() or int(v) < 1:
            raise argparse.ArgumentTypeError(f"--measure: expected name=N[,name=N], received {part!r}")
        out[k] = int(v)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(available()), help="comma-separated catalog names (default: all)")
    p.add_argument("--series", type=int, default=1000, help="series the figures are for (default 1000)")
    p.add_argument("--days", type=int, default=7, help="days of training history (a new day is simulated after)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=150.0,
                   help="projected CPU seconds on --series above which a model is measured on fewer series")
    p.add_argument("--min-series", type=int, default=50, help="fewest series a scaled model is measured on")
    p.add_argument("--measure", type=_measure_arg, default={}, help="force series counts, e.g. prophet=100,lstm=500")
    p.add_argument("--linearity", choices=("scaled", "all", "none"), default="scaled",
                   help="which models are timed again on half as many series")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "model_timing.json")
    a = p.parse_args(argv)
    names = [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in [*names, *a.measure] if m not in available()]
    if unknown:
        p.error(f"--models/--measure: unknown {unknown}; catalogued models are {available()}")
    if a.series < WARMUP or a.days < 2:
        p.error(f"--series must be >= {WARMUP} and --days >= 2 (seasonal models need more than a day); "
                f"received {a.series} and {a.days}")
    configs = TrainSettings().model_configs
    t0 = time.perf_counter()
    frame, new_day = simulate(a.series, a.days, a.seed)
    data = Data(frame, new_day, a.seed)
    sim_s = time.perf_counter() - t0
    print(f"data: {len(data.order)} series x {a.days}+1 days at 5 min ({len(frame):,} rows) simulated in "
          f"{sim_s:.1f} s; load {_load()}", flush=True)
    rows = []
    for name in names:
        w = time.perf_counter()
        try:
            row = measure(name, dict(configs.get(name, {})), data, a)
        except Exception as exc:  # noqa: BLE001 - one failing model must not hide the others' figures
            row = {"model": name, "kind": model_class(name).kind, "error": f"{type(exc).__name__}: {exc}"}
        row["total_s"] = round(time.perf_counter() - w, 1)
        rows.append(row)
        if "error" in row:
            print(f"{name}: FAILED after {row['total_s']} s: {row['error']}", flush=True)
        else:
            print(f"{name}: on {row['measured_on']} series fit {row['fit_wall']:.2f} s/1k wall, {row['fit_cpu']:.2f} "
                  f"CPU; {'predict' if row['kind'] == 'forecaster' else 'score'} {row['use_wall']:.2f} s/1k wall, "
                  f"{row['use_cpu']:.2f} CPU; warm-up {row['warmup_s']} s; {row['total_s']} s in all; "
                  f"load {row['load_use']}", flush=True)
    out = {"benchmark": "model_timing", "series": a.series, "days": a.days, "seed": a.seed, "horizon": HORIZON,
           "metrics": list(METRICS), "budget_s": a.budget, "min_series": a.min_series, "rows": rows,
           "simulate_s": round(sim_s, 1), "total_s": round(time.perf_counter() - t0, 1), "cpus": os.cpu_count(),
           "python": platform.python_version(), "load_end": _load(),
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    print()
    print(table(rows, a.series))
    print(f"\nseconds per 1,000 series; {a.days} days of 5-minute history per series; total {out['total_s']} s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
