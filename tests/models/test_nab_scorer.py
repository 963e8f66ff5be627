"""NAB scoring: the rules on tiny hand-made files, the vectorised sweep against a plain loop, and NAB's own results."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import Field

from benchmarks._datasets import Datasets, DatasetError
from benchmarks.nab_scorer_check import check, failures
from models.base import Detector, DetectorConfig
from models.catalog import register
from models.evaluation.nab import (
    PROFILES,
    label_file,
    label_file_by_time,
    normalise,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
    score_files,
    sweep,
)
from tests.support.datasets import DATASETS

STD = PROFILES["standard"]
LOW_FN = PROFILES["reward_low_FN_rate"]
S1 = 2 / (1 + math.exp(-5)) - 1  # S(-1) = 0.98661: a detection at the left edge of a window


def _one(det_rows, n=200, windows=((100, 109),), profile=STD):
    """Raw score of a file where exactly `det_rows` fire (threshold 0.5)."""
    f = label_file("f", n, windows)
    s = np.zeros(n)
    s[list(det_rows)] = 1.0
    return float(score_files([f], [s], profile, 0.5)["score"].iloc[0])


def test_probationary_period_is_15_percent_capped_at_750_rows():
    assert probation_rows(100) == 15
    assert probation_rows(4032) == 604  # floor(604.8)
    assert probation_rows(5000) == 750
    assert probation_rows(22695) == 750  # NAB: min(floor(0.15 n), 0.15 * 5000)


def test_scaled_sigmoid_values_from_nab():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.01) == -1.0


def test_detection_at_window_start_earns_the_full_tp_weight_and_at_the_end_little():
    start, end = _one([100]), _one([109])
    assert start == pytest.approx(1.0)  # position -(109 - 100 + 1) / 10 = -1 -> S(-1) / S(-1)
    assert end == pytest.approx((2 / (1 + math.exp(-0.5)) - 1) / S1)  # position -1/10 -> S(-0.1)
    assert end == pytest.approx(0.2482, abs=1e-4)
    assert _one([104]) == pytest.approx((2 / (1 + math.exp(-3)) - 1) / S1)  # -(109 - 104 + 1)/10 = -0.6
    assert _one([104]) != pytest.approx(_one([105]))


def test_only_the_earliest_detection_in_a_window_counts():
    assert _one([100, 103, 107]) == pytest.approx(_one([100]))
    assert _one([103, 107]) == pytest.approx(_one([103]))


def test_false_positive_right_after_a_window_costs_little_and_far_after_costs_a_fp_weight():
    missed = -STD.fn
    just_after = _one([110]) - missed  # x = (110 - 109) / (10 - 1)
    assert just_after == pytest.approx(STD.fp * (2 / (1 + math.exp(5 / 9)) - 1))
    assert -STD.fp < just_after < 0
    assert _one([109 + 28]) - missed == pytest.approx(-STD.fp)  # x = 28/9 > 3: a full false positive
    assert _one([50]) - missed == pytest.approx(-STD.fp)  # before any window: a full false positive
    second = STD.fp * (2 / (1 + math.exp(10 / 9)) - 1)  # x = 2/9: a little further, a little dearer
    assert _one([110, 111]) - missed == pytest.approx(just_after + second)  # each false positive counts


def test_missed_window_costs_fn_weight_per_profile():
    assert _one([]) == -1.0
    assert _one([], profile=LOW_FN) == -2.0


def test_detections_in_the_probationary_period_are_ignored():
    assert probation_rows(200) == 30
    assert _one([0, 10, 29]) == _one([])
    assert _one([30]) == pytest.approx(_one([]) - STD.fp)  # row 30 is the first scored row


def test_window_inside_the_probationary_period_does_not_count():
    f = label_file("f", 200, [(5, 20), (100, 109)])
    assert f.scored_windows == 1
    s = np.zeros(200)
    res = score_corpus([f], [s])["standard"]
    assert res.raw == -1.0 and res.score == 0.0


def test_null_detector_scores_0_and_perfect_detector_100():
    files = [label_file("a", 300, [(100, 119), (200, 219)]), label_file("b", 400, [(150, 159)]),
             label_file("c", 300, [])]
    null = [np.zeros(f.n) for f in files]
    perfect = []
    for f in files:
        s = np.zeros(f.n)
        s[f.windows[:, 0]] = 1.0  # fire on the first row of each window, nowhere else
        perfect.append(s)
    for name in PROFILES:
        assert score_corpus(files, null)[name].score == pytest.approx(0.0)
        assert score_corpus(files, perfect)[name].score == pytest.approx(100.0)
    assert normalise(3.0, 3, STD) == 100.0 and normalise(-3.0, 3, STD) == 0.0


def test_one_threshold_for_the_whole_corpus_ties_to_the_highest():
    # file a is best at threshold 0.9, file b alone would want 0.4; the corpus picks one threshold
    a, b = label_file("a", 200, [(100, 109)]), label_file("b", 200, [(100, 109)])
    sa, sb = np.zeros(200), np.zeros(200)
    sa[100], sa[105] = 0.9, 0.8  # at 0.8 the window's score is unchanged (only its first detection counts): a tie
    sb[100], sb[150:170] = 0.4, 0.5  # b's window is only reachable by accepting b's 20 false positives first
    sw = sweep([a, b], [sa, sb], STD)
    assert sw.scores[list(sw.thresholds).index(0.8)] == sw.scores[list(sw.thresholds).index(0.9)]
    thr, raw = sw.best()
    assert thr == 0.9 and raw == pytest.approx(1.0 - 1.0)
    res = score_corpus([a, b], [sa, sb])["standard"]
    assert res.threshold == 0.9 and (res.per_file["threshold"] == 0.9).all()
    # +2 for b's window does not pay for 20 full false positives (-2.2); with cheap ones (-0.2) it does
    cheap = PROFILES["standard"].__class__("cheap", tp=1.0, fp=0.01, fn=1.0)
    assert sweep([a, b], [sa, sb], cheap).best()[0] == 0.4


def _reference(n, windows, scores, threshold, p):
    """NAB's rules as a plain loop over rows, for one file at one threshold."""
    prob = min(math.floor(0.15 * n), 0.15 * 5000)
    sig = lambda x: -1.0 if x > 3 else 2 / (1 + math.exp(5 * x)) - 1  # noqa: E731
    total, best, prev = 0.0, {}, None
    for i in range(n):
        k = next((j for j, (s, e) in enumerate(windows) if s <= i <= e), None)
        if k is not None:
            s, e = windows[k]
            best.setdefault(k, -p.fn if e >= prob else None)
        if i < prob or not scores[i] >= threshold:
            if k is None and any(e < i for _, e in windows):
                prev = max(j for j, (_, e) in enumerate(windows) if e < i)
            continue
        if k is not None:
            s, e = windows[k]
            best[k] = max(best[k], p.tp * sig(-(e - i + 1) / (e - s + 1)) / S1)
        else:
            before = [j for j, (_, e) in enumerate(windows) if e < i]
            if not before:
                total -= p.fp
            else:
                s, e = windows[before[-1]]
                total += p.fp * sig((i - e) / (e - s))
    return total + sum(v for v in best.values() if v is not None)


