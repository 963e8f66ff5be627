"""The post-step after a detector: calibrated scores in [0, 1] -> a threshold -> alarms and anomaly events.

Scores and decisions are kept apart (STYLE.md 10): a detector only scores; this module picks a threshold and says
why, as a `Threshold` value (the number, the rule, the reason, and what it does on the scores it was chosen on).
A point alarms when its score is at or above the threshold; a NaN score (no input there) never alarms.

Rules:
  fixed(scores, t)          a threshold set by hand or carried over from a benchmark
  best_f1(scores, labels)   the threshold maximising point-wise F1 (benchmarks only: it looks at the labels)
  unsupervised(scores, ...) label-free: `calibrated` (1 - contamination: the calibrated score is the training
                            probability of a lower score, so on training-like data that fraction alarms), `quantile`
                            (the empirical 1 - contamination quantile of these scores), or `pot` (peaks over
                            threshold: a generalised Pareto tail fitted to the highest scores, threshold at a risk
                            level; Siffer et al., KDD 2017)
  alarms(frame, t)          points above t grouped into events per series, nearby points merged
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

_EVENT_COLUMNS = ["series", "start", "end", "peak_ts", "peak_score", "n_points", "threshold"]


@dataclass(frozen=True)
class Threshold:
    """A threshold on calibrated scores, the rule that chose it and why, and what it does on the scores it was
    chosen on (`f1`, `precision`, `recall` only when labels were given)."""

    threshold: float
    rule: str
    reason: str
    n_scores: int
    n_alarms: int
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None

    @property
    def alarm_rate(self) -> float:
        return self.n_alarms / self.n_scores if self.n_scores else 0.0

    def flags(self, scores) -> np.ndarray:
        """True where a score is at or above the threshold (NaN scores are never alarms)."""
        s = _scores(scores)
        return np.greater_equal(s, self.threshold, where=~np.isnan(s), out=np.zeros(s.shape, bool))


def fixed(scores, threshold: float) -> Threshold:
    """A given threshold, reported with the alarms it raises on `scores`."""
    t = _check_threshold(threshold)
    s = _finite(_scores(scores))
    n = int((s >= t).sum())
    return Threshold(t, "fixed", f"threshold {t:g} given; {n} of {s.size} scores at or above it", s.size, n)


def best_f1(scores, labels) -> Threshold:
    """The threshold with the best point-wise F1 against `labels` (True = anomalous point).

    Every distinct score is a candidate; ties in F1 go to the highest threshold (fewest alarms). Points with a NaN
    score never alarm, but their positive labels still count as missed.
    """
    s = _scores(scores)
    y = np.asarray(labels)
    if y.shape != s.shape:
        raise ValueError(f"labels: expected one label per score ({s.shape[0]}), received shape {y.shape}")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels: expected booleans or 0/1, received other values; pass labels == 1")
        y = y.astype(bool)
    from models.evaluation.detection import best_f1 as best_counts

    ok = ~np.isnan(s)
    positives = int(y.sum())
    if positives == 0:
        return Threshold(1.0, "best_f1", "no positive labels: F1 is 0 at every threshold; threshold set to the top "
                         "of the scale", int(ok.sum()), int((s[ok] >= 1.0).sum()), 0.0, 0.0, 0.0)
    c = best_counts(s, y)
    return Threshold(c.threshold, "best_f1",
                     f"maximises point F1 ({c.f1:.3f}: precision {c.precision:.3f}, recall {c.recall:.3f}) over "
                     f"{int(ok.sum())} scored points, {positives} labelled anomalous", int(ok.sum()), c.tp + c.fp,
                     c.f1, c.precision, c.recall)


def unsupervised(scores=None, *, method: str = "pot", contamination: float = 0.001, risk: float = 1e-3,
                 init_quantile: float = 0.98, min_excesses: int = 20) -> Threshold:
    """A threshold without labels (see the module docstring for the three methods).

    contamination  expected fraction of anomalous points (methods `calibrated`, `quantile`)
    risk           POT: the probability of a score above the threshold under the fitted tail
    init_quantile  POT: the quantile whose excesses the tail is fitted to; fewer than `min_excesses` excesses
                   and POT falls back to the `quantile` rule at `risk`, saying so
    """
    if method not in ("calibrated", "quantile", "pot"):
        raise ValueError(f"method: expected 'calibrated', 'quantile' or 'pot', received {method!r}")
    for name, v in (("contamination", contamination), ("risk", risk), ("init_quantile", init_quantile)):
        if not 0 < v < 1:
            raise ValueError(f"{name}: expected a fraction in (0, 1), received {v!r}")
    if method == "calibrated":
        s = _finite(_scores(scores)) if scores is not None else np.zeros(0)
        t = 1.0 - contamination
        return Threshold(t, "unsupervised:calibrated", f"1 - contamination ({contamination:g}): calibrated scores "
                         "are training probabilities, so that share of training-like points alarms",
                         s.size, int((s >= t).sum()))
    if scores is None:
        raise ValueError(f"scores: method {method!r} needs the scores to set the threshold on")
    s = _finite(_scores(scores))
    if s.size == 0:
        raise ValueError("scores: no finite scores to set a threshold on")
    if method == "quantile":
        return _quantile_rule(s, contamination, "unsupervised:quantile", "")
    return _pot(s, risk, init_quantile, min_excesses)


def _quantile_rule(s: np.ndarray, frac: float, rule: str, why: str) -> Threshold:
    t = float(np.quantile(s, 1.0 - frac, method="higher"))
    n = int((s >= t).sum())
    return Threshold(t, rule, f"{why}the {1 - frac:g} quantile of {s.size} scores; {n} at or above it", s.size, n)


def _pot(s: np.ndarray, risk: float, init_quantile: float, min_excesses: int) -> Threshold:
    # the tail is fitted on the surprisal -log(1 - s): calibrated scores crowd towards 1, and on this scale the
    # calibrator's exponential tail becomes a straight line the Pareto fit handles well
    y = -np.log(np.clip(1.0 - s, 1e-12, 1.0))
    u = float(np.quantile(y, init_quantile))
    exc = y[y > u] - u
    if exc.size < min_excesses or risk >= 1 - init_quantile:
        why = (f"POT needs {min_excesses} excesses over the {init_quantile:g} quantile and a risk below "
               f"{1 - init_quantile:g} (had {exc.size}, risk {risk:g}); fell back to ")
        return _quantile_rule(s, risk, "unsupervised:quantile", why)
    mean, var = float(exc.mean()), float(exc.var())
    if var > 0:  # generalised Pareto by the method of moments, shape kept where the moments exist
        xi = float(np.clip(0.5 * (1 - mean**2 / var), -0.5, 0.45))
        sigma = 0.5 * mean * (mean**2 / var + 1)
    else:
        xi, sigma = 0.0, max(mean, 1e-12)
    r = risk * y.size / exc.size
    yq = u + (sigma / xi * (r ** (-xi) - 1) if abs(xi) > 1e-6 else -sigma * np.log(r))
    t = float(np.clip(1.0 - np.exp(-yq), 0.0, 1.0))
    n = int((s >= t).sum())
    return Threshold(t, "unsupervised:pot",
                     f"Pareto tail (shape {xi:.3f}, scale {sigma:.3g}) fitted to the {exc.size} scores above the "
                     f"{init_quantile:g} quantile; threshold at risk {risk:g}; {n} of {s.size} scores at or above it",
                     s.size, n)


def alarms(score_frame: pd.DataFrame, threshold: float | Threshold, *, min_gap: int | str | pd.Timedelta = 0,
           ) -> pd.DataFrame:
    """Anomaly events from a detector's score frame (columns series, ts, score).

    Points at or above the threshold are grouped per series; two alarmed points belong to the same event when at
    most `min_gap` rows lie between them (an int) or they are at most `min_gap` apart in time (a duration).
    Returns one row per event: series, start, end (first and last alarmed ts), peak_ts, peak_score, n_points
    (alarmed points in the event) and the threshold crossed, sorted by series and start.
    """
    t = threshold.threshold if isinstance(threshold, Threshold) else _check_threshold(threshold)
    missing = [c for c in ("series", "ts", "score") if c not in getattr(score_frame, "columns", ())]
    if not isinstance(score_frame, pd.DataFrame) or missing:
        raise SchemaError(f"score_frame: expected a DataFrame with columns series, ts, score (a detector's score() "
                          f"output); missing {missing or ['series', 'ts', 'score']}")
    by_time = not isinstance(min_gap, (int, np.integer))
    gap = pd.Timedelta(min_gap) if by_time else int(min_gap)
    if (by_time and gap < pd.Timedelta(0)) or (not by_time and gap < 0):
        raise ValueError(f"min_gap: expected rows >= 0 or a duration >= 0, received {min_gap!r}")
    f = score_frame[["series", "ts", "score"]].copy()
    f["ts"] = pd.to_datetime(f["ts"], utc=True)
    f = f.sort_values(["series", "ts"], kind="stable").reset_index(drop=True)
    f["row"] = f.groupby("series", sort=False).cumcount()
    hit = f[f["score"].to_numpy(dtype=np.float64) >= t]  # NaN compares False
    if hit.empty:
        return pd.DataFrame({c: pd.Series(dtype=d) for c, d in zip(
            _EVENT_COLUMNS, [object, "datetime64[ns, UTC]", "datetime64[ns, UTC]", "datetime64[ns, UTC]",
                             float, int, float])})
    same = hit["series"].eq(hit["series"].shift())
    apart = hit["ts"].diff() if by_time else hit["row"].diff() - 1
    event = (~same | (apart > gap)).cumsum()
    peak = hit.loc[hit.groupby(event)["score"].idxmax()]
    grouped = hit.groupby(event)
    out = pd.DataFrame({
        "series": grouped["series"].first().to_numpy(), "start": grouped["ts"].min().to_numpy(),
        "end": grouped["ts"].max().to_numpy(), "peak_ts": peak["ts"].to_numpy(),
        "peak_score": peak["score"].to_numpy(dtype=np.float64), "n_points": grouped.size().to_numpy(),
    })
    out["threshold"] = t
    for c in ("start", "end", "peak_ts"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out.reset_index(drop=True)


def _scores(scores) -> np.ndarray:
    if isinstance(scores, pd.DataFrame):
        if "score" not in scores.columns:
            raise SchemaError(f"scores: a DataFrame needs a `score` column, received {list(scores.columns)}")
        scores = scores["score"]
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores: expected a 1-d array of calibrated scores, received shape {s.shape}")
    if np.isinf(s).any() or ((s < 0) | (s > 1)).any():
        raise ValueError("scores: expected calibrated scores in [0, 1] (NaN allowed); pass a detector's score() "
                         "output, not raw scores")
    return s


def _finite(s: np.ndarray) -> np.ndarray:
    return s[~np.isnan(s)]


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
            or not 0 <= float(threshold) <= 1:
        raise ValueError(f"threshold: expected a number in [0, 1] (scores are calibrated), received {threshold!r}")
    return float(threshold)
