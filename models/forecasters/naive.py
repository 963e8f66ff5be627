"""The baselines every forecaster is judged against: the last value, and the value one season ago.

Quantiles are empirical: the spread of the same forecast's errors over the training history (the h-step change of
the series for `naive`, the one-season change for `seasonal_naive`, widened by sqrt(k) when the horizon reaches
k seasons back). No distribution is assumed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from models.base import Forecaster, ForecasterConfig
from models.panel import Panel


class NaiveConfig(ForecasterConfig):
    max_horizon: int = Field(288, ge=1, description="longest horizon with its own error quantiles (steps)")


class SeasonalNaiveConfig(ForecasterConfig):
    season_length: int | None = Field(
        None, ge=1, description="season in steps (default: one day at the history's step)")


def _quantiles(diffs: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    d = diffs[np.isfinite(diffs)]
    return np.quantile(d, qs) if d.size else np.zeros(len(qs))


class Naive(Forecaster):
    """Tomorrow looks like now: every step ahead is the last value."""

    name = "naive"
    config_class = NaiveConfig

    @property
    def min_history(self) -> int:
        return 2

    def _fit(self, panel: Panel) -> None:
        hmax, qs = self.config.max_horizon, self.config.quantiles
        spread = np.zeros((len(panel), hmax, len(qs)))
        for i in range(len(panel)):
            y = panel.univariate(i)
            for h in range(1, min(hmax, len(y) - 1) + 1):
                spread[i, h - 1] = _quantiles(y[h:] - y[:-h], qs)
            last = min(hmax, len(y) - 1)
            for h in range(last + 1, hmax + 1):  # too short a history for this horizon: widen the longest known
                spread[i, h - 1] = spread[i, last - 1] * np.sqrt(h / last)
        self.spread_ = spread

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        pos = {sid: i for i, sid in enumerate(self.ids_)}
        out = np.empty((len(panel), horizon, len(self.config.quantiles)))
        hmax = self.config.max_horizon
        for i, sid in enumerate(panel.ids):
            s = self.spread_[pos[sid]]
            if horizon > hmax:
                extra = s[-1] * np.sqrt(np.arange(hmax + 1, horizon + 1) / hmax)[:, None]
                s = np.vstack([s, extra])
            out[i] = panel.univariate(i)[-1] + s[:horizon]
        return out

    def _save_state(self, path: Path) -> None:
        np.savez(path / "naive.npz", spread=self.spread_)

    def _load_state(self, path: Path) -> None:
        self.spread_ = np.load(path / "naive.npz")["spread"]


class SeasonalNaive(Forecaster):
    """The same time one season ago (a day, by default): the baseline of MASE and of every comparison."""

    name = "seasonal_naive"
    config_class = SeasonalNaiveConfig

    def _season(self, step: pd.Timedelta | None) -> int:
        if self.config.season_length is not None:
            return self.config.season_length
        if step is None:
            raise ValueError("seasonal_naive: season_length is needed when the history has no regular step")
        return max(int(pd.Timedelta(days=1) / step), 1)

    @property
    def min_history(self) -> int:
        # with an inferred season the step is not known yet: one season at the most common steps is checked in
        # _fit, where the step is known
        return (self.config.season_length or 1) + 1

    @property
    def context_steps(self) -> int:
        return self.season_ if hasattr(self, "season_") else self.min_history

    def _fit(self, panel: Panel) -> None:
        m = self._season(panel.step)
        qs = self.config.quantiles
        spread = np.zeros((len(panel), len(qs)))
        for i in range(len(panel)):
            y = panel.univariate(i)
            if len(y) <= m:
                from aiops.errors import SchemaError

                raise SchemaError(
                    f"history: series {panel.ids[i]!r} has {len(y)} steps; seasonal_naive needs more than one "
                    f"season ({m} steps of {panel.step}); pass a longer history or a shorter season_length"
                )
            spread[i] = _quantiles(y[m:] - y[:-m], qs)
        self.season_ = m
        self.spread_ = spread

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        m = self.season_
        pos = {sid: i for i, sid in enumerate(self.ids_)}
        h = np.arange(1, horizon + 1)
        k = np.ceil(h / m).astype(int)  # seasons back that step h reaches for
        out = np.empty((len(panel), horizon, len(self.config.quantiles)))
        for i, sid in enumerate(panel.ids):
            y = panel.univariate(i)
            if len(y) < m:
                raise ValueError(f"history: series {sid!r} has {len(y)} steps, fewer than one season ({m})")
            point = y[len(y) - m + (h - 1) % m]  # the same phase in the last observed season
            out[i] = point[:, None] + self.spread_[pos[sid]][None, :] * np.sqrt(k)[:, None]
        return out

    def _extra_meta(self) -> dict:
        return {"season": self.season_}

    def _load_extra_meta(self, extra: dict) -> None:
        self.season_ = int(extra["season"])

    def _save_state(self, path: Path) -> None:
        np.savez(path / "seasonal_naive.npz", spread=self.spread_)

    def _load_state(self, path: Path) -> None:
        self.spread_ = np.load(path / "seasonal_naive.npz")["spread"]