def test_vectorised_sweep_equals_a_plain_loop_at_every_threshold():
    rng = np.random.default_rng(0)
    files, scores = [], []
    for k, n in enumerate([120, 180, 150]):
        starts = sorted(rng.choice(np.arange(10, n - 12, 14), size=k + 1, replace=False))
        files.append(label_file(f"f{k}", n, [(s, s + int(rng.integers(0, 10))) for s in starts]))
        scores.append(np.round(rng.random(n), 2))  # ties across rows and files
    for name, p in PROFILES.items():
        sw = sweep(files, scores, p)
        assert np.all(np.diff(sw.thresholds) < 0)
        for thr, raw in zip(sw.thresholds[::7], sw.scores[::7]):
            loop = sum(_reference(f.n, f.windows.tolist(), s, thr, p) for f, s in zip(files, scores))
            per_file = score_files(files, scores, p, thr)["score"].sum()
            assert raw == pytest.approx(loop, abs=1e-9) and per_file == pytest.approx(loop, abs=1e-9), name
        best_thr, best_raw = sw.best()
        assert best_raw == max(sw.scores)


def test_windows_are_given_by_timestamps_that_must_be_in_the_file():
    ts = pd.date_range("2024-01-01", periods=100, freq="5min")
    f = label_file_by_time("f", ts, [[str(ts[40]), str(ts[49])]])
    assert f.windows.tolist() == [[40, 49]]
    with pytest.raises(ValueError, match="not match exactly one row"):
        label_file_by_time("f", ts, [["2024-01-01 00:01:00", str(ts[49])]])
    with pytest.raises(ValueError, match="must not overlap"):
        label_file("f", 100, [(40, 49), (45, 60)])
    with pytest.raises(ValueError, match="expected 100 anomaly scores"):
        score_files([f], [np.zeros(99)], STD, 0.5)


