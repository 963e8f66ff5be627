"""Anomaly likelihood: how surprising each raw score is under the running distribution of the scores before it.

A raw anomaly score (a z-score, a distance) means different things on different series and in different regimes of
one series: a z of 6 is rare on a calm series and daily on a bursty one. This detector turns raw scores into one
scale for every series by scoring them against their own recent past, the idea of Numenta's "anomaly likelihood"
(Ahmad et al., Neurocomputing 2017), applied to several raw channels:

    channels   c_k[t]  the raw score of a catalogued base detector (default robust_mad), and the pattern novelty
                       of each value column at each of `pattern_lengths` (models/detectors/_patterns.py)
    surprise   s_k[t] = -log10 P(Z > (c_k[t] - mean_k[t]) / std_k[t]),  Z standard normal, where mean and std are
                       those of c_k over the `history` rows before t (NaN until `min_periods` of them)
    top        u[t]   = min(max_k s_k[t], cap)                          the most surprising channel
    hold-down  u[t] is kept when it exceeds every one of the `hold` rows before it, else multiplied by
               `repeat_factor`: the onset of an anomaly scores high, its continuation lower (alert deduplication)
    score      y[t]   = 1 - 10^-u[t]                                    in [0, 1): 0.999 = odds of one in 1,000

Everything is causal and keeps learning from the scored stream (no distribution is frozen at fit time), so a
series that drifts into a noisier regime stops alarming once the new regime is its normal, and one threshold
means the same on every series: the scores are already calibrated, the base class only clips them
(models.calibration.Passthrough).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator
from scipy.special import log_ndtr

from models.base import Detector, DetectorConfig, Model
from models.detectors import _windows as W
from models.detectors._patterns import left_nn_distance
from models.panel import Panel

_LN10 = float(np.log(10.0))


class LikelihoodConfig(DetectorConfig):
    base: str | None = Field("robust_mad", description="catalogued detector whose raw scores are one channel "
                                                       "(None: pattern channels only)")
    base_config: dict[str, Any] = Field(
        default_factory=lambda: {"window": 200}, description="the base detector's config (its seed is this one's)")
    pattern_lengths: tuple[int, ...] = Field(
        (4, 8, 32), description="window lengths (steps) of the pattern-novelty channels; () for none")
    history: int = Field(8640, ge=10, description="rows of past raw scores the surprise is measured against, and "
                                                  "rows of past shapes a pattern is compared with")
    min_periods: int = Field(100, ge=2, description="past raw scores needed before the first surprise")
    cap: float = Field(16.0, gt=0, description="largest surprise (-log10 of the tail probability) kept: beyond "
                                                "float64's resolution of 1 - 10^-u, and an escalating burst must "
                                                "not climb past the hold-down")
    hold: int = Field(50, ge=0, description="rows after a score during which only a higher one is kept (0: off)")
    repeat_factor: float = Field(0.5, ge=0, le=1, description="multiplier of scores the hold-down suppresses")

    @model_validator(mode="after")
    def _check(self) -> LikelihoodConfig:
        from models.catalog import model_class

        if any(m < 1 for m in self.pattern_lengths):
            raise ValueError(f"pattern_lengths: expected whole numbers >= 1, received {self.pattern_lengths}")
        if self.base is None:
            if not self.pattern_lengths:
                raise ValueError("base and pattern_lengths: at least one channel is needed; name a base detector "
                                 "or give pattern lengths")
            return self
        cls = model_class(self.base)  # an unknown name raises UnknownNameError listing the valid ones
        if cls.kind != "detector" or cls.name == "likelihood":
            raise ValueError(f"base: expected a catalogued detector other than likelihood, received {self.base!r}")
        try:
            cls.config_class(**self.inner_config())
        except ValidationError as exc:
            raise ValueError(f"base_config: not a valid {self.base} config: {exc}") from None
        return self

    def inner_config(self) -> dict[str, Any]:
        """The base detector's config, with this detector's seed and columns."""
        return {"seed": self.seed, "columns": self.columns, **self.base_config}


class Likelihood(Detector):
    """Surprise of raw channel scores under their running distribution, with a hold-down on repeats."""

    name = "likelihood"
    config_class = LikelihoodConfig
    supports_multivariate = True
    self_calibrated = True

    def _new_base(self) -> Detector | None:
        from models.catalog import create

        return None if self.config.base is None else create(self.config.base, **self.config.inner_config())

    @property
    def min_history(self) -> int:
        base = self._new_base()
        return max(base.min_history if base is not None else 2, 2 * max(self.config.pattern_lengths, default=1))

    @property
    def context_steps(self) -> int:
        base = getattr(self, "base_", None)
        base_ctx = base.context_steps if base is not None else 0
        return base_ctx + self.config.history + max(self.config.pattern_lengths, default=0)

    # --- fit: the distributions are learnt while scoring; fit keeps the base and each column's scale ---
    def _fit(self, panel: Panel) -> None:
        base = self._new_base()
        if base is not None:
            frame = pd.concat([panel.frame(i) for i in range(len(panel))], ignore_index=True)
            base.fit(frame)
        self.base_ = base
        center = np.zeros((len(panel), len(panel.columns)))
        scale = np.ones_like(center)
        for i, v in enumerate(panel.values):
            center[i], scale[i] = W.robust_center_scale(v)
        self.center_, self.scale_ = center, scale
        self.series_ = panel.ids

    # --- score ---
    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        cfg = self.config
        rows = W.position(panel.ids, self.series_, self.name)
        # the base's raw scores, not its per-series calibrated ones: the surprise is the calibration here
        base_raw = self.base_._raw_scores(panel) if self.base_ is not None else [None] * len(panel)
        out = []
        for i, k in enumerate(rows):
            x = (panel.values[i] - self.center_[k]) / self.scale_[k]
            channels = [] if base_raw[i] is None else [np.asarray(base_raw[i], dtype=np.float64)]
            channels += [left_nn_distance(x[:, j], m, cfg.history)
                         for j in range(x.shape[1]) for m in cfg.pattern_lengths]
            s = np.vstack([surprise(c, cfg.history, cfg.min_periods) for c in channels])
            with np.errstate(invalid="ignore"):
                top = np.where(np.isnan(s).all(axis=0), np.nan, np.nanmax(np.nan_to_num(s, nan=-np.inf), axis=0))
            held = hold_down(np.minimum(top, cfg.cap), cfg.hold, cfg.repeat_factor)
            # as a probability, like every other detector's calibrated score: a threshold of 0.999 means odds of
            # one in a thousand here too (monotone, so rankings, AUCs and NAB scores are those of the surprise)
            out.append(-np.expm1(-held * _LN10))
        return out
        return out

    # --- persistence ---
    def _save_state(self, path: Path) -> None:
        np.savez(path / "likelihood.npz", center=self.center_, scale=self.scale_)
        if self.base_ is not None:
            self.base_.save(path / "base")

    def _load_state(self, path: Path) -> None:
        with np.load(path / "likelihood.npz") as f:
            self.center_, self.scale_ = f["center"], f["scale"]
        self.base_ = Model.load(path / "base") if self.config.base is not None else None
        self.series_ = self.ids_


def surprise(raw: np.ndarray, history: int, min_periods: int) -> np.ndarray:
    """-log10 of the upper-tail probability of raw[t] under a normal with the mean and standard deviation of the
    non-NaN raw scores among the `history` rows before t (causal); NaN where raw[t] is NaN or fewer than
    `min_periods` past scores exist. The deviation is floored so a constant past does not divide by zero."""
    r = pd.Series(np.asarray(raw, dtype=np.float64))
    past = r.shift(1).rolling(history, min_periods=min_periods)
    mean, std = past.mean().to_numpy(), past.std().to_numpy()
    std = np.maximum(np.nan_to_num(std, nan=np.inf), 1e-6 * np.maximum(1.0, np.abs(mean)))
    z = (r.to_numpy() - mean) / std
    return -log_ndtr(-z) / _LN10  # log_ndtr keeps precision far in the tail, where 1 - cdf would round to 0


def hold_down(score: np.ndarray, hold: int, factor: float) -> np.ndarray:
    """score[t] where it is above every score of the `hold` rows before it (NaN rows do not count), else
    factor * score[t]. Causal; hold=0 returns the scores unchanged."""
    s = np.asarray(score, dtype=np.float64)
    if hold <= 0:
        return s.copy()
    prev = pd.Series(s).shift(1).rolling(hold, min_periods=1).max().to_numpy()
    repeat = ~np.isnan(prev) & ~(s > prev)
    out = s.copy()
    out[repeat & ~np.isnan(s)] *= factor
    return out
