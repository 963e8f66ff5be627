"""Forecasting on real workload traces: our forecasters against the peers a user would pick instead.

    python benchmarks/forecast.py --data bitbrains-cpu [--vms 100] [--every 24h] [--models ...] [--save DIR]
    python benchmarks/forecast.py --data nasa --every 6h
    python benchmarks/forecast.py --csv my_metrics.csv --split 2026-10-01 --season 288   # any panel, same code

Data (verified against MANIFEST.sha256 under --datasets, never copied; loaders in workload_data.py):
- bitbrains-cpu / bitbrains-mem: Bitbrains Rnd VMs 1..--vms, `cpu_usage_mhz` / `memory_usage_kb` on a regular
  5-minute grid (gaps up to 30 min interpolated, longer ones left NaN and never scored); train July-August 2013,
  test September.
- nasa: NASA-HTTP requests per 5 minutes; train July 1995, test August from the end of the outage (origins from a
  day after it, --warmup).
- --csv FILE --split TS: any frame with columns series, ts, value on a regular grid (train before TS, test after).

Method (causal: nothing from the test period is used before its time):
- The global models are fit once on the training period (in production the train flow refits them daily; here a
  month of forecasts comes from one fit, which can only favour the peers). Origins roll through the test period every
  --every (the first one step before it); at each origin a model forecasts max(horizons) steps from the history
  up to and including the origin (its `context_steps`, at least two days): the global models (gbm, lstm,
  mlforecast) read the new data without refitting, and the per-series models (our arima, AutoARIMA, Prophet)
  refit at every origin on their own window, which is how they are used (our train flow refits daily).
- Scored: each horizon H in --horizons (12 = 1 hour, 288 = 24 hours at 5 minutes) scores all steps h <= H.
  MASE is scaled per series by the in-sample seasonal-naive MAE over the training period (daily season);
  "ratio" is the model's MASE over seasonal-naive's MASE on the same series and points, mean and median over
  series; sMAPE (%) is a mean over series; pinball loss at 0.5/0.9/0.99 is pooled over all scored points and divided
  by the pooled MASE scale (sum of losses / sum of scales), so an idle series with a near-zero scale cannot
  dominate; coverage of p90 / p99 is the share of all scored points at or below that quantile.
- Models: ours from the catalog (arima, gbm, lstm, and the baselines naive, seasonal_naive) and the peers:
  `autoarima` = statsforecast AutoARIMA with its defaults on each series' last 3 days (a seasonal AutoARIMA with a
  288-step season did not finish one series in 9 CPU minutes here), intervals at levels 80 and 98 as p90 and p99;
  `prophet` = our catalog entry, which is plain Prophet per series (daily seasonality, quantiles from its
  predictive samples), refit at every origin on the last week (Prophet cannot update without a refit);
  `mlforecast` = Nixtla mlforecast's LightGBM on lags (1..12, 1 day, 1 week), rolling means and hour /
  day-of-week, per-series standardised target, recursive, with its conformal
  intervals (3 windows). Seeds: --seed (every model's `seed`).
Saves each model's stacked forecasts under --save (default benchmarks/out/forecast/<data>/) so an interrupted run
resumes with --reuse. Prints a table and appends a JSON line to benchmarks/out/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import workload_data  # noqa: E402
from _datasets import DEFAULT_DATASETS  # noqa: E402

from aiops.errors import SchemaError  # noqa: E402
from models.catalog import create  # noqa: E402
from models.evaluation import forecast as fm  # noqa: E402

STEP = pd.Timedelta(minutes=5)
OURS = ("naive", "seasonal_naive", "arima", "gbm", "lstm")
PEERS = ("autoarima", "prophet", "mlforecast")
# the product's defaults for the global models (aiops/settings.py TrainSettings.model_configs use 24 for the demo's
# 1-hour task; here the 24-hour horizon needs the full day)
CONFIGS: dict[str, dict] = {"gbm": {"max_horizon": 288}, "lstm": {"max_horizon": 288},
                            "prophet": {"max_train_steps": 2016}}


def load(args) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(train, test, season in steps) as panel frames series, ts, value."""
    if args.csv:
        frame = pd.read_csv(args.csv)
        missing = [c for c in ("series", "ts", "value") if c not in frame.columns]
        if missing:
            raise SystemExit(f"--csv {args.csv}: missing columns {missing}; expected series, ts, value")
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        split = pd.Timestamp(args.split, tz="UTC") if args.split else None
        if split is None:
            raise SystemExit("--csv needs --split (the first timestamp of the test period)")
        return frame[frame["ts"] < split], frame[frame["ts"] >= split], args.season
    if args.data.startswith("bitbrains"):
        column = {"bitbrains-cpu": "cpu_usage_mhz", "bitbrains-mem": "memory_usage_kb"}[args.data]
        frame = workload_data.bitbrains(args.datasets, range(1, args.vms + 1), columns=(column,))
        train, test = workload_data.split_month(frame, "2013-09")
        return workload_data.panel(train, column), workload_data.panel(test, column), 288
    if args.data == "nasa":
        train, test = workload_data.nasa_http(args.datasets)
        return train, test, 288
    raise SystemExit(f"--data: expected bitbrains-cpu, bitbrains-mem or nasa, received {args.data!r}")


