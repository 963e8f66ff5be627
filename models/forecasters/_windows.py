"""Causal feature building shared by the global forecasters (gbm, lstm): one row per (series, origin, horizon).

An origin T is a position in a series (its last observed step); the target is y[T + h]. Every feature of a row uses
y[0..T] only: values at T + h - k * season are taken only when they are at or before T (NaN otherwise), rolling
statistics end at T. Values are divided by the series' level at the origin (`level`: mean |y| over the last
season) so one model serves series of any scale; the forecast is multiplied back.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

DAY_NS = 86_400 * 10**9


def season_steps(step: pd.Timedelta) -> int:
    """Steps in one day at `step` (at least 2): the daily season every global model uses."""
    return max(int(round(pd.Timedelta(days=1) / step)), 2)


def _cum(y: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(y)])


def window_mean(c: np.ndarray, T: np.ndarray, w: int) -> np.ndarray:
    """Mean of y[T - w + 1 .. T] from its cumulative sum `c` (`_cum`), a shorter window near the start."""
    lo = np.maximum(T + 1 - w, 0)
    return (c[T + 1] - c[lo]) / (T + 1 - lo)


LEVEL_FLOORS = (0.01, 0.001)  # (share of the last week's mean, share of its peak)


def level(y: np.ndarray, T: np.ndarray, season: int) -> np.ndarray:
    """Scale of each origin: mean |y| over the last season, floored at a hundredth of the last week's mean and a
    thousandth of its peak (so a series idle for a day does not blow up), 1 for a week of zeros."""
    a = np.abs(y)
    ca = _cum(a)
    day = window_mean(ca, T, season)
    week = window_mean(ca, T, 7 * season)
    peak = pd.Series(a).rolling(7 * season, min_periods=1).max().to_numpy()[T]
    out = np.maximum(np.maximum(day, LEVEL_FLOORS[0] * week), LEVEL_FLOORS[1] * peak)
    return np.where(out > 0, out, 1.0)


def observed_origins(observed: np.ndarray, season: int, share: float = 0.9) -> np.ndarray:
    """Positions fit to train from: observed themselves, with at least `share` of the last season observed. Long
    gaps are interpolated before the model sees them; rows whose recent past is such a straight line would teach
    it (and its conformal offsets) about invented data."""
    frac = window_mean(_cum(observed.astype(np.float64)), np.arange(len(observed)), season)
    return observed & (frac >= share)


def gather(y: np.ndarray, pos: np.ndarray, T: np.ndarray) -> np.ndarray:
    """y[pos] where 0 <= pos <= T (causal), NaN elsewhere."""
    ok = (pos >= 0) & (pos <= T)
    out = np.full(pos.shape, np.nan)
    out[ok] = y[pos[ok]]
    return out


def calendar(t0_ns: int, step_ns: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of the UTC day, day of week with Monday = 0) at positions `pos` of a grid starting at t0."""
    ns = t0_ns + pos.astype(np.int64) * step_ns
    day = np.floor_divide(ns, DAY_NS)
    return (ns - day * DAY_NS) / DAY_NS, ((day + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday


class SeriesWindows:
    """Precomputed running statistics of one series, to build feature rows for many origins cheaply."""

    def __init__(self, y: np.ndarray, t0_ns: int, step_ns: int, season: int, lags: int,
                 windows: tuple[int, ...], seasons_back: int):
        self.y, self.t0, self.step, self.S = y, t0_ns, step_ns, season
        self.lags, self.windows, self.K = lags, windows, seasons_back
        self.c1, self.c2 = _cum(y), _cum(y * y)
        s = pd.Series(y)
        self.rmin = {w: s.rolling(w, min_periods=1).min().to_numpy() for w in windows}
        self.rmax = {w: s.rolling(w, min_periods=1).max().to_numpy() for w in windows}
        # sub-daily cycles (cron jobs every 30 min, hour, 2 h, 6 h, 12 h) and the day itself
        self.periods = tuple(sorted({p for p in (season // 48, season // 24, season // 12, season // 4, season // 2)
                                     if p >= 2}))
        # mean |y[t] - y[t - k]| over recent windows: how well "k steps ago" has been forecasting lately
        self.gaps = tuple(sorted({k for k in (1, 3, season // 24, season // 6, season // 2, season) if k >= 1}))
        self.cgap = {}
        for k in self.gaps:
            d = np.zeros_like(y)
            d[k:] = np.abs(y[k:] - y[:-k])
            self.cgap[k] = _cum(d)
        self.cprod = {}
        for p in (*self.periods, season):
            prod = np.zeros_like(y)
            prod[p:] = y[p:] * y[:-p]
            self.cprod[p] = _cum(prod)

    def origin_features(self, T: np.ndarray, L: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the origins T (one per origin), scaled by their levels L."""
        y, S, f = self.y, self.S, {}
        for k in range(self.lags):
            f[f"lag{k}"] = gather(y, T - k, T) / L
        for w in self.windows:
            m = window_mean(self.c1, T, w)
            var = np.maximum(window_mean(self.c2, T, w) - m * m, 0.0)
            f[f"mean{w}"] = m / L
            f[f"std{w}"] = np.sqrt(var) / L
            f[f"min{w}"] = self.rmin[w][T] / L
            f[f"max{w}"] = self.rmax[w][T] / L
        # the origin against its usual value at this time of day: how much of today's deviation persists
        back = np.stack([gather(y, T - k * S, T) for k in range(1, self.K + 1)])
        with np.errstate(all="ignore"):
            usual = np.nanmean(back, axis=0)
        f["usual_origin"] = usual / L
        f["anomaly_origin"] = (y[T] - usual) / L
        hour = np.stack([gather(y, T - j - k * S, T) for k in range(1, self.K + 1) for j in range(0, max(S // 24, 1))])
        with np.errstate(all="ignore"):
            f["anomaly_hour"] = (window_mean(self.c1, T, max(S // 24, 1)) - np.nanmean(hour, axis=0)) / L
        f["day_change"] = (y[T] - gather(y, T - S, T)) / L
        for k in self.gaps:
            f[f"vario{k}_day"] = window_mean(self.cgap[k], T, S) / L
            f[f"vario{k}_week"] = window_mean(self.cgap[k], T, 7 * S) / L
        # how long the series has stayed near its current value: on/off workloads tend to stay in their state
        back = np.arange(1, S + 1)
        dev = np.abs(gather(y, T[:, None] - back[None, :], T[:, None]) - y[T][:, None]) / L[:, None]
        for d in (0.1, 0.5):
            moved = dev > d
            f[f"stay{d:g}"] = np.where(moved.any(axis=1), moved.argmax(axis=1), S).astype(np.float64)
            f[f"near{d:g}"] = np.mean(dev <= d, axis=1)
        # autocorrelation over the last week at each cycle: which same-phase feature to trust for this series
        m = window_mean(self.c1, T, 7 * S)
        var = np.maximum(window_mean(self.c2, T, 7 * S) - m * m, 1e-12)
        for p in (*self.periods, S):
            f[f"acf{p}"] = np.clip((window_mean(self.cprod[p], T, 7 * S) - m * m) / var, -1, 1)
        f["week_cv"] = np.sqrt(np.maximum(window_mean(self.c2, T, 7 * S) - window_mean(self.c1, T, 7 * S) ** 2, 0)) \
            / np.maximum(np.abs(window_mean(self.c1, T, 7 * S)), 1e-12)
        return f

    def target_features(self, T: np.ndarray, h: np.ndarray, L: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the target times T + h: the same time of day in past days and weeks, and the calendar."""
        y, S, f = self.y, self.S, {}
        tgt = T + h
        first = -(-h // S)  # the most recent day back whose same time is already observed
        same = []
        for k in range(self.K):
            pos = tgt - (first + k) * S
            v = gather(y, pos, T)
            same.append(v)
            if k < 3:
                f[f"same{k + 1}"] = v / L
        same = np.stack(same)
        with np.errstate(all="ignore"):
            f["same_mean"] = np.nanmean(same, axis=0) / L
            f["same_median"] = np.nanmedian(same, axis=0) / L
            f["same_max"] = np.nanmax(same, axis=0) / L
            f["same_min"] = np.nanmin(same, axis=0) / L
        # a smoothed same-time-yesterday: spikes in one 5-minute step of yesterday should not be copied
        pos = tgt - first * S
        r = max(S // 144, 1)
        lo, hi = np.maximum(pos - r, 0), np.minimum(pos + r, T)
        ok = hi >= lo
        sm = np.full(T.shape, np.nan)
        sm[ok] = (self.c1[hi[ok] + 1] - self.c1[lo[ok]]) / (hi[ok] + 1 - lo[ok])
        f["same1_smooth"] = sm / L
        for p in self.periods:
            first_p = -(-h // p)
            cyc = np.stack([gather(y, tgt - (first_p + k) * p, T) for k in range(4)])
            f[f"phase{p}"] = cyc[0] / L
            with np.errstate(all="ignore"):
                f[f"phase{p}_median"] = np.nanmedian(cyc, axis=0) / L
        W = 7 * S
        wfirst = -(-h // W)
        f["week1"] = gather(y, tgt - wfirst * W, T) / L
        f["week2"] = gather(y, tgt - (wfirst + 1) * W, T) / L
        tod, dow = calendar(self.t0, self.step, tgt)
        f["tod"], f["dow"] = tod, dow
        f["h"] = h.astype(np.float64)
        return f

    def rows(self, T: np.ndarray, h: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(features by name, level) for rows (T[i], h[i])."""
        with warnings.catch_warnings():  # all-NaN slices (history shorter than a week) are expected: NaN features
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._rows(T, h)

    def _rows(self, T: np.ndarray, h: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        uT, inv = np.unique(T, return_inverse=True)
        uL = level(self.y, uT, self.S)
        f = {k: v[inv] for k, v in self.origin_features(uT, uL).items()}
        L = uL[inv]
        f.update(self.target_features(T, h, L))
        return f, L

    @property
    def context(self) -> int:
        """Steps of history that every feature of an origin can reach back to."""
        return max(max(self.windows), (self.K + 1) * self.S, 14 * self.S) + self.S


def buckets(h: np.ndarray) -> np.ndarray:
    """Horizon bucket of each h, for conformal offsets: floor(log2 h) (1 -> 0, 2-3 -> 1, 4-7 -> 2, ...)."""
    return np.floor(np.log2(np.maximum(h, 1))).astype(int)


WIDTH_FLOOR = 0.02  # in target units (changes in levels): a zero-width interval still gets an offset


def _widths(pred: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Each quantile's distance from the median forecast (floored), the unit its conformal offset is counted in."""
    mid = pred[..., quantiles.index(0.5)]
    return np.maximum(np.abs(pred - mid[..., None]), WIDTH_FLOOR)


def conformal_offsets(z: np.ndarray, pred: np.ndarray, h: np.ndarray, quantiles: tuple[float, ...],
                      max_horizon: int, min_rows: int = 50) -> np.ndarray:
    """Split-conformal offsets, shape (buckets, quantiles), scaled by the model's own spread.

    Per horizon bucket and quantile q, the q-quantile (finite-sample corrected) of held-out residuals
    (z - pred_q) / |pred_q - pred_median|: `apply_offsets` adds that many spreads, so the quantile covers a share q
    of the held-out rows. Counting in spreads rather than in absolute units keeps the correction proportionate when
    the test period is calmer or wilder than the held-out one (the boosters' spread follows the recent volatility).
    The median is left as trained (offset 0); a bucket with fewer than `min_rows` rows takes the pooled offset.
    """
    nb = int(buckets(np.array([max_horizon]))[0]) + 1
    b = buckets(h)
    width = _widths(pred, quantiles)
    out = np.zeros((nb, len(quantiles)))
    for j, q in enumerate(quantiles):
        if q == 0.5:
            continue
        r = (z - pred[:, j]) / width[:, j]
        for k in range(nb):
            rk = r[b == k] if (b == k).sum() >= min_rows else r
            out[k, j] = np.quantile(rk, min(np.ceil((rk.size + 1) * q) / rk.size, 1.0), method="higher")
    return out


def apply_offsets(pred: np.ndarray, h: np.ndarray, offsets: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """pred (..., quantiles) at horizons h (broadcast to pred[..., 0]) moved by their conformal offsets."""
    return pred + offsets[buckets(h)] * _widths(pred, quantiles)
