"""Point-wise precision/recall/F1, best-F1 search and point adjustment on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks._datasets import Datasets
from models.base import Detector
from models.catalog import register
from models.evaluation.detection import at_threshold, best_f1, point_adjust, segments
from tests.support.datasets import DATASETS

LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 1, 0, 0])
SCORES = np.array([0.1, 0.2, 0.3, 0.9, 0.2, 0.8, 0.1, 0.1, 0.0, 0.4])


def test_segments_are_runs_of_ones_end_exclusive():
    assert segments(LABELS).tolist() == [[2, 5], [7, 8]]
    assert segments(np.array([1, 1, 0, 1])).tolist() == [[0, 2], [3, 4]]
    assert segments(np.zeros(3)).shape == (0, 2)


def test_counts_at_a_threshold():
    c = at_threshold(SCORES, LABELS, 0.5)  # detects rows 3 (labelled) and 5 (normal)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 3, 5)
    assert c.precision == 0.5 and c.recall == 0.25
    assert c.f1 == pytest.approx(1 / 3)


def test_point_adjustment_credits_the_whole_segment():
    assert point_adjust(SCORES >= 0.5, LABELS).tolist() == [
        False, False, True, True, True, True, False, False, False, False]
    c = at_threshold(SCORES, LABELS, 0.5, adjust=True)  # segment [2, 5) is hit at row 3; [7, 8) is missed
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 1, 5)
    assert c.f1 == pytest.approx(6 / 8)


def test_best_f1_point_wise():
    # thresholds 0.9: 2/5; 0.8: 2/6; 0.4: 2/7; 0.3: 4/8; 0.2: 6/10; 0.1: 8/13 (tp 4, fp 5); 0.0: 8/14
    c = best_f1(SCORES, LABELS)
    assert c.threshold == 0.1
    assert (c.tp, c.fp, c.fn, c.tn) == (4, 5, 0, 1)
    assert c.f1 == pytest.approx(8 / 13)


def test_best_f1_with_point_adjustment():
    # segment [2, 5) (3 points) is detected from 0.9, segment [7, 8) from 0.1: at 0.9 tp 3, fp 0, fn 1 -> 6/7
    c = best_f1(SCORES, LABELS, adjust=True)
    assert c.threshold == 0.9 and c.adjusted
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 0, 1, 6)
    assert c.f1 == pytest.approx(6 / 7)


def test_best_f1_ties_go_to_the_highest_threshold():
    c = best_f1(np.array([0.9, 0.5, 0.1]), np.array([1, 0, 0]))
    assert c.threshold == 0.9 and c.f1 == 1.0


def test_entities_pool_counts_but_segments_never_cross_entities():
    s = [np.array([0.0, 1.0]), np.array([0.0, 0.0])]
    y = [np.array([0, 1]), np.array([1, 1])]  # entity 1 ends in a segment, entity 2 starts with one
    c = at_threshold(s, y, 0.5, adjust=True)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 0, 2, 1)
    per_entity = at_threshold(s, y, [0.5, -1.0])  # one label-free threshold per entity
    assert (per_entity.tp, per_entity.fp, per_entity.fn, per_entity.tn) == (3, 0, 0, 1)


def test_nan_scores_are_never_detected():
    c = at_threshold(np.array([np.nan, 1.0, np.nan]), np.array([1, 1, 0]), 0.5)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 0, 1, 1)
    assert best_f1(np.array([np.nan, 1.0, np.nan]), np.array([1, 1, 0])).f1 == pytest.approx(2 / 3)


def test_without_labelled_points_f1_is_zero():
    c = best_f1(np.array([0.2, 0.7]), np.array([0, 0]))
    assert c.f1 == 0.0 and c.tp == 0 and c.fp == 0 and c.threshold > 0.7


@pytest.mark.parametrize("adjust", [False, True])
def test_vectorised_best_f1_equals_trying_every_threshold(adjust):
    rng = np.random.default_rng(1)
    s = [np.round(rng.random(300), 2), np.round(rng.random(200), 2)]
    y = [(rng.random(300) < 0.1).astype(int), np.r_[np.zeros(150, int), np.ones(30, int), np.zeros(20, int)]]
    s[1][150:180] += 0.3  # one long, mostly well-scored segment
    best = best_f1(s, y, adjust=adjust)
    brute = max((at_threshold(s, y, t, adjust=adjust) for t in np.unique(np.concatenate(s))),
                key=lambda c: (c.f1, c.threshold))
    assert best.f1 == pytest.approx(brute.f1)
    assert best.threshold == brute.threshold
    assert (best.tp, best.fp, best.fn, best.tn) == (brute.tp, brute.fp, brute.fn, brute.tn)


def test_bad_inputs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="same length"):
        at_threshold(np.zeros(3), np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="0/1"):
        best_f1(np.zeros(2), np.array([0, 2]))
    with pytest.raises(ValueError, match="one per entity"):
        at_threshold([np.zeros(2), np.zeros(2)], [np.zeros(2), np.zeros(2)], [0.5])


class ZScore(Detector):
    """Test-only multivariate detector: the largest |z| of a row's metrics against the training mean and std."""

    name = "test_zscore"
    supports_multivariate = True

    def _fit(self, panel) -> None:
        self.stats_ = {sid: (v.mean(axis=0), v.std(axis=0) + 1e-9) for sid, v in zip(panel.ids, panel.values)}

    def _raw_scores(self, panel) -> list[np.ndarray]:
        return [np.abs((v - self.stats_[sid][0]) / self.stats_[sid][1]).max(axis=1)
                for sid, v in zip(panel.ids, panel.values)]

    def _save_state(self, path) -> None:
        pass

    def _load_state(self, path) -> None:
        pass


def test_multivariate_benchmark_runs_end_to_end_on_jumpstarter():
    from benchmarks.multivariate_detection import run

    register("test_zscore", "tests.models.test_detection_metrics:ZScore")
    (r,) = run(Datasets(DATASETS), ["test_zscore"], ["jumpstarter2"], {}, entities=2, q=0.99)
    assert r["entities"] == 2 and r["failed"] == {}
    for key in ("f1_best", "f1_label_free", "pa_f1_best", "pa_f1_label_free"):
        assert 0.0 <= r[key]["pooled"] <= 1.0 and len(r[key]["per_entity"]) == r["entities_with_anomalies"]
    # oracle thresholds bound the label-free ones, and point adjustment only adds detections
    assert r["f1_best"]["pooled"] >= r["f1_label_free"]["pooled"]
    assert r["pa_f1_best"]["pooled"] >= r["f1_best"]["pooled"]
    assert r["f1_best"]["pooled_counts"]["tp"] > 0