class Tails:
    """Per-series arrays of train + test, to cut the history up to any origin quickly."""

    def __init__(self, train: pd.DataFrame, test: pd.DataFrame):
        full = pd.concat([train, test]).sort_values(["series", "ts"])
        self.series = {}
        for sid, g in full.groupby("series"):
            # on a complete grid: a missing bucket (NASA's dropped partial buckets, its outage) is a NaN row, so
            # "k steps back" is k rows back and a model sees the gap as a gap
            g = g.set_index(g["ts"].dt.tz_convert(None))["value"]
            g = g.reindex(pd.date_range(g.index.min(), g.index.max(), freq=STEP))
            self.series[sid] = (g.index.to_numpy(), g.to_numpy(np.float64))

    def at(self, origin: pd.Timestamp, k: int) -> pd.DataFrame:
        """The last k rows up to `origin` of each series that has a row at the origin and some observed values."""
        o = origin.tz_convert(None).to_datetime64()
        parts = []
        for sid, (ts, v) in self.series.items():
            end = np.searchsorted(ts, o, side="right")
            if end == 0 or ts[end - 1] != o:
                continue  # the series has ended (or not begun): a forecast would be for other timestamps
            start = max(end - k, 0)
            if np.isfinite(v[start:end]).sum() < 2:
                continue
            parts.append(pd.DataFrame({"series": sid, "ts": ts[start:end], "value": v[start:end]}))
        if not parts:
            return pd.DataFrame(columns=["series", "ts", "value"])
        out = pd.concat(parts, ignore_index=True)
        out["ts"] = out["ts"].dt.tz_localize("UTC")
        return out


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    """Gaps interpolated per series (edges carried): what a user does before a library that refuses NaN."""
    v = frame.groupby("series")["value"].transform(lambda s: s.interpolate(limit_direction="both"))
    return frame.assign(value=v.fillna(0.0))


class Catalog:
    """One of our forecasters, by catalog name."""

    def __init__(self, name: str, seed: int):
        self.model = create(name, seed=seed, **CONFIGS.get(name, {}))
        self.context = max(self.model.context_steps, 2 * 288)

    def fit(self, train: pd.DataFrame) -> None:
        self.model.fit(train)

    def predict(self, hist: pd.DataFrame, h: int) -> pd.DataFrame:
        return self.model.predict(h, history=hist)[["series", "ts", "h", "p50", "p90", "p99"]]


class AutoArimaPeer:
    """statsforecast AutoARIMA, defaults, per series on its last 3 days; refit at every origin."""

    context = 3 * 288

    def __init__(self, seed: int):
        self.seed = seed

    def fit(self, train: pd.DataFrame) -> None:
        pass  # nothing global: every origin fits each series afresh, as statsforecast is used

    def predict(self, hist: pd.DataFrame, h: int) -> pd.DataFrame:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoARIMA

        df = _filled(hist).rename(columns={"series": "unique_id", "ts": "ds", "value": "y"})
        df["ds"] = df["ds"].dt.tz_convert(None)
        sf = StatsForecast(models=[AutoARIMA()], freq="5min", n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = sf.forecast(df=df, h=h, level=[80, 98])
        fc = fc.rename(columns={"unique_id": "series", "ds": "ts", "AutoARIMA": "p50", "AutoARIMA-hi-80": "p90",
                                "AutoARIMA-hi-98": "p99"})
        fc["ts"] = pd.to_datetime(fc["ts"]).dt.tz_localize("UTC")
        fc["h"] = fc.groupby("series").cumcount() + 1
        return fc[["series", "ts", "h", "p50", "p90", "p99"]]


class MlforecastPeer:
    """Nixtla mlforecast with LightGBM: lags, rolling means, calendar; recursive; conformal intervals."""

    context = 2016 + 2 * 288  # the longest lag plus room for its rolling mean

    def __init__(self, seed: int, horizon: int):
        self.seed, self.horizon = seed, horizon

    def fit(self, train: pd.DataFrame) -> None:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import LocalStandardScaler
        from mlforecast.utils import PredictionIntervals

        self.fc = MLForecast(
            models={"lgbm": lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=63, n_jobs=1,
                                              random_state=self.seed, verbose=-1)},
            freq="5min", lags=[*range(1, 13), 288, 2016],
            lag_transforms={1: [RollingMean(12), RollingMean(288)], 288: [RollingMean(7)]},
            date_features=["hour", "dayofweek"], target_transforms=[LocalStandardScaler()])
        self.fc.fit(self._frame(train), prediction_intervals=PredictionIntervals(n_windows=3, h=self.horizon))

    @staticmethod
    def _frame(panel: pd.DataFrame) -> pd.DataFrame:
        df = _filled(panel).rename(columns={"series": "unique_id", "ts": "ds", "value": "y"})
        df["ds"] = df["ds"].dt.tz_convert(None)
        return df

    def predict(self, hist: pd.DataFrame, h: int) -> pd.DataFrame:
        out = self.fc.predict(h, new_df=self._frame(hist), level=[80, 98])
        out = out.rename(columns={"unique_id": "series", "ds": "ts", "lgbm": "p50", "lgbm-hi-80": "p90",
                                  "lgbm-hi-98": "p99"})
        out["ts"] = pd.to_datetime(out["ts"]).dt.tz_localize("UTC")
        out["h"] = out.groupby("series").cumcount() + 1
        return out[["series", "ts", "h", "p50", "p90", "p99"]]


