"""The global LightGBM forecaster on seeded synthetic panels (15-minute steps, daily cycle, noise, level shift)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from models.base import Model
from models.catalog import create
from models.forecasters._windows import SeriesWindows
from models.panel import to_panel

DAY = 96  # 15-minute steps
SMALL = dict(max_horizon=48, lags=8, windows=(4, 16, 96, 672), origins_per_series=300, horizons_per_origin=8,
             num_boost_round=100, learning_rate=0.1, num_leaves=15, min_data_in_leaf=20)


def panel(n_series=4, days=21, seed=0, prefix="s"):
    """Each series: a level (shifted by +30% from day 12), a daily cycle of its own phase, AR(1) noise."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    t = np.arange(n)
    ts = pd.date_range("2026-01-05", periods=n, freq="15min", tz="UTC")
    frames = []
    for i in range(n_series):
        level = rng.uniform(50, 500) * np.where(t >= 12 * DAY, 1.3, 1.0)
        cycle = 0.4 * np.sin(2 * np.pi * (t / DAY + rng.uniform()))
        noise = np.zeros(n)
        e = rng.normal(0, 0.08, n)
        for k in range(1, n):
            noise[k] = 0.7 * noise[k - 1] + e[k]
        frames.append(pd.DataFrame({"series": f"{prefix}{i}", "ts": ts, "value": level * (1 + cycle + noise)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data():
    full = panel()
    cut = full["ts"].min() + pd.Timedelta(days=18)
    return full[full["ts"] < cut], full


@pytest.fixture(scope="module")
def fitted(data):
    return create("gbm", **SMALL).fit(data[0])


def _mae_ratio(model, full, origins):
    """MAE of p50 over seasonal-naive's, over origins (days from the start) and all series."""
    errs, base = [], []
    for d in origins:
        o = full["ts"].min() + pd.Timedelta(days=d)
        fc = model.predict(48, history=full[full["ts"] < o])
        act = full.merge(fc, on=["series", "ts"])
        errs.append(np.abs(act["value"] - act["p50"]).to_numpy())
        past = full.assign(ts=full["ts"] + pd.Timedelta(days=1)).rename(columns={"value": "sn"})
        base.append(np.abs(act.merge(past, on=["series", "ts"]).eval("value - sn")).to_numpy())
    return np.concatenate(errs).mean() / np.concatenate(base).mean(), act


def test_shape_and_quantile_order(fitted, data):
    fc = fitted.predict(48)
    assert list(fc.columns) == ["series", "ts", "h", "p50", "p90", "p99"]
    assert len(fc) == 4 * 48 and fc["h"].max() == 48
    assert (fc["p50"] <= fc["p90"]).all() and (fc["p90"] <= fc["p99"]).all()
    last = data[0].groupby("series")["ts"].max()
    first = fc[fc["h"] == 1].set_index("series")["ts"]
    assert (first == last + pd.Timedelta(minutes=15)).all()


def test_beats_seasonal_naive_on_held_out_days(fitted, data):
    ratio, _ = _mae_ratio(fitted, data[1], origins=(18, 18.5, 19, 19.75, 20.25))
    assert ratio < 0.9, f"MAE ratio to seasonal-naive {ratio:.3f}"


def test_same_seed_same_forecast(fitted, data):
    again = create("gbm", **SMALL).fit(data[0]).predict(48)
    pd.testing.assert_frame_equal(again, fitted.predict(48))


def test_save_load_round_trip(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "state" / "gbm_p99.txt").read_text().startswith("tree")  # LightGBM's own format
    back = Model.load(tmp_path / "m")
    assert type(back).__name__ == "GradientBoosting"
    pd.testing.assert_frame_equal(back.predict(48), fitted.predict(48))
    hist = data[1][data[1]["ts"] < data[1]["ts"].min() + pd.Timedelta(days=19)]
    pd.testing.assert_frame_equal(back.predict(24, history=hist), fitted.predict(24, history=hist))


def test_forecasts_series_not_seen_in_fit(fitted):
    other = panel(n_series=2, seed=7, prefix="new")
    cut = other["ts"].min() + pd.Timedelta(days=19)
    ratio, act = _mae_ratio(fitted, other, origins=(19, 19.5, 20))
    assert set(act["series"]) == {"new0", "new1"}
    assert ratio < 1.0, f"MAE ratio to seasonal-naive on unseen series {ratio:.3f}"
    assert np.isfinite(fitted.predict(12, history=other[other["ts"] < cut])[["p50", "p99"]].to_numpy()).all()


def test_refusals(fitted):
    short = panel(n_series=2, days=1)
    short = short[(short["series"] == "s0") | (short.index % 96 < 40)]
    with pytest.raises(SchemaError, match=r"series 's1' has 40 observed point\(s\); gbm needs at least 69"):
        create("gbm", **SMALL).fit(short)
    with pytest.raises(ValueError, match="beyond max_horizon=48"):
        fitted.predict(49)
    with pytest.raises(ValueError, match="extra|forbid|not permitted"):
        create("gbm", lags_typo=3)


def test_features_are_causal():
    rng = np.random.default_rng(1)
    y = rng.gamma(2.0, 10.0, 2000)
    T = np.array([1500, 1500, 1700])
    h = np.array([1, 40, 96])
    before = SeriesWindows(y, 0, 900 * 10**9, DAY, 8, (4, 16, 96, 672), 7).rows(T, h)[0]
    changed = y.copy()
    changed[1501:] = rng.gamma(2.0, 100.0, 499)  # a different future after the first origin
    after = SeriesWindows(changed, 0, 900 * 10**9, DAY, 8, (4, 16, 96, 672), 7).rows(T[:2], h[:2])[0]
    for name, v in before.items():
        np.testing.assert_array_equal(v[:2], after[name], err_msg=name)


def test_tail_is_enough_context(fitted, data):
    full = to_panel(data[0])
    tail = data[0].groupby("series").tail(fitted.context_steps)
    pd.testing.assert_frame_equal(fitted.predict(48, history=tail), fitted.predict(48, history=data[0]))
    assert fitted.context_steps < len(full.index[0])


def test_import_does_not_load_lightgbm():
    code = "import sys, models.forecasters.gbm; print('lightgbm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
