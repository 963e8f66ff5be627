"""Out-of-sample CPU risk of each candidate request, estimated causally by a rolling backtest inside the history.

Why: a request set at the in-sample p95 is exceeded more often than 5 % afterwards (about 8 % on Bitbrains for KRR),
because usage drifts and a quantile estimated from a few weeks of autocorrelated samples is noisy. So we do not
trust the in-sample exceedance; we measure, on the history alone, what a decision rule really delivers later.

The decision rule. On a training window, a candidate request c gets a *score*: its in-sample exceedance
r(c) = share of samples above c when r(c) > 0, and -c / max(window) once c covers the window's peak (how much
headroom above the peak, as a negative number). The score falls as c grows, so "the smallest candidate whose score
is <= s" is one rule per level s, from loose quantiles (s near 1) through the peak (s = -1) to headroom above it
(s = -1.3 is the peak x 1.3). The headroom part is what lets the rule follow growing usage.

The backtest. Splits end at times t_1 < ... < t_K spread over the history: train on [t_k - window, t_k), test on
[t_k, t_k + horizon), the same window and horizon the recommendation will be made and used with. For a workload and
a candidate c with score s on the deployment window (the last `window` of the history), the rule at level s picks
c_k in split k; its realised test exceedance o_k(c_k) is one out-of-sample draw of what "level s" delivers. The
estimate is their mean over splits, shrunk towards the class's mean curve at the same level (weight `prior_splits`
against the workload's own split count), so a workload with few splits borrows from its class and a bursty or
drifting one keeps its own, higher, risk. Averaging o_k at the *same rule level* rather than at the same request
transfers the lesson (how far the level must be raised) and not the stale request itself. The lesson only ever
raises the level: the estimate is floored at the candidate's in-sample exceedance on the deployment window, since
a history in which usage happened to fall after the splits would otherwise teach requests below the window's own
quantile, and a fall is not a trend to bet on (July -> August on Bitbrains: the load came back).

Only samples at or before the history's end are read: nothing after it exists for this code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DAY_NS = 86_400 * 10**9
# levels at which the class prior curve is tabulated: headroom above the peak, then in-sample exceedance shares
_LEVELS = np.r_[-np.geomspace(3.0, 1.0, 25), np.geomspace(1e-4, 1.0, 60)]


@dataclass(frozen=True)
class Splits:
    """Backtest geometry in int64 ns: split ends `ends`, training `window` and test `horizon` lengths."""

    ends: np.ndarray
    window: int
    horizon: int
    shrunk: bool  # True when the history was too short for the configured window + horizon


def make_splits(start: int, end: int, window_ns: int, horizon_ns: int, n_splits: int) -> Splits:
    """K split ends evenly spread so each training window and test horizon lies inside [start, end].

    A history shorter than window + horizon (+ a quarter for the spread) shrinks both in proportion, so short
    histories still get a (weaker) backtest; the caller reports that.
    """
    span = end - start
    need = window_ns + horizon_ns
    shrunk = span < need * 1.25
    if shrunk:
        scale = span / (need * 1.25)
        window_ns, horizon_ns = int(window_ns * scale), int(horizon_ns * scale)
    lo, hi = start + window_ns, end - horizon_ns
    ends = np.linspace(lo, hi, n_splits).astype(np.int64) if n_splits > 1 else np.array([hi], np.int64)
    return Splits(np.unique(ends), window_ns, horizon_ns, shrunk)


def _share_above(sorted_values: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = sorted_values.size
    return 1.0 - np.searchsorted(sorted_values, c, side="right") / n


def scores(sorted_window: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """The rule's score of each candidate on a training window (see the module docstring); non-increasing."""
    r = _share_above(sorted_window, cand)
    peak = max(float(sorted_window[-1]), 1e-6)  # an idle window: any request covers it, by a huge headroom
    return np.where(r > 0, r, -cand / peak)


