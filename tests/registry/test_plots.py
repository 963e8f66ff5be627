"""The training-run plots: PNGs with the axes, lines and bands a reader expects."""

from __future__ import annotations

import io

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from aiops.plots import forecast_plot, residual_plot, residuals, scores_plot

STEP = pd.Timedelta("5min")


def panel(n: int, start: str = "2026-03-01", seed: int = 0, series=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=STEP, tz="UTC")
    wave = 5 + np.sin(np.arange(n) / 8)
    return pd.concat([pd.DataFrame({"series": s, "ts": ts, "value": wave + rng.normal(0, 0.1, n)}) for s in series],
                     ignore_index=True)


def forecast_from(origin: pd.Timestamp, horizon: int, series=("a", "b"), level: float = 5.0) -> pd.DataFrame:
    h = np.arange(1, horizon + 1)
    return pd.concat([pd.DataFrame({"series": s, "ts": origin + h * STEP, "h": h, "p50": level, "p90": level + 0.5,
                                    "p99": level + 1.0}) for s in series], ignore_index=True)


def png(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    buf.seek(0)
    return matplotlib.image.imread(buf, format="png")


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_forecast_plot_draws_history_actual_p50_and_upper_quantile_bands():
    history, actual = panel(400), panel(412).groupby("series").tail(12)
    origin = history["ts"].max()
    fig = forecast_plot(history, actual, forecast_from(origin, 12), series="b")
    (ax,) = fig.axes
    assert ax.get_title() == "forecast vs actual: b"
    assert legend_labels(ax) == ["history", "actual", "p50-p90", "p50-p99", "p50 forecast"]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert len(lines["history"].get_xdata()) == 288  # the tail, not 400 points
    assert list(lines["p50 forecast"].get_ydata()) == [5.0] * 12
    assert len(ax.collections) == 2  # the two bands
    img = png(fig)
    assert img.shape[0] > 300 and img.shape[1] > 800


def test_forecast_plot_draws_one_path_per_rolling_origin():
    history = panel(300)
    t0 = history["ts"].max()
    fc = pd.concat([forecast_from(t0, 6, level=5), forecast_from(t0 + 3 * STEP, 6, level=6)], ignore_index=True)
    fig = forecast_plot(history, None, fc)
    paths = [ln for ln in fig.axes[0].get_lines() if ln.get_color() == "tab:blue"]
    assert [list(p.get_ydata()) for p in paths] == [[5.0] * 6, [6.0] * 6]
    png(fig)


def test_residual_plot_shows_residuals_over_time_and_their_histogram():
    actual = panel(412).groupby("series").tail(12)
    fc = forecast_from(actual["ts"].min() - STEP, 12)
    res = residuals(actual, fc)
    assert len(res) == 24 and np.allclose(res["residual"], actual.sort_values(["series", "ts"])["value"] - 5.0)
    fig = residual_plot(actual, fc)
    ax_t, ax_h = fig.axes
    assert ax_t.get_title() == "residuals (actual - p50)" and legend_labels(ax_t) == ["a", "b"]
    assert ax_h.get_xlabel() == "count" and sum(p.get_width() for p in ax_h.patches) == 24
    png(fig)
    with pytest.raises(SchemaError, match="share no \\(series, ts\\) rows"):
        residual_plot(panel(10), fc)


def test_scores_plot_shades_label_windows_and_draws_scores_and_threshold():
    values = panel(200, series=("x",))
    scores = values[["series", "ts"]].assign(score=np.linspace(0, 1, 200))
    labels = pd.DataFrame({"series": ["x", "x", "other"],
                           "start": [values["ts"][20], values["ts"][120], values["ts"][0]],
                           "end": [values["ts"][30], values["ts"][140], values["ts"][10]]})
    fig = scores_plot(values, scores, labels, threshold=0.9)
    ax_v, ax_s = fig.axes
    assert ax_v.get_title() == "anomaly scores: x" and ax_s.get_ylabel() == "score"
    assert len(ax_v.patches) == 2 and len(ax_s.patches) == 2  # x's two windows, not the other series'
    assert legend_labels(ax_v) == ["value", "labelled anomaly"]
    assert legend_labels(ax_s) == ["score", "threshold 0.9"]
    assert ax_s.get_ylim() == (-0.02, 1.02)
    png(fig)


def test_plots_refuse_frames_without_the_columns_they_draw():
    with pytest.raises(SchemaError, match=r"forecast: missing columns \['p50'\]"):
        forecast_plot(panel(10), None, pd.DataFrame({"series": ["a"], "ts": [pd.Timestamp("2026-01-01")]}))
    with pytest.raises(SchemaError, match=r"series: 'zz' is not in scores; it has \['a', 'b'\]"):
        scores_plot(panel(10), panel(10).rename(columns={"value": "score"}), series="zz")
    with pytest.raises(SchemaError, match=r"labels: missing columns \['end'\]"):
        scores_plot(panel(10), panel(10).rename(columns={"value": "score"}),
                    pd.DataFrame({"series": ["a"], "start": [pd.Timestamp("2026-03-01", tz="UTC")]}))
