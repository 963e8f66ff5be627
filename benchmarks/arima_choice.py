"""Which ARIMA: statsmodels against statsforecast on Bitbrains VM CPU, 1-hour forecasts from rolling origins.

    .venv/bin/python benchmarks/arima_choice.py --vms 20 --origins 6 --seed 0

Data: Bitbrains GWA-T-12 Rnd, `cpu_usage_mhz` of `--vms` VMs drawn (seeded) from VMs 1-100, July-September
2013 (`<datasets>/workload/bitbrains_rnd/rnd_2013-0{7,8,9}.csv.gz`, checked against MANIFEST.sha256 first).
Rows are sorted by (vm_id, timestamp_s), de-duplicated, averaged into a regular 5-minute grid
(models.panel.regularize) and gaps of up to one hour are filled linearly; longer gaps stay empty.

Method: `--origins` forecast origins in September (every 3.5 days from Sep 8, each at a seeded time of day; with
`--first-origin 2013-08-08` in August instead, to check defaults on a month they were not chosen on). At
each origin the library comparison fits on the same training tail, the last `--train-days` days before the origin
(864 points at 3 days); our forecaster is given the last week (its daily profile needs it) and fits its ARIMA on
its own `max_train_steps`. Each forecasts the next `--horizon` steps (12 = 1 hour). A VM is skipped at an origin
when the week before it or the horizon has an unfilled gap. MASE divides the mean absolute error by the VM's
in-sample seasonal-naive error (daily season, 288 steps) over the months before (July-August for September);
"ratio" is a VM's mean MASE over the origins divided by seasonal-naive's on the same origins (mean and median
over VMs; VMs on which seasonal-naive was exact, e.g. constant ones, have no ratio); cover90 is how often the
actual was at or below the forecast p90.
Time is fit + predict per series: CPU seconds of this process (the machine is shared; BLAS threads are pinned to
1 so CPU time is comparable) and wall seconds.

Methods:
  naive, seasonal_naive  the references (last value; the value a day earlier).
  statsmodels            what a user does without auto_arima: d from KPSS tests (as ndiffs), then every SARIMAX
                         (p, d, q) with p, q <= 2 (constant when d = 0), lowest AIC, 80% interval.
  statsforecast          AutoARIMA with its defaults (stepwise Hyndman-Khandakar search, non-seasonal).
  arima[...]             our forecaster (models/forecasters/arima.py) through the catalog, fit on all VMs at once:
                         the default config, and variants that explain its defaults.
Appends a JSON line to benchmarks/out/arima_choice.json.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # before numpy loads: one thread each, CPU time comparable across libraries

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.catalog import create  # noqa: E402
from models.panel import regularize  # noqa: E402

FILES = [f"workload/bitbrains_rnd/rnd_2013-0{m}.csv.gz" for m in (7, 8, 9)]
STEP = pd.Timedelta(minutes=5)
SEASON = 288
OURS = {  # label -> config: the default, then one change each
    "arima": {},
    "arima[transform=none]": {"transform": "none"},
    "arima[season=none]": {"season": "none"},
    "arima[season=profile]": {"season": "profile"},
    "arima[train=1d]": {"max_train_steps": 288},
    "arima[train=7d]": {"max_train_steps": 2016},
    "arima[exact,max_order=5]": {"approximation": False, "max_order": 5},
}
OURS_TAIL = 7 * SEASON  # ours sees a week, for its daily profile; its ARIMA still fits on its own max_train_steps


def verify(datasets: Path) -> None:
    """Every file used is listed in MANIFEST.sha256 and matches its hash."""
    manifest = datasets / "MANIFEST.sha256"
    if not manifest.exists():
        sys.exit(f"--datasets {datasets}: no MANIFEST.sha256 there; pass the shared datasets directory")
    listed = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        listed[name.removeprefix("./")] = digest
    for f in FILES:
        if f not in listed:
            sys.exit(f"{f} is not listed in {manifest}")
        h = hashlib.sha256((datasets / f).read_bytes()).hexdigest()
        if h != listed[f]:
            sys.exit(f"{datasets / f}: sha256 {h} does not match MANIFEST.sha256 ({listed[f]})")


def load(datasets: Path, vms: list[int]) -> dict[int, pd.Series]:
    """VM id -> CPU MHz on the 5-minute grid, gaps up to 1 hour filled, longer ones NaN."""
    raw = pd.concat([pd.read_csv(datasets / f, usecols=["vm_id", "timestamp_s", "cpu_usage_mhz"]) for f in FILES])
    raw = raw[raw["vm_id"].isin(vms)].sort_values(["vm_id", "timestamp_s"], kind="stable")
    raw = raw.drop_duplicates(["vm_id", "timestamp_s"])
    frame = pd.DataFrame({"series": raw["vm_id"].astype(str), "value": raw["cpu_usage_mhz"].to_numpy(),
                          "ts": pd.to_datetime(raw["timestamp_s"], unit="s", utc=True)})
    grid = regularize(frame[["series", "ts", "value"]], STEP)
    out = {}
    for sid, g in grid.groupby("series"):
        s = g.set_index("ts")["value"]
        out[int(sid)] = s.interpolate(limit=12, limit_area="inside")
    return out


def origins(n: int, seed: int, start: pd.Timestamp) -> list[pd.Timestamp]:
    rng = np.random.default_rng(seed)
    return [start + pd.Timedelta(hours=84 * k) + int(rng.integers(0, SEASON)) * STEP for k in range(n)]


def statsmodels_fc(y: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and p90 from the lowest-AIC SARIMAX(p, d, q), p, q <= 2, d from KPSS."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    from statsmodels.tsa.stattools import kpss

    d, z = 0, y
    while d < 2:  # ndiffs: difference while KPSS rejects level stationarity at 5%
        if np.ptp(z) == 0 or kpss(z, regression="c", nlags="auto")[1] >= 0.05:
            break
        z, d = np.diff(z), d + 1
    best = None
    for p in range(3):
        for q in range(3):
            try:
                res = SARIMAX(y, order=(p, d, q), trend="c" if d == 0 else "n").fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(res.aic) and (best is None or res.aic < best.aic):
                best = res
    fc = best.get_forecast(h)
    return np.asarray(fc.predicted_mean), np.asarray(fc.conf_int(alpha=0.2))[:, 1]


def statsforecast_fc(y: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    from statsforecast.models import AutoARIMA

    f = AutoARIMA().fit(y).predict(h, level=[80])
    return np.asarray(f["mean"]), np.asarray(f["hi-80"])


def timed(fn, *args):
    t, c = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():  # statsmodels re-enables its warnings on import: silence them per call
        warnings.simplefilter("ignore")
        r = fn(*args)
    return r, time.process_time() - c, time.perf_counter() - t


def evaluate(series: dict[int, pd.Series], scale: dict[int, float], t0: pd.Timestamp, k: int, h: int,
             n_train: int, libraries: bool = True) -> list[tuple]:
    """Every method at one origin: rows (method, vm, origin, mase, cover90, cpu_s, wall_s)."""
    tails, actual = {}, {}
    for vm, s in series.items():
        tail = s[s.index < t0].iloc[-max(n_train, OURS_TAIL):]
        fut = s[(s.index >= t0) & (s.index < t0 + h * STEP)]
        if len(fut) == h and len(tail) >= n_train and not tail.isna().any() and not fut.isna().any() and scale[vm]:
            tails[vm], actual[vm] = tail, fut.to_numpy()
    print(f"origin {k + 1} {t0:%Y-%m-%d %H:%M}: {len(tails)} VMs", flush=True)
    rows = []

    def record(method, vm, mean, p90, cpu, wall):
        y = actual[vm]
        rows.append((method, vm, k, float(np.mean(np.abs(y - mean)) / scale[vm]), float(np.mean(y <= p90)), cpu, wall))

    for vm, tail in tails.items():
        y = tail.to_numpy()
        record("naive", vm, np.repeat(y[-1], h), np.repeat(y[-1], h), 0.0, 0.0)
        record("seasonal_naive", vm, y[-SEASON:][:h], y[-SEASON:][:h], 0.0, 0.0)
        for name, fn in (("statsmodels", statsmodels_fc), ("statsforecast", statsforecast_fc)) if libraries else ():
            (mean, p90), cpu, wall = timed(fn, y[-n_train:], h)
            record(name, vm, mean, p90, cpu, wall)
    if not tails:
        return rows
    frame = pd.concat([pd.DataFrame({"series": str(vm), "ts": t.index, "value": t.to_numpy()})
                       for vm, t in tails.items()], ignore_index=True)
    for label, cfg in OURS.items():
        model = create("arima", quantiles=(0.5, 0.9), **cfg)
        fc, cpu, wall = timed(lambda: model.fit(frame).predict(h))
        for vm in tails:
            f = fc[fc["series"] == str(vm)]
            record(label, vm, f["p50"].to_numpy(), f["p90"].to_numpy(), cpu / len(tails), wall / len(tails))
    return rows


def summarise(res: pd.DataFrame) -> dict[str, dict]:
    """Per method: MASE and ratio to seasonal-naive over VMs (each VM's mean over origins), cover90, time."""
    per_vm = res.groupby(["method", "vm"])["mase"].mean()
    snaive = per_vm.loc["seasonal_naive"]
    table = {}
    for m, g in res.groupby("method", sort=False):
        v = per_vm.loc[m]
        ratio = (v / snaive.loc[v.index])[snaive.loc[v.index] > 0]
        table[m] = {"mase_mean": round(float(v.mean()), 3), "mase_median": round(float(v.median()), 3),
                    "ratio_mean": round(float(ratio.mean()), 3), "ratio_median": round(float(ratio.median()), 3),
                    "vms_with_ratio": int(len(ratio)), "cover90": round(float(g["cover90"].mean()), 3),
                    "cpu_s_per_series": round(float(g["cpu_s"].mean()), 4),
                    "wall_s_per_series": round(float(g["wall_s"].mean()), 4)}
    return table


def main(argv: list[str] | None = None) -> dict:
    repo = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=Path, default=repo.parent / "shared" / "datasets")
    p.add_argument("--vms", type=int, default=20, help="how many VMs (drawn from 1-100 with --seed)")
    p.add_argument("--origins", type=int, default=6, help="forecast origins in September, 3.5 days apart")
    p.add_argument("--train-days", type=float, default=3.0, help="training tail for the library comparison")
    p.add_argument("--horizon", type=int, default=12, help="steps of 5 min to forecast (12 = 1 hour)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-origin", default="2013-09-08",
                   help="day of the first origin (default: a week into September, the test month; 2013-08-08 "
                        "checks the defaults on August, a month they were not chosen on)")
    p.add_argument("--libraries", action=argparse.BooleanOptionalAction, default=True,
                   help="also run statsmodels and statsforecast (--no-libraries: only ours and the baselines)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "arima_choice.json")
    a = p.parse_args(argv)
    if not 1 <= a.vms <= 100 or not 1 <= a.origins <= 6 or not 1 <= a.horizon <= SEASON:
        sys.exit(f"--vms must be 1-100, --origins 1-6 and --horizon 1-{SEASON}; received {a.vms}, {a.origins}, "
                 f"{a.horizon}")
    verify(a.datasets)
    import statsmodels.tsa.statespace.sarimax  # noqa: F401  (its import-time "always" warning filters, then ours)
    vms = sorted(np.random.default_rng(a.seed).choice(np.arange(1, 101), a.vms, replace=False).tolist())
    series = load(a.datasets, vms)
    n_train = int(pd.Timedelta(days=a.train_days) / STEP)
    first = pd.Timestamp(a.first_origin, tz="UTC")
    if not pd.Timestamp("2013-08-08", tz="UTC") <= first <= pd.Timestamp("2013-09-08", tz="UTC"):
        sys.exit(f"--first-origin must be between 2013-08-08 and 2013-09-08, received {a.first_origin}")
    test_start = first.replace(day=1)  # the MASE scale is in-sample: the months before the origins' month
    scale = {}
    for vm, s in series.items():
        tr = s[s.index < test_start].to_numpy()
        scale[vm] = float(np.nanmean(np.abs(tr[SEASON:] - tr[:-SEASON])))
    rows = []
    for k, t0 in enumerate(origins(a.origins, a.seed, first)):
        rows += evaluate(series, scale, t0, k, a.horizon, n_train, a.libraries)
    res = pd.DataFrame(rows, columns=["method", "vm", "origin", "mase", "cover90", "cpu_s", "wall_s"])
    table = summarise(res)
    n_fc = int((res["method"] == "naive").sum())
    print(f"\n{a.vms} VMs, {res.origin.nunique()} origins, {n_fc} forecasts per method, horizon {a.horizon} x 5 min; "
          f"library tail {n_train} points, ours its own default")
    print(f"{'method':<26}{'MASE mean':>10}{'median':>8}{'ratio mean':>11}{'median':>8}{'cover90':>9}"
          f"{'CPU s/series':>13}{'wall s/series':>14}")
    for m, r in table.items():
        print(f"{m:<26}{r['mase_mean']:>10.3f}{r['mase_median']:>8.3f}{r['ratio_mean']:>11.3f}"
              f"{r['ratio_median']:>8.3f}{r['cover90']:>9.3f}{r['cpu_s_per_series']:>13.4f}"
              f"{r['wall_s_per_series']:>14.4f}")
    out = {"benchmark": "arima_choice", "vms": vms, "origins": a.origins, "first_origin": a.first_origin,
           "train_days": a.train_days,
           "horizon": a.horizon, "seed": a.seed, "forecasts_per_method": n_fc, "table": table, "ours": OURS,
           "python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
