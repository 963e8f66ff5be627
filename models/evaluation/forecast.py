"""Forecast accuracy: MASE, sMAPE, pinball loss, quantile coverage, and their per-series table.

Pure functions on arrays and frames (no model, no I/O). Conventions:

- MASE divides the mean absolute error by the in-sample MAE of the seasonal-naive forecast with season `m` over the
  training history (`seasonal_naive_scale`), so 1.0 means "as bad as seasonal-naive was in sample".
- sMAPE is in percent, 0..200: mean of 200 |a - f| / (|a| + |f|), a pair with a = f = 0 counting as 0.
- Pinball loss of quantile q: mean of max(q (a - f), (q - 1)(a - f)).
- Coverage of quantile q: the fraction of actuals at or below the forecast quantile (nominal value: q).

NaN actuals (gaps in the test data) are left out of every metric.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from aiops.errors import SchemaError


def _pair(actual, forecast) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=np.float64).ravel()
    f = np.asarray(forecast, dtype=np.float64).ravel()
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast: expected the same length, received {a.size} and {f.size}")
    ok = np.isfinite(a) & np.isfinite(f)
    return a[ok], f[ok]


def seasonal_naive_scale(insample, m: int) -> float:
    """In-sample MAE of the forecast y[t] = y[t - m] (NaN pairs skipped): the MASE denominator."""
    if m < 1:
        raise ValueError(f"m: expected a season of at least 1 step, received {m}")
    y = np.asarray(insample, dtype=np.float64).ravel()
    if y.size <= m:
        raise ValueError(f"insample: needs more than m={m} points for the seasonal-naive scale, received {y.size}")
    d = np.abs(y[m:] - y[:-m])
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ValueError(f"insample: no pair of observed points {m} steps apart")
    return float(d.mean())


def mase(actual, forecast, *, scale: float | None = None, insample=None, m: int = 1) -> float:
    """Mean absolute scaled error: MAE / `scale`, or MAE / seasonal_naive_scale(insample, m) when scale is None.

    NaN when no pair is observed; inf when the scale is 0 (a series constant at season m in sample).
    """
    if scale is None:
        if insample is None:
            raise ValueError("mase: pass either scale or insample")
        scale = seasonal_naive_scale(insample, m)
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return float("nan")
    mae = float(np.abs(a - f).mean())
    return mae / scale if scale > 0 else (0.0 if mae == 0 else float("inf"))


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent (0..200); NaN when no pair is observed."""
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return float("nan")
    den = np.abs(a) + np.abs(f)
    safe = np.where(den > 0, den, 1.0)
    return float(np.mean(np.where(den > 0, 200.0 * np.abs(a - f) / safe, 0.0)))


def pinball(actual, forecast, q: float) -> float:
    """Mean pinball (quantile) loss of forecast quantile `q`; NaN when no pair is observed."""
    if not 0 < q < 1:
        raise ValueError(f"q: expected a quantile in (0, 1), received {q}")
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return float("nan")
    d = a - f
    return float(np.mean(np.maximum(q * d, (q - 1) * d)))


def coverage(actual, forecast) -> float:
    """Fraction of actuals at or below the forecast quantile; NaN when no pair is observed."""
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return float("nan")
    return float(np.mean(a <= f))


def quantile_columns(frame: pd.DataFrame) -> dict[str, float]:
    """The quantile columns of a forecast frame ("p50" -> 0.5, "p99.9" -> 0.999)."""
    out = {}
    for c in frame.columns:
        if isinstance(c, str) and c.startswith("p"):
            try:
                out[c] = float(c[1:]) / 100
            except ValueError:
                continue
    return out


def scales(history: pd.DataFrame, m: int, *, column: str = "value") -> dict[str, float]:
    """Per series of a panel frame (series, ts, `column`), the seasonal-naive scale over its history.

    The history must be on a regular grid with gaps as NaN rows (not dropped rows), so that "m steps back" is
    m rows back.
    """
    missing = [c for c in ("series", "ts", column) if c not in history.columns]
    if missing:
        raise SchemaError(f"history: missing columns {missing}; expected series, ts, {column}")
    h = history.sort_values(["series", "ts"], kind="stable")
    return {str(sid): seasonal_naive_scale(g[column].to_numpy(), m) for sid, g in h.groupby("series", sort=True)}


