"""The plots every training run logs to MLflow: forecasts against actuals with quantile bands, residuals, and
anomaly scores against labels.

Each function returns a matplotlib Figure built without pyplot (no global registry to close, no backend switch)
for `mlflow.log_figure`, `fig.savefig`, or a notebook, which displays it as it is. Inputs are our frames: panel frames (series, ts,
value), forecast frames (series, ts, h, p50, p90, p99 — `Forecaster.predict`), score frames (series, ts, score —
`Detector.score`) and label windows (series, start, end). One series is drawn (default: the first); pass `series`
to pick another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aiops.errors import SchemaError

HISTORY_TAIL = 288  # history points drawn before the forecast: enough context, not a squashed x-axis
_BANDS = (("p90", 0.35), ("p99", 0.18))  # upper quantiles as shaded bands above p50, widest lightest


def forecast_plot(history: pd.DataFrame, actual: pd.DataFrame, forecast: pd.DataFrame,
                  series: str | None = None, *, value: str = "value") -> Figure:
    """History tail, the actual values, the p50 forecast and the p50-p90 / p90-p99 bands of one series.

    history, actual: panel frames; forecast: a forecast frame. With several forecast origins (rolling
    evaluation) each origin's path is drawn.
    """
    _require(forecast, "forecast", ("series", "ts", "p50"))
    sid = _pick_series(series, forecast, "forecast")
    hist = _one(history, "history", sid, value)
    act = _one(actual, "actual", sid, value)
    fc = _sorted(forecast[forecast["series"].astype(str) == sid])
    # Figure() rather than pyplot: no global figure registry (nothing to close, safe in the flow's threads) and
    # no backend switch (a notebook keeps its inline display)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    if len(hist):
        tail = hist.tail(HISTORY_TAIL)
        ax.plot(tail["ts"], tail[value], color="0.45", lw=1, label="history")
    if len(act):
        ax.plot(act["ts"], act[value], color="black", lw=1.2, label="actual")
    origins = _origins(fc)
    for i, path in enumerate(origins):
        lower = path["p50"].to_numpy(dtype=float)
        for col, alpha in _BANDS:
            if col in path:
                upper = path[col].to_numpy(dtype=float)
                ax.fill_between(path["ts"], lower, upper, color="tab:blue", alpha=alpha, lw=0,
                                label=f"p50-{col}" if i == 0 else None)
                lower = upper
        ax.plot(path["ts"], path["p50"], color="tab:blue", lw=1.5, label="p50 forecast" if i == 0 else None)
    ax.set_title(f"forecast vs actual: {sid}")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(value)
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def residual_plot(actual: pd.DataFrame, forecast: pd.DataFrame, series: str | None = None, *,
                  value: str = "value") -> Figure:
    """Residuals (actual - p50) over time and their histogram; all series together unless `series` is given."""
    _require(forecast, "forecast", ("series", "ts", "p50"))
    _require(actual, "actual", ("series", "ts", value))
    res = residuals(actual, forecast, value=value)
    if series is not None:
        res = res[res["series"] == str(series)]
    if res.empty:
        raise SchemaError("residual_plot: actual and forecast share no (series, ts) rows; pass the actual values "
                          "of the forecast's period")
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_t, ax_h = fig.subplots(1, 2, width_ratios=(3, 1))
    for sid, g in res.groupby("series", sort=True):
        ax_t.plot(g["ts"], g["residual"], lw=0.8, alpha=0.8, label=str(sid))
    ax_t.axhline(0, color="black", lw=0.8)
    ax_t.set_title("residuals (actual - p50)" + (f": {series}" if series is not None else ""))
    ax_t.set_xlabel("time (UTC)")
    ax_t.set_ylabel("residual")
    if res["series"].nunique() <= 8:
        ax_t.legend(fontsize=7, loc="upper left")
    r = res["residual"].to_numpy(dtype=float)
    ax_h.hist(r[np.isfinite(r)], bins=40, color="tab:gray", orientation="horizontal")
    ax_h.axhline(0, color="black", lw=0.8)
    ax_h.set_title(f"mean {np.nanmean(r):.3g}, sd {np.nanstd(r):.3g}")
    ax_h.set_xlabel("count")
    ax_t.tick_params(axis="x", labelrotation=30)
    return fig


def scores_plot(values: pd.DataFrame, scores: pd.DataFrame, labels: pd.DataFrame | None = None,
                threshold: float | None = None, series: str | None = None, *, value: str = "value") -> Figure:
    """One series on top with its labelled anomaly windows shaded, its anomaly scores below (and the threshold)."""
    _require(scores, "scores", ("series", "ts", "score"))
    sid = _pick_series(series, scores, "scores")
    vals = _one(values, "values", sid, value)
    sc = _sorted(scores[scores["series"].astype(str) == sid])
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax_v, ax_s = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    ax_v.plot(vals["ts"], vals[value], color="black", lw=1, label=value)
    ax_s.plot(sc["ts"], sc["score"], color="tab:red", lw=1, label="score")
    if labels is not None and len(labels):
        _require(labels, "labels", ("series", "start", "end"))
        mine = labels[labels["series"].astype(str) == sid]
        for i, (start, end) in enumerate(zip(pd.to_datetime(mine["start"], utc=True),
                                             pd.to_datetime(mine["end"], utc=True))):
            for ax in (ax_v, ax_s):
                ax.axvspan(start, end, color="tab:orange", alpha=0.25, lw=0,
                           label="labelled anomaly" if i == 0 and ax is ax_v else None)
    if threshold is not None:
        ax_s.axhline(threshold, color="tab:purple", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax_v.set_title(f"anomaly scores: {sid}")
    ax_v.set_ylabel(value)
    ax_s.set_ylabel("score")
    ax_s.set_ylim(-0.02, 1.02)
    ax_s.set_xlabel("time (UTC)")
    ax_v.legend(loc="upper left", fontsize=8)
    ax_s.legend(loc="upper left", fontsize=8)
    ax_s.tick_params(axis="x", labelrotation=30)
    return fig


def residuals(actual: pd.DataFrame, forecast: pd.DataFrame, *, value: str = "value") -> pd.DataFrame:
    """series, ts, h (if given), residual = actual - p50, on the (series, ts) rows both frames have."""
    a = actual[["series", "ts", value]].assign(series=actual["series"].astype(str),
                                                ts=pd.to_datetime(actual["ts"], utc=True))
    cols = [c for c in ("series", "ts", "h", "p50") if c in forecast.columns]
    f = forecast[cols].assign(series=forecast["series"].astype(str), ts=pd.to_datetime(forecast["ts"], utc=True))
    m = f.merge(a, on=["series", "ts"], how="inner")
    m["residual"] = m[value] - m["p50"]
    return _sorted(m.drop(columns=["p50", value]))


# --- helpers ---------------------------------------------------------------------------------------------------
def _require(frame: pd.DataFrame, name: str, cols: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{name}: expected a DataFrame with columns {list(cols)}, received {type(frame).__name__}")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing columns {missing}; expected {list(cols)}, received {list(frame.columns)}")


def _pick_series(series: str | None, frame: pd.DataFrame, name: str) -> str:
    ids = sorted(frame["series"].astype(str).unique())
    if not ids:
        raise SchemaError(f"{name}: has no rows to plot")
    if series is None:
        return ids[0]
    if str(series) not in ids:
        raise SchemaError(f"series: {series!r} is not in {name}; it has {ids[:10]}{'...' if len(ids) > 10 else ''}")
    return str(series)


def _one(frame: pd.DataFrame | None, name: str, sid: str, value: str) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), value: pd.Series(dtype=float)})
    _require(frame, name, ("series", "ts", value))
    return _sorted(frame[frame["series"].astype(str) == sid])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True))
    return out.sort_values([c for c in ("series", "ts") if c in out.columns], kind="stable")


def _origins(fc: pd.DataFrame) -> list[pd.DataFrame]:
    """One path per forecast origin (rolling evaluations concatenate several): origin = ts - h * step."""
    if fc.empty:
        return []
    if "h" not in fc.columns or fc["ts"].nunique() < 2:
        return [fc]
    step = np.diff(np.unique(fc["ts"].to_numpy())).min()
    origin = fc["ts"] - fc["h"].to_numpy() * step
    return [g.sort_values("h", kind="stable") for _, g in fc.groupby(origin, sort=True)]