def _pick(split_scores: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Index of the smallest candidate whose score <= level, the largest candidate when none is."""
    idx = np.searchsorted(-split_scores, -level, side="left")
    return np.minimum(idx, split_scores.size - 1)


@dataclass(frozen=True)
class WorkloadBacktest:
    """One workload's backtest: per split, candidate scores on train and exceedance on test."""

    split_scores: np.ndarray  # (K_w, C)
    test_exceed: np.ndarray  # (K_w, C)

    def curve(self, level: np.ndarray) -> np.ndarray:
        """Mean realised test exceedance of the rule at each `level` (NaN without splits)."""
        if self.split_scores.shape[0] == 0:
            return np.full(np.shape(level), np.nan)
        out = [ex[_pick(sc, level)] for sc, ex in zip(self.split_scores, self.test_exceed)]
        return np.mean(out, axis=0)


def backtest(ts: np.ndarray, cpu: np.ndarray, cand: np.ndarray, splits: Splits, min_points: int) -> WorkloadBacktest:
    """Run the rolling backtest for one workload (`ts`, `cpu`: its finite history samples, ts sorted)."""
    sc, ex = [], []
    for t in splits.ends:
        a, b, c = np.searchsorted(ts, [t - splits.window, t, t + splits.horizon], side="left")
        if b - a < min_points or c - b < min_points:
            continue  # too little data in this split (a new or gappy workload): the class prior stands in
        train, test = np.sort(cpu[a:b]), np.sort(cpu[b:c])
        sc.append(scores(train, cand))
        ex.append(_share_above(test, cand))
    shape = (len(sc), cand.size)
    return WorkloadBacktest(np.array(sc).reshape(shape), np.array(ex).reshape(shape))


def class_curve(tests: list[WorkloadBacktest]) -> np.ndarray:
    """The class's prior: mean over its workloads with splits of their curves, tabulated at `_LEVELS` (NaN if none)."""
    curves = [t.curve(_LEVELS) for t in tests if t.split_scores.shape[0]]
    if not curves:
        return np.full(_LEVELS.size, np.nan)
    return np.maximum.accumulate(np.mean(curves, axis=0))  # monotone in the level, as the rule is


def expected_risk(bt: WorkloadBacktest, prior: np.ndarray, deploy_scores: np.ndarray,
                  prior_splits: float) -> tuple[np.ndarray, int]:
    """Expected out-of-sample exceedance of each candidate given its deployment-window score, and the weight used.

    own (mean over the workload's splits) and the class prior (interpolated at the same level) are mixed with
    weights K_w and `prior_splits`. With neither, the in-sample exceedance is returned as the only estimate left.
    The estimate is never below the candidate's in-sample exceedance on the deployment window: the backtest may
    say a request will be exceeded more often than in the window, never less.
    """
    k = bt.split_scores.shape[0]
    own = bt.curve(deploy_scores)
    finite = np.isfinite(prior)
    if finite.any():
        # a level between tabulated points takes the next looser one: steps, not a blend, keep it conservative
        idx = np.minimum(np.searchsorted(_LEVELS, deploy_scores, side="left"), _LEVELS.size - 1)
        pri = prior[idx]
    else:
        pri = np.full(deploy_scores.size, np.nan)
    if k and finite.any():
        est = (k * own + prior_splits * pri) / (k + prior_splits)
    elif k:
        est = own
    elif finite.any():
        est = pri
    else:
        est = np.where(deploy_scores > 0, deploy_scores, 0.0)
    # never calmer than the deployment window itself: a backtest that saw usage fall after its splits would
    # otherwise set requests below the last window's own quantile (on Bitbrains July -> August, 20 % in-sample
    # exceedance "expected" at 4 % and realised at 50 % when the load came back)
    est = np.maximum(est, np.where(deploy_scores > 0, deploy_scores, 0.0))
    # the estimate must not rise with the request (larger requests are never riskier)
    return np.minimum.accumulate(est), k


def feasible(expected: np.ndarray, target: float) -> tuple[np.ndarray, bool]:
    """Indices of the candidates whose expected risk (non-increasing in the request) meets `target`, and whether
    none does; then the least expected risk any candidate reaches is the bound, from its smallest candidate on
    (larger ones would buy no expected risk, only cost), and the caller says so."""
    feas = np.flatnonzero(expected <= target + 1e-12)
    if feas.size:
        return feas, False
    return np.flatnonzero(expected <= expected.min() + 1e-12), True
