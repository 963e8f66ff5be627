"""aiops.training.evaluate_forecaster hands each model only its context at every holdout origin: the metrics must be
exactly those of forecasts made from the whole history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiops.training import Holdout, evaluate_forecaster
from models.catalog import create
from models.evaluation import forecast as fm

STEP = pd.Timedelta(minutes=5)


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-01-01", periods=6 * 288, freq=STEP, tz="UTC")
    return pd.concat([pd.DataFrame({"series": f"s{k}", "ts": ts,
                                    "value": 10 + 5 * np.sin(2 * np.pi * np.arange(len(ts)) / 288 + k)
                                    + rng.normal(0, 1, len(ts))}) for k in range(3)], ignore_index=True)


@pytest.mark.parametrize("name", ["naive", "seasonal_naive", "arima"])
def test_judging_from_the_context_equals_judging_from_the_whole_history(panel, name):
    ts = panel["ts"].drop_duplicates().sort_values().reset_index(drop=True)
    fit_end = ts.iloc[-144]
    holdout = Holdout("t", fit_end, ts.iloc[-1], STEP, 12, tuple(ts.iloc[-145 + 12 * i] for i in range(11)),
                      ("s0", "s1", "s2"))
    train = panel[panel["ts"] < fit_end]
    model = create(name).fit(train)
    got, stacked = evaluate_forecaster(model, panel, holdout)
    whole = pd.concat([model.predict(12, history=panel[panel["ts"] <= o]).assign(origin=o) for o in holdout.origins])
    want = fm.evaluate(whole, panel[panel["ts"] >= fit_end], fm.scales(train, 288), horizon=12)
    assert len(stacked) == 11 * 3 * 12
    pd.testing.assert_frame_equal(got, want)
