"""Point-wise detection metrics: precision, recall and F1 at a threshold, the best-F1 threshold, point adjustment.

A point is detected when its score is `>= threshold`; NaN scores (a detector's warm-up) are never detected.
Scores and labels are one array each, or lists of arrays (one per entity: machine, service) that are pooled into one
count; labelled segments never run across entities.

Point adjustment (PA), as used in the multivariate anomaly-detection literature (Xu et al., WWW 2018, then OmniAnomaly,
InterFusion, JumpStarter): if any point of a labelled segment (a maximal run of 1s) is detected, every point of the
segment counts as detected. PA inflates F1, often a lot (a random detector scores well on long segments), so report
it next to the point-wise F1, never alone.

The best-F1 search is the oracle threshold (it looks at the labels): an upper bound, not what a deployed detector
gets. A label-free threshold (from the training score distribution, a rule in models/thresholds.py, or a fixed
calibrated score) is passed to `at_threshold` as a number, or one number per entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Arrays = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class Counts:
    """Confusion counts at one threshold (over points; after point adjustment when `adjusted`)."""

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    adjusted: bool = False

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN); 0 when nothing is both labelled and detected."""
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "adjusted": self.adjusted}


def segments(labels: np.ndarray) -> np.ndarray:
    """Labelled segments of a 0/1 array: shape (k, 2), rows `[start, end)` (end exclusive)."""
    y = np.asarray(labels).astype(bool).astype(np.int8)
    d = np.diff(np.r_[0, y, 0])
    return np.column_stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)]).astype(np.int64)


def point_adjust(detected: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Detections after point adjustment: a labelled segment with any detection is detected in full."""
    det = np.asarray(detected, dtype=bool)
    y = np.asarray(labels).astype(bool)
    if det.shape != y.shape or det.ndim != 1:
        raise ValueError(f"detected: expected a 1-d array of shape {y.shape} (one per label), received {det.shape}")
    return _adjust_flat(det, _segment_ids(y))


def _segment_ids(y: np.ndarray, offset: int = 0) -> np.ndarray:
    """Per point, the id of its labelled segment (counting from `offset`), -1 for normal points."""
    starts = y & ~np.r_[False, y[:-1]]
    return np.where(y, offset + np.cumsum(starts) - 1, -1).astype(np.int64)


def _prepare(scores: Arrays, labels: Arrays):
    """Flat scores (NaN -> -inf), flat bool labels, and per positive point its global segment id."""
    single = isinstance(scores, np.ndarray) or (len(scores) and np.isscalar(scores[0]))
    s_list = [scores] if single else list(scores)
    y_list = [labels] if single else list(labels)
    if not s_list:
        raise ValueError("scores: expected an array of scores, or a non-empty list of arrays (one per entity)")
    if len(s_list) != len(y_list):
        raise ValueError(f"scores and labels: expected as many arrays, received {len(s_list)} and {len(y_list)}")
    ss, yy, gg, offset = [], [], [], 0
    for k, (s, y) in enumerate(zip(s_list, y_list)):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        y = np.asarray(y).reshape(-1)
        if s.shape != y.shape:
            raise ValueError(f"scores and labels of entity {k}: expected the same length, received {len(s)} "
                             f"scores and {len(y)} labels")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"labels of entity {k}: expected 0/1 values, received {np.unique(y)[:5].tolist()}")
        y = y.astype(bool)
        g = _segment_ids(y, offset)
        offset = int(g.max()) + 1 if (g >= 0).any() else offset
        ss.append(np.where(np.isnan(s), -np.inf, s))
        yy.append(y)
        gg.append(g)
    return np.concatenate(ss), np.concatenate(yy), np.concatenate(gg), s_list


def at_threshold(scores: Arrays, labels: Arrays, threshold: float | Sequence[float], *,
                 adjust: bool = False) -> Counts:
    """Counts at a threshold; with lists, `threshold` may give one value per entity (e.g. from its training)."""
    s, y, g, s_list = _prepare(scores, labels)
    if np.ndim(threshold) == 0:
        thr = np.full(len(s), float(threshold))
    else:
        t = np.asarray(threshold, dtype=np.float64)
        if len(t) != len(s_list):
            raise ValueError(f"threshold: expected one per entity ({len(s_list)}), received {len(t)}")
        thr = np.repeat(t, [len(np.asarray(x).reshape(-1)) for x in s_list])
    det = s >= thr
    if adjust:
        det = _adjust_flat(det, g)
    tp = int((det & y).sum())
    fp = int((det & ~y).sum())
    shown = float(threshold) if np.ndim(threshold) == 0 else float("nan")
    return Counts(shown, tp, fp, int(y.sum()) - tp, int((~y).sum()) - fp, adjust)


def _adjust_flat(det: np.ndarray, g: np.ndarray) -> np.ndarray:
    pos = g >= 0
    if not pos.any():
        return det
    hit = np.zeros(g.max() + 1, dtype=bool)
    np.logical_or.at(hit, g[pos], det[pos])
    out = det.copy()
    out[pos] = hit[g[pos]]
    return out


def best_f1(scores: Arrays, labels: Arrays, *, adjust: bool = False) -> Counts:
    """The threshold with the highest F1 (point-wise, or after point adjustment), and its counts.

    One sort: a positive unit (a labelled point, or with `adjust` a whole segment weighted by its length and keyed
    by its highest score) is detected once the threshold drops to its key; each normal point adds a false positive
    at its score. Ties go to the highest threshold (the fewest alarms). Without labelled points F1 is 0 everywhere
    and the threshold returned detects nothing.
    """
    s, y, g, _ = _prepare(scores, labels)
    neg = np.sort(s[~y])
    if adjust and y.any():
        n_seg = g.max() + 1
        key = np.full(n_seg, -np.inf)
        np.maximum.at(key, g[y], s[y])
        weight = np.bincount(g[y], minlength=n_seg).astype(np.int64)
    else:
        key, weight = s[y], np.ones(int(y.sum()), dtype=np.int64)
    order = np.argsort(key)
    key, weight = key[order], weight[order]
    n_pos, n_neg = int(weight.sum()), len(neg)
    cand = np.unique(np.r_[key, neg])
    cand = cand[np.isfinite(cand)][::-1]
    top = np.nextafter(float(cand[0]), np.inf) if len(cand) else np.inf
    if n_pos == 0 or not len(cand):
        return Counts(top, 0, 0, n_pos, n_neg, adjust)
    suffix = np.r_[np.cumsum(weight[::-1])[::-1], 0]  # weight of units with key >= key[i]
    tp = suffix[np.searchsorted(key, cand, side="left")]
    fp = n_neg - np.searchsorted(neg, cand, side="left")
    f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))
    i = int(np.argmax(f1))
    if f1[i] == 0:
        return Counts(top, 0, 0, n_pos, n_neg, adjust)
    return Counts(float(cand[i]), int(tp[i]), int(fp[i]), n_pos - int(tp[i]), n_neg - int(fp[i]), adjust)
