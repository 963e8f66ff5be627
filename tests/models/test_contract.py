"""One shared contract over every registered model (STYLE.md 12): shapes and types, same seed same result,
save/load through MLflow, accuracy under a per-model ceiling on seeded data, clear errors for bad input.

A model added to the catalog without an entry in CEILING fails here: every model states what it must achieve.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError, UnknownNameError
from models.catalog import available, create, model_class

STEP = pd.Timedelta(minutes=15)
DAY = int(pd.Timedelta(days=1) / STEP)  # 96 steps

# small, fast configs for the heavy models; the defaults are for real data
FAST: dict[str, dict] = {
    "lstm": {"epochs": 3, "max_horizon": 32},
    "autoencoder": {"epochs": 3},
    "gbm": {"num_boost_round": 60, "max_horizon": 32},
    "prophet": {"uncertainty_samples": 200},
}
# forecasters: MASE of the 4-hour forecast on the held-out day must stay below this (seasonal-naive ~1)
# detectors: ROC-AUC of the injected anomalies must stay above this
CEILING: dict[str, float] = {
    "naive": 3.5, "seasonal_naive": 1.3, "arima": 1.6, "prophet": 1.6, "gbm": 1.3, "lstm": 2.0,
}
FLOOR: dict[str, float] = {
    "robust_mad": 0.85, "isolation_forest": 0.8, "autoencoder": 0.75, "forecast_residual": 0.85, "likelihood": 0.85,
}
QUANTILE_COLUMNS = ["p50", "p90", "p99"]


def _config(name: str) -> dict:
    cls = model_class(name)
    fields = cls.config_class.model_fields
    return {k: v for k, v in FAST.get(name, {}).items() if k in fields}


def panel(n_series=3, days=6, seed=0, start="2026-03-02") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days * DAY, freq=STEP, tz="UTC")
    phase = 2 * np.pi * np.arange(len(ts)) / DAY
    rows = []
    for i in range(n_series):
        level = 20 + 10 * i
        y = level + 0.4 * level * np.sin(phase + i) + rng.normal(0, 0.05 * level, len(ts))
        rows.append(pd.DataFrame({"series": f"s{i}", "ts": ts, "value": y}))
    return pd.concat(rows, ignore_index=True)


def with_anomalies(frame: pd.DataFrame, start_day: int, seed=1) -> tuple[pd.DataFrame, np.ndarray]:
    """Spikes and a level shift after `start_day`; returns the frame and 0/1 labels aligned with it."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    labels = np.zeros(len(out), dtype=int)
    for sid, g in out.groupby("series"):
        idx = g.index[start_day * DAY:]
        spikes = rng.choice(idx[10:-40], 4, replace=False)
        scale = g["value"].std()
        out.loc[spikes, "value"] += 6 * scale
        labels[np.searchsorted(out.index, spikes)] = 1
        shift = idx[-30:-18]
        out.loc[shift, "value"] += 4 * scale
        labels[np.searchsorted(out.index, shift)] = 1
    return out, labels


FORECASTERS = available("forecaster")
DETECTORS = available("detector")


def test_every_model_has_a_stated_bar():
    assert set(FORECASTERS) <= set(CEILING), f"add a CEILING for {set(FORECASTERS) - set(CEILING)}"
    assert set(DETECTORS) <= set(FLOOR), f"add a FLOOR for {set(DETECTORS) - set(FLOOR)}"
    assert "seasonal_naive" in FORECASTERS and "robust_mad" in DETECTORS


