"""The threshold post-step: fixed, best-F1, label-free rules, and alarms grouped into events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from models import thresholds as T


def calibrated_like(n=20_000, n_anomalies=20, seed=0):
    """Scores shaped like a detector's calibrated output (uniform on normal points), with anomalies near 1."""
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    where = rng.choice(n, n_anomalies, replace=False)
    s[where] = 1 - rng.random(n_anomalies) * 1e-6
    labels = np.zeros(n, bool)
    labels[where] = True
    return s, labels


def test_fixed_reports_what_it_flags():
    s = np.array([0.1, 0.95, np.nan, 0.99, 0.5])
    t = T.fixed(s, 0.95)
    assert (t.threshold, t.rule, t.n_scores, t.n_alarms) == (0.95, "fixed", 4, 2)
    assert t.flags(s).tolist() == [False, True, False, True, False]  # at or above; NaN never alarms
    assert "2 of 4" in t.reason and t.alarm_rate == 0.5
    for bad in (1.5, -0.1, float("nan"), "0.9", True):
        with pytest.raises(ValueError, match="threshold: expected a number in"):
            T.fixed(s, bad)


def test_scores_must_be_calibrated():
    with pytest.raises(ValueError, match="calibrated scores in"):
        T.fixed(np.array([0.2, 3.0]), 0.5)
    with pytest.raises(ValueError, match="1-d"):
        T.fixed(np.zeros((2, 2)), 0.5)


def test_best_f1_on_a_hand_made_case():
    s = np.array([0.1, 0.2, 0.9, 0.8, 0.95, 0.3])
    y = np.array([0, 0, 1, 0, 1, 0])
    t = T.best_f1(s, y)
    assert (t.threshold, t.f1, t.precision, t.recall, t.n_alarms) == (0.9, 1.0, 1.0, 1.0, 2)
    assert t.rule == "best_f1" and "precision 1.000" in t.reason


def test_best_f1_matches_brute_force_and_counts_missed_nan_points():
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.1
    s = np.clip(rng.random(500) * 0.7 + 0.3 * y, 0, 1).round(2)  # rounding makes ties
    s[:5] = np.nan
    y[:5] = True  # labelled but unscored: missed at every threshold
    best = T.best_f1(s, y)

    def f1(th):
        a = (s >= th) & ~np.isnan(s)
        tp = (a & y).sum()
        return 2 * tp / (a.sum() + y.sum())

    brute = max(f1(th) for th in np.unique(s[~np.isnan(s)]))
    assert best.f1 == pytest.approx(brute)
    assert f1(best.threshold) == pytest.approx(best.f1)
    assert best.recall < 1  # the five NaN positives are never found


def test_best_f1_without_positives_and_bad_labels():
    t = T.best_f1(np.array([0.2, 0.9]), np.array([False, False]))
    assert t.f1 == 0.0 and t.threshold == 1.0 and "no positive labels" in t.reason
    with pytest.raises(ValueError, match="one label per score"):
        T.best_f1(np.array([0.2, 0.9]), np.array([True]))
    with pytest.raises(ValueError, match="booleans or 0/1"):
        T.best_f1(np.array([0.2, 0.9]), np.array([2, 0]))


def test_unsupervised_calibrated_and_quantile_rules():
    s, _ = calibrated_like()
    cal = T.unsupervised(s, method="calibrated", contamination=0.01)
    assert cal.threshold == pytest.approx(0.99) and cal.rule == "unsupervised:calibrated"
    assert cal.alarm_rate == pytest.approx(0.01, abs=0.003)  # uniform scores: 1% above 0.99
    assert T.unsupervised(method="calibrated", contamination=0.01).threshold == cal.threshold  # needs no scores
    q = T.unsupervised(s, method="quantile", contamination=0.005)
    assert q.n_alarms == pytest.approx(100, abs=2) and "0.995 quantile" in q.reason


def test_unsupervised_pot_separates_a_heavy_tail():
    s, labels = calibrated_like()
    t = T.unsupervised(s, method="pot", risk=1e-3)
    assert t.rule == "unsupervised:pot" and "Pareto tail" in t.reason
    flags = t.flags(s)
    assert flags[labels].mean() >= 0.9  # the anomalies are above it...
    assert flags[~labels].mean() < 0.005  # ...and few normal points


def test_unsupervised_pot_falls_back_and_says_why():
    t = T.unsupervised(np.linspace(0, 1, 200), method="pot", min_excesses=50)
    assert t.rule == "unsupervised:quantile" and "fell back" in t.reason
    with pytest.raises(ValueError, match="method"):
        T.unsupervised(np.ones(3), method="magic")
    with pytest.raises(ValueError, match="needs the scores"):
        T.unsupervised(method="pot")
    with pytest.raises(ValueError, match="contamination"):
        T.unsupervised(np.ones(3), method="quantile", contamination=0)


def score_frame():
    ts = pd.date_range("2024-01-01", periods=10, freq="5min", tz="UTC")
    a = [0.1, 0.99, 0.2, 0.995, 0.1, 0.1, 0.1, 0.98, 0.1, np.nan]
    b = [0.999, np.nan, 0.999, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    return pd.DataFrame({"series": ["a"] * 10 + ["b"] * 10, "ts": list(ts) * 2, "score": a + b})


def test_alarms_group_points_into_events_per_series():
    f = score_frame()
    ev = T.alarms(f, 0.97)
    assert list(ev.columns) == ["series", "start", "end", "peak_ts", "peak_score", "n_points", "threshold"]
    assert ev["series"].tolist() == ["a", "a", "a", "b", "b"]  # no merging: every alarmed point alone
    merged = T.alarms(f.sample(frac=1, random_state=0), 0.97, min_gap=1)  # input order does not matter
    assert merged["series"].tolist() == ["a", "a", "b"]
    first = merged.iloc[0]
    assert (first["start"], first["end"], first["peak_ts"]) == (f["ts"][1], f["ts"][3], f["ts"][3])
    assert (first["peak_score"], first["n_points"], first["threshold"]) == (0.995, 2, 0.97)
    assert merged.iloc[2]["n_points"] == 2  # the NaN between b's two alarms is a gap row, merged over


def test_alarms_by_time_gap_and_threshold_objects():
    f = score_frame()
    by_time = T.alarms(f, T.fixed(f["score"], 0.97), min_gap="30min")
    assert by_time["series"].tolist() == ["a", "b"] and by_time["n_points"].tolist() == [3, 2]
    none = T.alarms(f, 1.0)
    assert none.empty and list(none.columns) == list(by_time.columns)
    with pytest.raises(SchemaError, match="series, ts, score"):
        T.alarms(f.drop(columns="score"), 0.9)
    with pytest.raises(ValueError, match="min_gap"):
        T.alarms(f, 0.9, min_gap=-1)