def evaluate(forecasts: pd.DataFrame, actuals: pd.DataFrame, scale: Mapping[str, float], *,
             horizon: int | None = None, column: str = "value") -> pd.DataFrame:
    """Per-series metrics of `forecasts` (columns series, ts, h, p50, ... as Forecaster.predict returns, possibly
    stacked over several origins) against `actuals` (a panel frame series, ts, `column`).

    horizon  score only steps h <= horizon (e.g. 12 for "1 hour" at 5-minute steps).
    scale    per-series MASE denominator (`scales`).

    Returns one row per series: n (scored points), mae, mase, smape, then pinball_<col> and coverage_<col> for every
    quantile column (coverage is reported for every quantile, including p50).
    """
    need = [c for c in ("series", "ts", "h", "p50") if c not in forecasts.columns]
    if need:
        raise SchemaError(f"forecasts: missing columns {need}; expected series, ts, h, p50, ... (Forecaster.predict)")
    if any(c not in actuals.columns for c in ("series", "ts", column)):
        raise SchemaError(f"actuals: expected columns series, ts, {column}; received {list(actuals.columns)}")
    qcols = quantile_columns(forecasts)
    fc = forecasts if horizon is None else forecasts[forecasts["h"] <= horizon]
    fc = fc.assign(series=fc["series"].astype(str), ts=pd.to_datetime(fc["ts"], utc=True))
    act = pd.DataFrame({"series": actuals["series"].astype(str), "ts": pd.to_datetime(actuals["ts"], utc=True),
                        "_actual": actuals[column].to_numpy(dtype=np.float64)})
    if act.duplicated(["series", "ts"]).any():
        raise SchemaError("actuals: duplicate (series, ts) rows; aggregate them first")
    joined = fc.merge(act, on=["series", "ts"], how="inner")
    joined = joined[np.isfinite(joined["_actual"])]
    unknown = sorted(set(joined["series"]) - set(scale))
    if unknown:
        raise SchemaError(f"scale: no MASE scale for series {unknown[:5]}; compute it with scales(train, m)")
    rows = []
    for sid, g in joined.groupby("series", sort=True):
        a = g["_actual"].to_numpy()
        p50 = g["p50"].to_numpy()
        row = {"series": sid, "n": len(g), "mae": float(np.abs(a - p50).mean()),
               "mase": mase(a, p50, scale=scale[sid]), "smape": smape(a, p50)}
        for c, q in qcols.items():
            row[f"pinball_{c}"] = pinball(a, g[c].to_numpy(), q)
            row[f"coverage_{c}"] = coverage(a, g[c].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def ratio(metrics: pd.DataFrame, baseline: pd.DataFrame, column: str = "mase") -> pd.Series:
    """Per series, `column` of a model over the same column of a baseline (series in both; a baseline of 0 is
    left out): the "ratio to seasonal-naive" whose mean and median over series the benchmarks report."""
    m = metrics.set_index("series")[column]
    b = baseline.set_index("series")[column]
    common = m.index.intersection(b.index)
    b = b[common]
    return (m[common][b > 0] / b[b > 0]).rename(f"{column}_ratio")


def rolling_origins(start, end, *, every, horizon: int, step) -> pd.DatetimeIndex:
    """Forecast origins (the last timestamp of each history) inside a test period [start, end].

    The first origin is one step before `start`, so its first forecast step is `start`; then one every `every`,
    as long as all `horizon` steps stay at or before `end`.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    every, step = pd.Timedelta(every), pd.Timedelta(step)
    if every <= pd.Timedelta(0) or step <= pd.Timedelta(0):
        raise ValueError(f"every and step: expected positive durations, received {every} and {step}")
    if horizon < 1:
        raise ValueError(f"horizon: expected at least 1 step, received {horizon}")
    first = start - step
    last = end - horizon * step
    if last < first:
        return pd.DatetimeIndex([], tz=start.tz)
    n = int((last - first) // every) + 1
    return pd.DatetimeIndex([first + k * every for k in range(n)])
