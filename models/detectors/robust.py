"""The robust statistical baseline: a causal, seasonality-aware rolling median / MAD z-score.

Per series and value column, with m the season (one day at the step unless configured):

    residual  r[t] = x[t] - median(x[t-m], x[t-2m], ..., x[t-K*m])   (seasonal columns)
              r[t] = x[t]                                            (non-seasonal columns)
    center    c[t] = median(r[t-w .. t-1])          the recent level, which also corrects the seasonal baseline
    scale     s[t] = 1.4826 * median(|r[i] - c[i]|, i in t-L .. t-1), floored at min_scale x the training MAD
    raw score z[t] = |r[t] - c[t]| / s[t]

Row t itself is never in its own reference, so a spike cannot mask itself. Whether a column is seasonal is decided
in fit (unless configured): it is when comparing with past seasons shrinks the typical residual below
`seasonal_gain` times the non-seasonal one. Several columns combine per row by `combine`: `max` (default; one metric
far off is an anomaly) or `rms` (root mean square of the column z-scores). Everything is two or three pandas rolling
medians per panel: cheap enough for thousands of series.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from aiops.errors import SchemaError
from models.base import Detector, DetectorConfig
from models.detectors import _windows as W
from models.panel import Panel


class RobustMadConfig(DetectorConfig):
    season_length: int | None = Field(None, ge=2, description="season in steps (default: one day at the step)")
    seasonal: bool | None = Field(
        None, description="compare with the same phase of past seasons: True, False, or None to decide per series "
                          "and column in fit")
    n_seasons: int = Field(3, ge=1, le=10, description="past seasons whose same-phase median is the baseline")
    window: int = Field(48, ge=3, description="trailing steps of the level the residual is centred on")
    scale_window: int | None = Field(
        None, ge=3, description="trailing steps of the MAD (default: 4 x window)")
    min_periods: int = Field(8, ge=2, description="trailing points needed before the first score")
    min_scale: float = Field(
        0.1, ge=0, description="floor of the rolling MAD as a fraction of the series' training MAD, so a flat "
                               "stretch does not turn a small wiggle into a huge score")
    seasonal_gain: float = Field(
        0.8, gt=0, le=1, description="seasonal=None: a column is seasonal when its residual MAD with the seasonal "
                                     "baseline is below this fraction of the MAD without")
    combine: Literal["max", "rms"] = Field("max", description="how column z-scores combine into one per row")


class RobustMad(Detector):
    """Rolling median / MAD z-score against the recent level and (when it helps) the same phase of past seasons."""

    name = "robust_mad"
    config_class = RobustMadConfig
    supports_multivariate = True

    @property
    def _scale_window(self) -> int:
        return self.config.scale_window or 4 * self.config.window

    @property
    def min_history(self) -> int:
        return 2 * self.config.min_periods

    @property
    def context_steps(self) -> int:
        # every row a score depends on: K seasons back, then the center window, then the scale window
        seasons = self.config.n_seasons * self.season_ if getattr(self, "seasonal_", np.zeros(1)).any() else 0
        return seasons + self.config.window + self._scale_window + 1

    # --- fit ---
    def _fit(self, panel: Panel) -> None:
        cfg = self.config
        m = W.default_season(panel.step, cfg.season_length, model=self.name)
        seasonal = np.zeros((len(panel), len(panel.columns)), dtype=bool)
        floor = np.zeros_like(seasonal, dtype=np.float64)
        for i in range(len(panel)):
            x = panel.values[i]
            long_enough = len(x) >= m + self.min_history
            if cfg.seasonal and not long_enough:
                raise SchemaError(
                    f"history: series {panel.ids[i]!r} has {len(x)} steps; seasonal robust_mad needs at least "
                    f"{m + self.min_history} (one season of {m} steps plus {self.min_history}); pass a longer "
                    "history, a shorter season_length, or seasonal=False"
                )
            dev_plain = self._deviations(x, None, m)
            if cfg.seasonal is None and long_enough:
                dev_seas = self._deviations(x, np.ones(x.shape[1], bool), m)
                both = ~np.isnan(dev_plain) & ~np.isnan(dev_seas)
                for j in range(x.shape[1]):
                    ok = both[:, j]
                    if ok.sum() >= cfg.min_periods:
                        seasonal[i, j] = (np.median(dev_seas[ok, j])
                                          < cfg.seasonal_gain * np.median(dev_plain[ok, j]))
            elif cfg.seasonal:
                seasonal[i] = True
            dev = self._deviations(x, seasonal[i], m) if seasonal[i].any() else dev_plain
            tiny = 1e-9 * np.maximum(1.0, np.abs(np.median(x, axis=0)))
            floor[i] = np.maximum(cfg.min_scale * _typical(dev), tiny)
        self.season_ = m
        self.seasonal_ = seasonal
        self.floor_ = floor
        self.series_ = panel.ids

    def _deviations(self, x: np.ndarray, seasonal: np.ndarray | None, m: int) -> np.ndarray:
        """|r[t] - c[t]|, the distance from the recent level, for deciding seasonality and the scale floor."""
        r = self._residual(x, seasonal, m)
        center = W.trailing_median(r, self.config.window, self.config.min_periods)
        return np.abs(r - center)

    def _residual(self, x: np.ndarray, seasonal: np.ndarray | None, m: int) -> np.ndarray:
        if seasonal is None or not seasonal.any():
            return x
        r = x.copy()
        r[:, seasonal] = x[:, seasonal] - W.seasonal_baseline(x[:, seasonal], m, self.config.n_seasons)
        return r

    # --- score ---
    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        cfg = self.config
        rows = W.position(panel.ids, self.series_, self.name)
        out = []
        for i, k in enumerate(rows):
            r = self._residual(panel.values[i], self.seasonal_[k], self.season_)
            center = W.trailing_median(r, cfg.window, cfg.min_periods)
            scale = W.MAD_TO_SIGMA * W.trailing_median(np.abs(r - center), self._scale_window, cfg.min_periods)
            z = np.abs(r - center) / np.maximum(scale, self.floor_[k])  # NaN (warm-up) propagates
            out.append(W.combine(z, cfg.combine))
        return out

    # --- persistence ---
    def _extra_meta(self) -> dict:
        return {**super()._extra_meta(), "season": self.season_}

    def _load_extra_meta(self, extra: dict) -> None:
        super()._load_extra_meta(extra)
        self.season_ = int(extra["season"])

    def _save_state(self, path: Path) -> None:
        np.savez(path / "robust_mad.npz", seasonal=self.seasonal_, floor=self.floor_)

    def _load_state(self, path: Path) -> None:
        with np.load(path / "robust_mad.npz") as f:
            self.seasonal_, self.floor_ = f["seasonal"], f["floor"]
        self.series_ = self.ids_


def _typical(dev: np.ndarray) -> np.ndarray:
    """The training MAD (as sigma) per column from the deviations; their mean where the MAD is 0 (quantised or
    mostly-constant series)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = W.MAD_TO_SIGMA * np.nanmedian(dev, axis=0)
        mean = np.nanmean(dev, axis=0)
    out = np.where(mad > 0, mad, mean)
    return np.where(np.isfinite(out), out, 0.0)
