"""NAB scoring (Numenta Anomaly Benchmark v1.1), as published in numenta/NAB, vectorised.

The rules, each checked against NAB's `nab/sweeper.py`, `nab/optimizer.py`, `nab/util.py` and `nab/runner.py`
(commit ea702d7) and proven on NAB's own detector outputs by `benchmarks/nab_scorer_check.py`:

* Labels are windows of rows `[start, end]` (inclusive; `labels/combined_windows.json` gives their timestamps,
  which must be timestamps of the file).
* The probationary period is the first `min(floor(0.15 * n), 0.15 * 5000)` rows of a file (so at most 750 rows):
  detections there are ignored, and windows only count through their rows after it.
* A detection is a row whose anomaly score is `>= threshold`.
* Inside a window of width w ending at row e, a detection at row i is worth
  `A_tp * S(-(e - i + 1) / w) / S(-1)` with `S(x) = 2 * sigmoid(-5x) - 1`; only the window's best (= earliest)
  detection counts; a window without detection costs `-A_fn`.
* Outside windows a detection costs `A_fp * S(x)` (negative): before any window `x` is far away (`S = -1`);
  after a window of width w ending at row e, `x = (i - e) / (w - 1)`, and `S = -1` once `x > 3`.
* One threshold for the whole corpus per profile: NAB sweeps every distinct anomaly score of all files at once and
  keeps the threshold with the highest summed score (ties: the highest threshold).
* Normalised score: `100 * (raw - null) / (perfect - null)` over the corpus, with null = the detector that never
  fires (`-A_fn` per scorable window) and perfect = `A_tp` per window (NAB's runner), which is what a detector
  firing on the first row of every window and nowhere else earns.

NaN anomaly scores (a detector's warm-up) are never detections.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_FRACTION = 0.15
_PROBATION_CAP_ROWS = 5000  # NAB: the probationary period is at most 15% of 5000 rows


@dataclass(frozen=True)
class Profile:
    """A NAB cost matrix: weights of a true positive, a false positive and a missed window (all positive)."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
}


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """Profiles from NAB's `config/profiles.json` ({name: {"CostMatrix": {tpWeight, fpWeight, fnWeight, ...}}})."""
    raw = json.loads(Path(path).read_text())
    out = {}
    for name, spec in raw.items():
        try:
            cm = spec["CostMatrix"]
            out[name] = Profile(name, tp=float(cm["tpWeight"]), fp=float(cm["fpWeight"]), fn=float(cm["fnWeight"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: profile {name!r} has no CostMatrix with tpWeight, fpWeight and fnWeight "
                             f"({exc}); expected NAB's config/profiles.json layout") from None
    return out


def probation_rows(n: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file of n rows that are not scored: min(floor(fraction * n), fraction * 5000)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction: expected a probationary fraction in [0, 1), received {fraction}")
    return int(math.ceil(min(math.floor(fraction * n), fraction * _PROBATION_CAP_ROWS)))


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's S(x) = 2 * sigmoid(-5x) - 1, and -1 beyond x > 3 (a false positive far after a window)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 4.0))) - 1.0)  # min: no overflow


_MAX_TP = float(scaled_sigmoid(-1.0))


@dataclass(frozen=True)
class LabelledFile:
    """How each row of one file would score if detected, before the profile's weights.

    `window[i]` is the window index of row i (-1 outside windows); `unit[i]` is `S(pos) / S(-1)` inside a window
    and `S(x)` (<= 0) outside; rows before `probation` are not scored.
    """

    name: str
    n: int
    windows: np.ndarray  # (k, 2) inclusive row ranges
    probation: int
    window: np.ndarray
    unit: np.ndarray

    @property
    def scored_windows(self) -> int:
        """Windows with at least one row after the probationary period (the ones that count)."""
        return int((self.windows[:, 1] >= self.probation).sum()) if len(self.windows) else 0


def label_file(name: str, n: int, windows: Sequence[Sequence[int]] | np.ndarray,
               probation_fraction: float = PROBATION_FRACTION) -> LabelledFile:
    """Lay out a file of n rows with windows given as inclusive row ranges `[(start, end), ...]`."""
    w = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if len(w):
        if (w[:, 0] > w[:, 1]).any() or w.min() < 0 or w.max() >= n:
            raise ValueError(f"{name}: windows must be row ranges start <= end within 0..{n - 1}, "
                             f"received {w.tolist()}")
        if (w[1:, 0] <= w[:-1, 1]).any():
            raise ValueError(f"{name}: windows must be sorted and must not overlap, received {w.tolist()}")
    idx = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    unit = np.full(n, -1.0)  # before any window: as far as can be
    if len(w):
        width = (w[:, 1] - w[:, 0] + 1).astype(np.float64)
        # the last window starting at or before each row: the row is in it, or after it
        k = np.searchsorted(w[:, 0], idx, side="right") - 1
        seen = k >= 0
        kk = np.where(seen, k, 0)
        inside = seen & (idx <= w[kk, 1])
        window[inside] = kk[inside]
        pos = -(w[kk, 1] - idx + 1) / width[kk]
        unit[inside] = scaled_sigmoid(pos[inside]) / _MAX_TP
        after = seen & ~inside
        with np.errstate(divide="ignore", invalid="ignore"):
            # a one-row window gives NAB a zero division; treat what follows it as far away (S = -1)
            x = np.where(width[kk] > 1, (idx - w[kk, 1]) / (width[kk] - 1), np.inf)
        unit[after] = scaled_sigmoid(x[after])
    return LabelledFile(name, n, w, probation_rows(n, probation_fraction), window, unit)


def label_file_by_time(name: str, timestamps: Sequence, windows: Sequence[Sequence],
                       probation_fraction: float = PROBATION_FRACTION) -> LabelledFile:
    """Lay out a file from its timestamps and windows of `[start, end]` timestamps (NAB's combined_windows.json).

    Window limits must be timestamps of the file, each present once (NAB refuses labels that are not); other
    timestamps may repeat (a few NAB files do).
    """
    ts = pd.DatetimeIndex(pd.to_datetime(pd.Index(timestamps)))
    rows = []
    for lim in windows:
        try:
            limits = [pd.Timestamp(x) for x in lim]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: window {lim!r} is not a [start, end] pair of timestamps ({exc})") from None
        if len(limits) != 2:
            raise ValueError(f"{name}: window {lim!r} is not a [start, end] pair of timestamps")
        found = [np.flatnonzero(ts == t) for t in limits]
        # NAB's files repeat a few timestamps; a window limit must still name exactly one row
        bad = [str(t) for t, at in zip(limits, found) if len(at) != 1]
        if bad:
            raise ValueError(f"{name}: window limits {bad} do not match exactly one row's timestamp; NAB window "
                             "limits must be timestamps of the file, each present once")
        rows.append((int(found[0][0]), int(found[1][0])))
    return label_file(name, len(ts), rows, probation_fraction)


def _weights(f: LabelledFile, p: Profile) -> np.ndarray:
    return np.where(f.window >= 0, f.unit * p.tp, f.unit * p.fp)


def _check(files: Sequence[LabelledFile], scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(files) != len(scores):
        raise ValueError(f"scores: expected one array per file ({len(files)}), received {len(scores)}")
    out = []
    for f, s in zip(files, scores):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        if len(s) != f.n:
            raise ValueError(f"scores for {f.name}: expected {f.n} anomaly scores (one per row), received {len(s)}")
        out.append(s)
    return out


@dataclass(frozen=True)
class Sweep:
    """Corpus score at every distinct threshold, thresholds descending; the first entry detects nothing."""

    thresholds: np.ndarray
    scores: np.ndarray

    def best(self) -> tuple[float, float]:
        """(threshold, raw score) of the best threshold; ties go to the highest threshold, as in NAB."""
        i = int(np.argmax(self.scores))
        return float(self.thresholds[i]), float(self.scores[i])


def sweep(files: Sequence[LabelledFile], scores: Sequence[np.ndarray], profile: Profile) -> Sweep:
    """The raw corpus score for every threshold, in O(n log n): one sort of all scored rows, then running sums.

    Lowering the threshold past a row adds its weight if it is outside a window, or raises its window's value to
    the row's weight if that is higher than the window's best so far (a per-window running maximum).
    """
    scores = _check(files, scores)
    s_parts, v_parts, g_parts = [], [], []
    n_windows, offset = 0, 0
    for f, s in zip(files, scores):
        keep = (np.arange(f.n) >= f.probation) & ~np.isnan(s)
        s_parts.append(s[keep])
        v_parts.append(_weights(f, profile)[keep])
        g = f.window[keep]
        g_parts.append(np.where(g >= 0, g + offset, -1))
        offset += len(f.windows)
        n_windows += f.scored_windows
    s = np.concatenate(s_parts) if s_parts else np.zeros(0)
    v = np.concatenate(v_parts) if v_parts else np.zeros(0)
    g = np.concatenate(g_parts) if g_parts else np.zeros(0, dtype=np.int64)
    base = -profile.fn * n_windows
    top = np.nextafter(max(float(s.max()) if len(s) else 1.0, 1.0), np.inf)  # "detect nothing" (NAB uses 1.1)
    if not len(s):
        return Sweep(np.array([top]), np.array([base]))
    order = np.argsort(-s, kind="stable")
    s, v, g = s[order], v[order], g[order]
    delta = np.where(g < 0, v, 0.0)
    inw = np.flatnonzero(g >= 0)
    if len(inw):
        # running best per window in sweep order; a window's first detection lifts it from -fn
        best = pd.Series(v[inw]).groupby(g[inw]).cummax().to_numpy()
        prev = pd.Series(best).groupby(g[inw]).shift(1).to_numpy()
        prev = np.where(np.isnan(prev), -profile.fn, prev)
        delta[inw] = best - prev
    total = base + np.cumsum(delta)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last row of each distinct score
    return Sweep(np.r_[top, s[last]], np.r_[base, total[last]])


def score_files(files: Sequence[LabelledFile], scores: Sequence[np.ndarray], profile: Profile,
                threshold: float) -> pd.DataFrame:
    """Per-file raw NAB score and row counts (tp, tn, fp, fn over scored rows) at one threshold."""
    scores = _check(files, scores)
    rows = []
    for f, s in zip(files, scores):
        scored = np.arange(f.n) >= f.probation
        det = scored & (np.nan_to_num(s, nan=-np.inf) >= threshold)
        inw = f.window >= 0
        v = _weights(f, profile)
        best = np.full(len(f.windows), -np.inf)
        np.maximum.at(best, f.window[det & inw], v[det & inw])  # a window's best (= earliest) detection
        counted = f.windows[:, 1] >= f.probation if len(f.windows) else np.zeros(0, dtype=bool)
        total = float(v[det & ~inw].sum()) + float(np.where(np.isfinite(best), best, -profile.fn)[counted].sum())
        rows.append({"file": f.name, "threshold": threshold, "score": total,
                     "tp": int((det & inw).sum()), "tn": int((scored & ~det & ~inw).sum()),
                     "fp": int((det & ~inw).sum()), "fn": int((scored & ~det & inw).sum()),
                     "windows": f.scored_windows, "rows": f.n})
    return pd.DataFrame(rows)


def normalise(raw: float, n_windows: int, profile: Profile) -> float:
    """100 * (raw - null) / (perfect - null): null never fires (-A_fn per window), perfect earns A_tp per window."""
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    if perfect == null:
        raise ValueError("normalise: the corpus has no scorable windows, so the NAB score is undefined")
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class ProfileResult:
    """One profile's outcome: the corpus threshold, the raw and normalised scores, and per-file scores."""

    profile: str
    threshold: float
    raw: float
    score: float
    per_file: pd.DataFrame


def score_corpus(files: Sequence[LabelledFile], scores: Sequence[np.ndarray],
                 profiles: Mapping[str, Profile] | None = None,
                 thresholds: Mapping[str, float] | None = None) -> dict[str, ProfileResult]:
    """NAB score of one detector on a corpus, per profile.

    The threshold is optimised over the whole corpus per profile (NAB's optimize step) unless `thresholds` gives
    one per profile (NAB's score step with fixed thresholds, e.g. from config/thresholds.json).
    """
    profiles = dict(PROFILES if profiles is None else profiles)
    n_windows = sum(f.scored_windows for f in files)
    out = {}
    for name, p in profiles.items():
        if thresholds is not None and name in thresholds:
            thr = float(thresholds[name])
        else:
            thr, _ = sweep(files, scores, p).best()
        per_file = score_files(files, scores, p, thr)
        raw = float(per_file["score"].sum())
        out[name] = ProfileResult(name, thr, raw, normalise(raw, n_windows, p), per_file)
    return out
