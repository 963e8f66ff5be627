"""The calibrators: per-series training distributions (Calibrator) and the pass-through of already calibrated
scores (Passthrough), both surviving the dict round trip the model files use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.calibration import Calibrator, Passthrough


def test_calibrator_makes_series_on_different_scales_comparable():
    rng = np.random.default_rng(0)
    small, large = rng.exponential(1.0, 5000), rng.exponential(100.0, 5000)
    cal = Calibrator(tail=0.05).fit(["a", "b"], [small, large])
    a, b = cal.transform(["a", "b"], [np.array([np.log(20) * 1.0]), np.array([np.log(20) * 100.0])])
    # the 95th percentile of each series' own scores maps to about 0.95 on both
    assert abs(a[0] - 0.95) < 0.01 and abs(b[0] - 0.95) < 0.01
    top = cal.transform(["a"], [np.array([10.0, 20.0, 1e6])])[0]
    assert (np.diff(top) > 0).all() and (top < 1).all() and (top > 0.99).all()  # extremes stay ranked


def test_calibrator_uses_the_pooled_distribution_for_unseen_series_and_keeps_nan():
    cal = Calibrator().fit(["a"], [np.arange(100.0)])
    out = cal.transform(["new"], [np.array([np.nan, 50.0])])[0]
    assert np.isnan(out[0]) and 0.4 < out[1] < 0.6


def test_passthrough_clips_and_keeps_nan():
    out = Passthrough().fit(["a"], [np.zeros(3)]).transform(["a"], [np.array([-0.5, 0.25, 1.5, np.nan])])[0]
    np.testing.assert_array_equal(out[:3], [0.0, 0.25, 1.0])
    assert np.isnan(out[3])


@pytest.mark.parametrize("make", [lambda: Calibrator(tail=0.1).fit(["a", "b"], [np.arange(50.0), np.ones(10)]),
                                  lambda: Passthrough()])
def test_round_trip_through_json_gives_the_same_transform(make):
    cal = make()
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert type(again) is type(cal)
    x = [np.array([-1.0, 0.3, 5.0, 49.0, 1e4])] * 2
    for u, v in zip(cal.transform(["a", "b"], x), again.transform(["a", "b"], x)):
        np.testing.assert_array_equal(u, v)


def test_bad_tail_is_refused():
    with pytest.raises(ValueError, match="tail: expected a fraction"):
        Calibrator(tail=0.7)