class Refit:
    """One of our per-series forecasters, refit on the last `context` steps at every origin (as the daily train
    flow refits it; a month-old fit of a per-series model is not how it is used)."""

    def __init__(self, name: str, seed: int, context: int):
        self.name, self.seed, self.context = name, seed, context

    def fit(self, train: pd.DataFrame) -> None:
        pass  # every origin fits afresh

    def predict(self, hist: pd.DataFrame, h: int) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create(self.name, seed=self.seed, **CONFIGS.get(self.name, {})).fit(hist)
            return model.predict(h)[["series", "ts", "h", "p50", "p90", "p99"]]


# per-series models: refit at every origin on this many steps (arima: 2 days fitted + 2 days of past origins its
# quantiles are calibrated on; Prophet: one week)
REFIT = {"arima": 4 * 288, "prophet": 2016}


def make(name: str, seed: int, horizon: int):
    if name in REFIT:
        return Refit(name, seed, REFIT[name])
    if name == "autoarima":
        return AutoArimaPeer(seed)
    if name == "mlforecast":
        return MlforecastPeer(seed, horizon)
    return Catalog(name, seed)


def run_model(name, seed, train, tails, origins, horizon):
    """(stacked forecasts with an `origin` column, fit seconds, predict seconds)."""
    from tqdm import tqdm

    model = make(name, seed, horizon)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    frames, t0 = [], time.perf_counter()
    for o in tqdm(origins, desc=name, unit="origin", leave=False, file=sys.stderr):
        hist = tails.at(o, model.context)
        if hist.empty:
            print(f"  {name}: origin {o}: no series has data in the last {model.context} steps", file=sys.stderr)
            continue
        try:
            fc = model.predict(hist, horizon)
        except SchemaError as exc:  # reported, and visible as fewer scored points in the table
            print(f"  {name}: origin {o} refused: {exc}", file=sys.stderr, flush=True)
            continue
        frames.append(fc.assign(origin=o))
    return pd.concat(frames, ignore_index=True), fit_s, time.perf_counter() - t0


