"""Forecast metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from models.evaluation import forecast as fm

ACTUAL = [1.0, 2.0, 3.0, 4.0]
FORECAST = [1.0, 3.0, 2.0, 6.0]  # absolute errors 0, 1, 1, 2: MAE 1.0


def test_seasonal_naive_scale_and_mase():
    insample = [1.0, 2.0, 3.0, 5.0, 4.0]
    assert fm.seasonal_naive_scale(insample, 1) == pytest.approx(1.25)  # |1|, |1|, |2|, |1|
    assert fm.seasonal_naive_scale(insample, 2) == pytest.approx(2.0)  # |3-1|, |5-2|, |4-3|
    assert fm.mase(ACTUAL, FORECAST, insample=insample, m=1) == pytest.approx(0.8)
    assert fm.mase(ACTUAL, FORECAST, insample=insample, m=2) == pytest.approx(0.5)
    assert fm.mase(ACTUAL, FORECAST, scale=4.0) == pytest.approx(0.25)


def test_scale_skips_nan_pairs_and_refuses_short_insample():
    assert fm.seasonal_naive_scale([1.0, np.nan, 4.0, 2.0], 1) == pytest.approx(2.0)  # only |2 - 4|
    with pytest.raises(ValueError, match="more than m=3"):
        fm.seasonal_naive_scale([1.0, 2.0, 3.0], 3)
    with pytest.raises(ValueError, match="pass either scale or insample"):
        fm.mase(ACTUAL, FORECAST)


def test_smape_in_percent_with_zero_pairs():
    # pairs (1,1) 0; (2,3) 200/5 = 40; (3,2) 40; (4,6) 400/10 = 40
    assert fm.smape(ACTUAL, FORECAST) == pytest.approx(30.0)
    assert fm.smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert fm.smape([0.0], [2.0]) == pytest.approx(200.0)


def test_pinball_and_coverage():
    flat = [2.0, 2.0, 2.0, 2.0]  # a - f = -1, 0, 1, 2
    assert fm.pinball(ACTUAL, flat, 0.9) == pytest.approx((0.1 + 0 + 0.9 + 1.8) / 4)
    assert fm.pinball(ACTUAL, flat, 0.5) == pytest.approx((0.5 + 0 + 0.5 + 1.0) / 4)
    assert fm.coverage(ACTUAL, flat) == pytest.approx(0.5)  # 1 and 2 are at or below 2
    with pytest.raises(ValueError, match="quantile in"):
        fm.pinball(ACTUAL, flat, 1.5)


def test_nan_actuals_are_left_out():
    assert fm.coverage([1.0, np.nan, 5.0], [2.0, 0.0, 4.0]) == pytest.approx(0.5)
    assert np.isnan(fm.smape([np.nan], [1.0]))
    with pytest.raises(ValueError, match="same length"):
        fm.pinball([1.0, 2.0], [1.0], 0.5)


def _frames():
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    ts = [t0 + pd.Timedelta(minutes=5 * k) for k in (1, 2)]
    fc = pd.DataFrame({"series": ["a", "a", "b", "b"], "ts": ts * 2, "h": [1, 2, 1, 2],
                       "p50": [1.0, 2.0, 10.0, 10.0], "p90": [2.0, 2.5, 12.0, 11.0], "p99": [3.0, 3.0, 20.0, 20.0]})
    act = pd.DataFrame({"series": ["a", "a", "b", "b", "b"], "ts": ts * 2 + [t0],
                        "value": [1.5, 3.0, 13.0, np.nan, 0.0]})
    return fc, act


def test_evaluate_per_series():
    fc, act = _frames()
    m = fm.evaluate(fc, act, {"a": 0.5, "b": 2.0}).set_index("series")
    a, b = m.loc["a"], m.loc["b"]
    assert a["n"] == 2 and b["n"] == 1  # b's second actual is NaN
    assert a["mae"] == pytest.approx(0.75) and a["mase"] == pytest.approx(1.5)
    assert b["mae"] == pytest.approx(3.0) and b["mase"] == pytest.approx(1.5)
    assert a["coverage_p90"] == pytest.approx(0.5) and a["coverage_p99"] == pytest.approx(1.0)
    assert b["coverage_p90"] == 0.0 and b["coverage_p99"] == 1.0
    # pinball p90 of a: d = 1.5 - 2 = -0.5 -> 0.05; d = 3 - 2.5 = 0.5 -> 0.45
    assert a["pinball_p90"] == pytest.approx(0.25)
    assert b["smape"] == pytest.approx(200 * 3 / 23)
    only_h1 = fm.evaluate(fc, act, {"a": 0.5, "b": 2.0}, horizon=1).set_index("series")
    assert only_h1.loc["a", "mae"] == pytest.approx(0.5) and only_h1.loc["a", "n"] == 1


def test_evaluate_refuses_bad_frames():
    fc, act = _frames()
    with pytest.raises(SchemaError, match="no MASE scale for series \\['b'\\]"):
        fm.evaluate(fc, act, {"a": 1.0})
    with pytest.raises(SchemaError, match="missing columns \\['p50'\\]"):
        fm.evaluate(fc.drop(columns="p50"), act, {"a": 1.0, "b": 1.0})
    with pytest.raises(SchemaError, match="duplicate"):
        fm.evaluate(fc, pd.concat([act, act]), {"a": 1.0, "b": 1.0})


def test_scales_and_ratio():
    t = pd.date_range("2026-01-01", periods=5, freq="5min", tz="UTC")
    hist = pd.DataFrame({"series": ["a"] * 5 + ["b"] * 5, "ts": list(t) * 2,
                         "value": [1.0, 2.0, 3.0, 5.0, 4.0, 0.0, 0.0, 1.0, 1.0, 1.0]})
    assert fm.scales(hist, 2) == {"a": pytest.approx(2.0), "b": pytest.approx(2 / 3)}
    model = pd.DataFrame({"series": ["a", "b", "c"], "mase": [0.5, 0.3, 1.0]})
    base = pd.DataFrame({"series": ["a", "b", "c"], "mase": [1.0, 0.6, 0.0]})
    r = fm.ratio(model, base)
    assert r.to_dict() == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}  # c's baseline of 0 is left out


def test_rolling_origins():
    o = fm.rolling_origins("2013-09-01T00:00Z", "2013-09-02T23:55Z", every="6h", horizon=288, step="5min")
    assert len(o) == 5
    assert o[0] == pd.Timestamp("2013-08-31T23:55Z")  # its first forecast step is the test period's start
    assert o[-1] == pd.Timestamp("2013-09-01T23:55Z")  # its 288th step is the test period's last point
    assert (np.diff(o.asi8) == pd.Timedelta("6h").value).all()
    assert len(fm.rolling_origins("2013-09-01T00:00Z", "2013-09-01T01:00Z", every="1h", horizon=288,
                                  step="5min")) == 0
    with pytest.raises(ValueError, match="horizon"):
        fm.rolling_origins("2013-09-01", "2013-09-02", every="1h", horizon=0, step="5min")