def test_nan_scores_never_detect():
    f = label_file("f", 200, [(100, 109)])
    s = np.full(200, np.nan)
    s[105] = 1.0
    assert score_corpus([f], [s])["standard"].raw == pytest.approx(_one([105]))


def test_reproduces_nab_published_results_for_numenta_and_windowed_gaussian():
    rows = check(Datasets(DATASETS), ["numenta", "windowedGaussian"])
    assert len(rows) == 6
    assert failures(rows, 0.5) == []
    for r in rows:  # at NAB's own thresholds, equal to rounding, total and file by file
        assert abs(r["diff_at_nab_threshold"]) < 1e-6, r
        assert r["files"] == 58 and r["file_max_abs_diff"] < 1e-6 and r["files_count_mismatch"] == 0, r
        assert r["ours"] >= r["published"] - 1e-6  # an exhaustive sweep never finds a worse threshold
    std = {r["detector"]: r for r in rows if r["profile"] == "standard"}
    assert std["numenta"]["ours"] == pytest.approx(70.101, abs=1e-3)
    assert std["windowedGaussian"]["ours"] == pytest.approx(39.650, abs=1e-3)


class _WindowedGaussianConfig(DetectorConfig):
    window: int = Field(64, ge=4, description="trailing points of the mean and standard deviation")


class WindowedGaussian(Detector):
    """Test-only detector (NAB's windowedGaussian idea): |x - trailing mean| / trailing std, causal."""

    name = "test_windowed_gaussian"
    config_class = _WindowedGaussianConfig

    @property
    def min_history(self) -> int:
        return 8

    @property
    def context_steps(self) -> int:
        return self.config.window

    def _fit(self, panel) -> None:
        pass

    def _raw_scores(self, panel) -> list[np.ndarray]:
        out = []
        for i in range(len(panel)):
            x = pd.Series(panel.univariate(i))
            past = x.shift(1).rolling(self.config.window, min_periods=4)  # row t is not in its own reference
            out.append((np.abs(x - past.mean()) / past.std().clip(lower=1e-9)).to_numpy())
        return out

    def _save_state(self, path) -> None:
        pass

    def _load_state(self, path) -> None:
        pass


def test_nab_benchmark_runs_end_to_end_with_a_causal_detector():
    from benchmarks.nab import run

    register("test_windowed_gaussian", "tests.models.test_nab_scorer:WindowedGaussian")
    res = run(Datasets(DATASETS), ["test_windowed_gaussian"], {"test_windowed_gaussian": {"window": 32}},
              files_filter="artificialWithAnomaly")
    (r,) = res
    assert r["files"] == 6 and r["failed_files"] == {}
    assert set(r["profiles"]) == set(PROFILES)
    for p in r["profiles"].values():
        assert np.isfinite(p["score"]) and p["score"] <= 100.0 and 0.0 <= p["threshold"] <= 1.0 + 1e-9
    # the artificial spikes and level shifts are easy: better than never firing
    assert r["profiles"]["standard"]["score"] > 0.0


def test_a_file_that_differs_from_the_manifest_is_refused(tmp_path):
    (tmp_path / "anomaly").mkdir()
    good, bad = tmp_path / "anomaly" / "good.csv", tmp_path / "anomaly" / "bad.csv"
    good.write_text("a\n1\n")
    bad.write_text("a\n2\n")
    digest = hashlib.sha256(b"a\n1\n").hexdigest()
    (tmp_path / "MANIFEST.sha256").write_text(f"{digest}  ./anomaly/good.csv\n{digest}  ./anomaly/bad.csv\n")
    ds = Datasets(tmp_path)
    assert ds.path("anomaly/good.csv") == good
    with pytest.raises(DatasetError, match="bad.csv has sha256 .* the manifest expects"):
        ds.path("anomaly/bad.csv")
    with pytest.raises(DatasetError, match="not listed"):
        ds.path("anomaly/other.csv")
    with pytest.raises(DatasetError, match="pass --datasets"):
        Datasets(tmp_path / "anomaly")