def summarize(fc: pd.DataFrame, test: pd.DataFrame, scale: dict, base: dict, horizons: dict) -> dict:
    out = {}
    for label, h in horizons.items():
        m = fm.evaluate(fc, test, scale, horizon=h)
        r = fm.ratio(m, base[label])
        s = m["series"].map(scale).to_numpy()
        ok = s > 0
        out[label] = {
            "series": int(len(m)), "points": int(m["n"].sum()),
            "mase_mean": float(m["mase"][ok].mean()), "ratio_mean": float(r.mean()), "ratio_median": float(r.median()),
            "smape": float(m["smape"].mean()),
            # pooled: a series whose scale is near zero (an idle VM) must not dominate a mean of ratios
            **{f"pinball_{c}": float((m[f"pinball_{c}"] * m["n"]).sum() / (s * m["n"]).sum())
               for c in ("p50", "p90", "p99")},
            **{f"coverage_{c}": float((m[f"coverage_{c}"] * m["n"]).sum() / m["n"].sum()) for c in ("p90", "p99")},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="bitbrains-cpu", help="bitbrains-cpu, bitbrains-mem or nasa")
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    p.add_argument("--csv", default=None, help="a panel CSV (series, ts, value) instead of --data")
    p.add_argument("--split", default=None, help="with --csv: first timestamp of the test period")
    p.add_argument("--season", type=int, default=288, help="with --csv: the MASE season in steps")
    p.add_argument("--vms", type=int, default=100, help="Bitbrains VMs 1..N")
    p.add_argument("--every", default="24h", help="time between origins")
    p.add_argument("--warmup", default=None,
                   help="first origin this long after the test period starts (default: 1 day for nasa, whose test "
                        "period starts at the end of an outage, so every model has a day of fresh history; else 0)")
    p.add_argument("--horizons", default="1h=12,24h=288", help="label=steps, comma-separated")
    p.add_argument("--models", default=",".join((*OURS, *PEERS)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", action="append", default=[],
                   help="NAME='{json}': config for one of our models (its results are labelled NAME[json])")
    p.add_argument("--save", type=Path, default=None, help="where to keep each model's forecasts")
    p.add_argument("--reuse", action="store_true", help="load forecasts already saved under --save")
    p.add_argument("--out", type=Path, default=HERE / "out" / "forecast.json")
    a = p.parse_args(argv)
    horizons = {k: int(v) for k, v in (item.split("=") for item in a.horizons.split(","))}
    names = a.models.split(",")
    if "seasonal_naive" not in names:
        names.insert(0, "seasonal_naive")  # the ratio's denominator
    names.sort(key=lambda n: n != "seasonal_naive")
    label = Path(a.csv).stem if a.csv else a.data
    save = a.save or HERE / "out" / "forecast" / label
    save.mkdir(parents=True, exist_ok=True)

    train, test, season = load(a)
    H = max(horizons.values())
    scale = fm.scales(train, season)
    tails = Tails(train, test)
    warmup = pd.Timedelta(a.warmup or ("1D" if a.data == "nasa" and not a.csv else "0h"))
    origins = fm.rolling_origins(test["ts"].min() + warmup, test["ts"].max(), every=a.every, horizon=H, step=STEP)
    print(f"{label}: {train['series'].nunique()} series, train {train['ts'].min():%Y-%m-%d}.."
          f"{train['ts'].max():%m-%d}, "
          f"{len(origins)} origins every {a.every} from {origins[0]:%Y-%m-%d %H:%M}", flush=True)

    for item in a.config:
        name, _, text = item.partition("=")
        try:
            CONFIGS[name] = {**CONFIGS.get(name, {}), **json.loads(text)}
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--config {item!r}: expected NAME='{{json}}' ({exc})") from None
    custom = {n for n in (i.partition("=")[0] for i in a.config)}

    base, results = {}, {}
    for name in names:
        tag = name + (json.dumps(CONFIGS[name], sort_keys=True, separators=(",", ":")) if name in custom else "")
        path = save / f"{tag}_seed{a.seed}_every{a.every}.parquet"
        if a.reuse and path.exists():
            fc, fit_s, pred_s = pd.read_parquet(path), float("nan"), float("nan")
        else:
            fc, fit_s, pred_s = run_model(name, a.seed, train, tails, origins, H)
            fc.to_parquet(path)
        if name == "seasonal_naive":
            base = {lab: fm.evaluate(fc, test, scale, horizon=h) for lab, h in horizons.items()}
        results[tag] = {"fit_s": round(fit_s, 1), "predict_s": round(pred_s, 1),
                        **summarize(fc, test, scale, base, horizons)}
        print(f"  {tag}: fit {fit_s:.0f} s, predict {pred_s:.0f} s, ratio "
              + ", ".join(f"{lab} {results[tag][lab]['ratio_mean']:.3f}" for lab in horizons), flush=True)

    for lab in horizons:
        print(f"\n{label}, horizon {lab} (h <= {horizons[lab]}):")
        print(f"{'model':24s} {'ratio mean':>10s} {'median':>7s} {'MASE':>6s} {'sMAPE':>6s} {'pb50':>6s} "
              f"{'pb90':>6s} {'pb99':>6s} {'cov90':>6s} {'cov99':>6s}")
        for name, r in sorted(results.items(), key=lambda kv: kv[1][lab]["ratio_mean"]):
            x = r[lab]
            print(f"{name:24s} {x['ratio_mean']:10.3f} {x['ratio_median']:7.3f} {x['mase_mean']:6.3f} "
                  f"{x['smape']:6.1f} {x['pinball_p50']:6.3f} {x['pinball_p90']:6.3f} {x['pinball_p99']:6.3f} "
                  f"{x['coverage_p90']:6.3f} {x['coverage_p99']:6.3f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as fh:
        fh.write(json.dumps({"benchmark": "forecast", "data": label, "vms": a.vms, "every": a.every,
                             "warmup": str(warmup),
                             "seed": a.seed, "origins": len(origins), "horizons": horizons, "results": results,
                             "loadavg": os.getloadavg(),
                             "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
