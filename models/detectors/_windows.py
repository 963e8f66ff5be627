"""Small vectorised helpers the detectors share: seasons, robust scales, trailing (causal) windows.

Every helper here is causal by construction: a value at row t is computed from rows <= t only, and the "trailing"
statistics exclude row t itself, so a spike never hides in its own reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from aiops.errors import SchemaError

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def default_season(step: pd.Timedelta | None, season_length: int | None, *, model: str) -> int:
    """The season in steps: the configured one, else one day at the panel's step."""
    if season_length is not None:
        return int(season_length)
    if step is None:
        raise ValueError(f"{model}: season_length is needed when the history has no regular step")
    return max(int(pd.Timedelta(days=1) / step), 1)


def robust_scale(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """A spread that ignores outliers, never zero: MAD (as sigma), else mean absolute deviation, else a tiny
    fraction of the level. The fallbacks matter on quantised or mostly-constant series, where the MAD is 0."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(x, axis=axis, keepdims=True)
        dev = np.abs(x - med)
        mad = MAD_TO_SIGMA * np.nanmedian(dev, axis=axis)
        mean_dev = np.nanmean(dev, axis=axis)
        tiny = 1e-9 * np.maximum(1.0, np.abs(np.squeeze(med, axis=axis)))
    out = np.where(mad > 0, mad, np.where(mean_dev > 0, mean_dev, tiny))
    return np.where(np.isfinite(out), out, 1.0)


def robust_center_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column (axis 0) median and `robust_scale`, for scaling a series before a learned model sees it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nanmedian(x, axis=0)
    return np.where(np.isfinite(center), center, 0.0), robust_scale(x, axis=0)


def lagged(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted down by k rows (row t holds x[t-k]), NaN above."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def trailing_median(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Row t: the median of rows t-window .. t-1 per column (row t excluded), NaN until min_periods are seen."""
    frame = pd.DataFrame(np.asarray(x, dtype=np.float64))
    return frame.shift(1).rolling(window, min_periods=min_periods).median().to_numpy()


def trailing_mean_abs(x: np.ndarray, window: int) -> np.ndarray:
    """Row t: the mean of |x| over rows t-window+1 .. t (row t included), NaN until the window is full."""
    frame = pd.DataFrame(np.abs(np.asarray(x, dtype=np.float64)))
    return frame.rolling(window, min_periods=window).mean().to_numpy()


def seasonal_baseline(x: np.ndarray, season: int, n_seasons: int) -> np.ndarray:
    """Row t: the median of x[t - k*season] for k = 1..n_seasons (those that exist), NaN before one season."""
    lags = np.stack([lagged(x, k * season) for k in range(1, n_seasons + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices in the first season
        return np.nanmedian(lags, axis=0)


def combine(z: np.ndarray, how: str) -> np.ndarray:
    """Per-row combination of per-column scores: `max` (one bad metric is enough) or `rms` (root mean square,
    for anomalies spread over several metrics). NaN when any column is NaN, so every score has the same meaning."""
    if z.shape[1] == 1:
        return z[:, 0].copy()
    bad = np.isnan(z).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmax(z, axis=1) if how == "max" else np.sqrt(np.nanmean(z**2, axis=1))
    out[bad] = np.nan
    return out


def sliding(x: np.ndarray, window: int) -> np.ndarray:
    """Windows ending at rows window-1 .. n-1: shape (n - window + 1, window, columns), a view (no copy)."""
    return np.lib.stride_tricks.sliding_window_view(x, window, axis=0).transpose(0, 2, 1)


def position(series: tuple[str, ...], fitted: tuple[str, ...], model: str) -> list[int]:
    """Row of each series' fitted state; SchemaError naming the unknown series otherwise."""
    pos = {sid: i for i, sid in enumerate(fitted)}
    unknown = [s for s in series if s not in pos]
    if unknown:
        raise SchemaError(f"window: series {unknown[:5]} were not in the fit of {model}; fit it on them first")
    return [pos[s] for s in series]
