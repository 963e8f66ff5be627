"""The global Keras LSTM forecaster on seeded synthetic panels, with a tiny network so the file runs in seconds."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from models.base import Model
from models.catalog import create, register

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
register("lstm", "models.forecasters.lstm:Lstm")  # a no-op when the catalog already lists it

DAY = 96  # 15-minute steps
TINY = dict(max_horizon=24, window=16, units=8, hidden=16, epochs=6, batch_size=64, origins_per_series=200,
            learning_rate=3e-3,
            lags=8, windows=(4, 16, 96, 672))


def panel(n_series=3, days=16, seed=0, prefix="s"):
    """Each series: a level (shifted by +30% from day 9), a daily cycle of its own phase, AR(1) noise."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    t = np.arange(n)
    ts = pd.date_range("2026-01-05", periods=n, freq="15min", tz="UTC")
    frames = []
    for i in range(n_series):
        level = rng.uniform(50, 500) * np.where(t >= 9 * DAY, 1.3, 1.0)
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
    return full[full["ts"] < full["ts"].min() + pd.Timedelta(days=14)], full


@pytest.fixture(scope="module")
def fitted(data):
    return create("lstm", **TINY).fit(data[0])


def _mae_ratio(model, full, origins):
    """MAE of p50 over seasonal-naive's, over origins (days from the start) and all series."""
    errs, base = [], []
    for d in origins:
        o = full["ts"].min() + pd.Timedelta(days=d)
        fc = model.predict(24, history=full[full["ts"] < o])
        act = full.merge(fc, on=["series", "ts"])
        past = full.assign(ts=full["ts"] + pd.Timedelta(days=1)).rename(columns={"value": "sn"})
        errs.append(np.abs(act["value"] - act["p50"]).to_numpy())
        base.append(np.abs(act.merge(past, on=["series", "ts"]).eval("value - sn")).to_numpy())
    return np.concatenate(errs).mean() / np.concatenate(base).mean(), act


def test_shape_and_quantile_order(fitted, data):
    fc = fitted.predict(24)
    assert list(fc.columns) == ["series", "ts", "h", "p50", "p90", "p99"]
    assert len(fc) == 3 * 24
    assert (fc["p50"] <= fc["p90"]).all() and (fc["p90"] <= fc["p99"]).all()
    assert np.isfinite(fc[["p50", "p90", "p99"]].to_numpy()).all()
    last = data[0].groupby("series")["ts"].max()
    assert (fc[fc["h"] == 1].set_index("series")["ts"] == last + pd.Timedelta(minutes=15)).all()


def test_beats_seasonal_naive_on_held_out_days(fitted, data):
    ratio, _ = _mae_ratio(fitted, data[1], origins=(14, 14.5, 15, 15.5))
    assert ratio < 0.9, f"MAE ratio to seasonal-naive {ratio:.3f}"


def test_same_seed_same_forecast_and_round_trip(fitted, data, tmp_path):
    again = create("lstm", **TINY).fit(data[0])
    pd.testing.assert_frame_equal(again.predict(24), fitted.predict(24), check_exact=True)
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "state" / "lstm.keras").is_file()
    back = Model.load(tmp_path / "m")
    assert type(back).__name__ == "Lstm"
    pd.testing.assert_frame_equal(back.predict(24), fitted.predict(24), check_exact=True)


def test_forecasts_series_not_seen_in_fit(fitted):
    other = panel(n_series=2, seed=5, prefix="new")
    ratio, act = _mae_ratio(fitted, other, origins=(14, 15))
    assert set(act["series"]) == {"new0", "new1"}
    assert ratio < 1.0, f"MAE ratio to seasonal-naive on unseen series {ratio:.3f}"


def test_refusals(fitted, data):
    short = panel(n_series=2, days=1)
    short = short[(short["series"] == "s0") | (short.index % 96 < 30)]
    with pytest.raises(SchemaError, match=r"series 's1' has 30 observed point\(s\); lstm needs at least 50"):
        create("lstm", **TINY).fit(short)
    hist = data[0][data[0]["ts"] >= data[0]["ts"].max() - pd.Timedelta(hours=2)]  # 9 steps, window is 16
    with pytest.raises(SchemaError, match="series 's0' has 9 steps; lstm needs at least window=16"):
        fitted.predict(4, history=hist)
    with pytest.raises(ValueError, match="beyond max_horizon=24"):
        fitted.predict(25)


def test_import_does_not_load_tensorflow():
    code = "import sys, models.forecasters.lstm; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