def test_listing_and_importing_models_loads_neither_keras_nor_prophet():
    code = ("import sys\nfrom models.catalog import available, model_class\n"
            "[model_class(n) for n in available()]\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'prophet', 'lightgbm', 'statsforecast') if m in sys.modules]\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"imported at listing time: {out.stdout.strip()}"


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as err:
        create("prophett")
    assert "prophet" in str(err.value) and "seasonal_naive" in str(err.value)


def test_configs_are_frozen_and_reject_unknown_keys():
    for name in available():
        cls = model_class(name)
        with pytest.raises(Exception):
            cls(not_a_setting=1)
        m = cls()
        with pytest.raises(Exception):
            m.config.seed = 5


@pytest.mark.parametrize("name", FORECASTERS)
def test_forecaster_contract(name):
    data = panel()
    ts = data["ts"]
    cut = ts.min() + pd.Timedelta(days=5)
    train, test = data[ts < cut], data[ts >= cut]
    m = create(name, **_config(name)).fit(train)
    fc = m.predict(16)
    assert list(fc.columns) == ["series", "ts", "h", *QUANTILE_COLUMNS]
    assert len(fc) == 3 * 16 and fc["h"].tolist()[:16] == list(range(1, 17))
    assert str(fc["ts"].dt.tz) == "UTC" and fc["ts"].min() == cut
    q = fc[QUANTILE_COLUMNS].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all()
    # same seed, same result
    again = create(name, **_config(name)).fit(train).predict(16)
    pd.testing.assert_frame_equal(fc, again)
    # accuracy on the held-out day: forecasts every 4 hours, 16 steps ahead each
    from models.evaluation import forecast as fm

    fcs = [m.predict(16, history=data[ts <= cut + k * 16 * STEP - STEP]) for k in range(5)]
    per_series = fm.evaluate(pd.concat(fcs), test, fm.scales(train, DAY), horizon=16)
    assert per_series["mase"].mean() < CEILING[name], per_series


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_contract(name):
    clean = panel(days=5)
    data, labels = with_anomalies(clean, start_day=3)
    ts = data["ts"]
    cut = ts.min() + pd.Timedelta(days=3)
    m = create(name, **_config(name)).fit(data[ts < cut])
    window = data[ts >= cut]
    s = m.score(window)
    assert list(s.columns) == ["series", "ts", "score"] and len(s) == len(window)
    assert s["score"].between(0, 1).all()
    pd.testing.assert_frame_equal(s, create(name, **_config(name)).fit(data[ts < cut]).score(window))
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(labels[(ts >= cut).to_numpy()], s["score"].to_numpy())
    assert auc > FLOOR[name], auc


@pytest.mark.parametrize("name", FORECASTERS + DETECTORS)
def test_save_and_load_through_mlflow(name, tmp_path):
    import mlflow

    from aiops import registry
    from aiops.settings import load_settings

    settings = load_settings(data_dir=tmp_path / "data", mlflow_artifact_root=(tmp_path / "mlruns").as_uri())
    data = panel(days=5)
    ts = data["ts"]
    cut = ts.min() + pd.Timedelta(days=4)
    m = create(name, **_config(name)).fit(data[ts < cut])
    example = data[(data["series"] == "s0") & (ts < cut)].tail(max(m.context_steps, m.min_history, 2))
    logged = registry.log_candidate(settings, m, experiment="contract", registered_name=None, metrics={"x": 1.0},
                                    holdout={"id": "contract"}, input_example=example,
                                    predict_params={"horizon": 8} if m.kind == "forecaster" else None)
    from aiops.mlflow_model import naive_utc, using_store

    with using_store(settings.resolved_mlflow_uri):
        loaded = mlflow.pyfunc.load_model(logged.model_uri)
    hist = data[ts < cut]
    if m.kind == "forecaster":
        pd.testing.assert_frame_equal(loaded.predict(naive_utc(hist), params={"horizon": 8}),
                                      naive_utc(m.predict(8, history=hist)))
    else:
        window = data[ts >= cut]
        pd.testing.assert_frame_equal(loaded.predict(naive_utc(window)), naive_utc(m.score(window)))


@pytest.mark.parametrize("name", FORECASTERS + DETECTORS)
def test_bad_input_is_refused_clearly(name):
    m = create(name, **_config(name))
    data = panel(days=5)
    with pytest.raises(SchemaError, match="missing columns"):
        m.fit(data.rename(columns={"value": "v", "ts": "time"}))
    with pytest.raises(SchemaError, match="all NaN"):
        m.fit(data.assign(value=np.where(data["series"] == "s1", np.nan, data["value"])))
    with pytest.raises(SchemaError, match="s0"):  # too little history: the message names the series
        m.fit(data.groupby("series").head(1))
    if name != "naive":  # everything but the last-value forecaster needs more than three points
        with pytest.raises(SchemaError, match="s0"):
            m.fit(data.groupby("series").head(3))
    with pytest.raises(SchemaError, match="duplicate"):
        m.fit(pd.concat([data, data.head(2)]))
