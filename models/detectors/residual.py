"""Forecast-residual detector: how far each point lands from a forecaster's prediction, in units of its spread.

    raw[t] = |y[t] - p50[t]| / max(pq[t] - p50[t], floor)        q = spread_quantile (0.9 by default)

where p50 and pq are the forecaster's quantiles for row t made from rows < t only (causal). How they are made:

- exact one-step-ahead, vectorised: for `naive` and `seasonal_naive` the one-step forecast of every row is a
  shifted copy of the series plus the learned error quantiles, so the whole window costs one array operation
  (no predict loop). Used when `origin_every` is None.
- rolling origins, for every other forecaster (or when `origin_every` is set): origins every `origin_every` rows
  (default one day at the step), anchored at the start of the scored panel; from each origin the forecaster predicts
  the next `origin_every` rows given the history up to the origin (its last `context_steps` rows). A forecast at
  h steps is wider than at one step, and dividing by its own spread keeps scores comparable along the horizon.

Multivariate panels are scored column by column (each (series, column) pair is one series for the forecaster) and
combined per row by the maximum. The forecaster is saved with its own `save()` under state/forecaster/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from aiops.errors import SchemaError
from models.base import Detector, DetectorConfig, Model, quantile_column
from models.detectors import _windows as W
from models.panel import Panel

_SEP = "\x1f"  # joins series id and column into the forecaster's series id (a character ids never contain)


class ForecastResidualConfig(DetectorConfig):
    forecaster: str = Field("seasonal_naive", description="catalog name of the forecaster the residuals come from")
    forecaster_config: dict[str, Any] = Field(default_factory=dict, description="the forecaster's config")
    spread_quantile: float = Field(0.9, gt=0.5, lt=1, description="residuals are divided by p<q> - p50")
    origin_every: int | None = Field(
        None, ge=1, description="rows between forecast origins (None: exact one-step-ahead where the forecaster "
                                "allows it, else one day at the step)")

    @model_validator(mode="after")
    def _check_forecaster(self) -> ForecastResidualConfig:
        from models.catalog import model_class

        cls = model_class(self.forecaster)  # an unknown name raises UnknownNameError listing the valid ones
        if cls.kind != "forecaster":
            raise ValueError(f"forecaster: {self.forecaster!r} is a {cls.kind}, expected a forecaster name")
        try:
            cls.config_class(**self.inner_config())
        except ValidationError as exc:
            raise ValueError(f"forecaster_config: not a valid {self.forecaster} config: {exc}") from None
        return self

    def inner_config(self) -> dict[str, Any]:
        """The forecaster's config: the given one, with this detector's seed and the two quantiles it needs."""
        cfg = {"seed": self.seed, **self.forecaster_config}
        qs = tuple(cfg.get("quantiles", (0.5, self.spread_quantile)))
        if self.spread_quantile not in qs:
            raise ValueError(f"forecaster_config: quantiles {qs} must include spread_quantile {self.spread_quantile}")
        cfg["quantiles"] = qs
        return cfg


class ForecastResidual(Detector):
    """Residuals of a catalog forecaster's one-step (or rolling-origin) forecasts, scaled by its predictive spread."""

    name = "forecast_residual"
    config_class = ForecastResidualConfig
    supports_multivariate = True

    def _new_forecaster(self):
        from models.catalog import create

        return create(self.config.forecaster, **self.config.inner_config())

    @property
    def min_history(self) -> int:
        return max(self._new_forecaster().min_history, 2)

    @property
    def context_steps(self) -> int:
        return self._warm_up()

    def _warm_up(self) -> int:
        """Rows before the first score, the same on both paths: the history the forecaster asks for."""
        return max(self.forecaster_.min_history, self.forecaster_.context_steps, self._fast_lag() or 1)

    def _fast_lag(self) -> int | None:
        """Lag of the exact vectorised one-step forecast, or None when the rolling-origin rule applies."""
        from models.forecasters.naive import Naive, SeasonalNaive

        if self.config.origin_every is not None:
            return None
        kind = type(self.forecaster_)
        return 1 if kind is Naive else self.forecaster_.season_ if kind is SeasonalNaive else None

    # --- fit ---
    def _fit(self, panel: Panel) -> None:
        uni = _split(panel)
        try:
            self.forecaster_ = self._new_forecaster().fit(_frame(uni))
        except SchemaError as exc:
            raise SchemaError(f"forecast_residual: its forecaster {self.config.forecaster} refused the history: "
                              f"{exc}") from exc
        # a floor for the spread, for forecasters whose quantiles collapse (a series repeating itself exactly),
        # in the forecaster's series order
        floor = {sid: max(0.01 * float(W.robust_scale(np.diff(v[:, 0]))), 1e-9 * max(1.0, abs(np.median(v))))
                 for sid, v in zip(uni.ids, uni.values)}
        self.floor_ = np.array([floor[sid] for sid in self.forecaster_.ids_])
        self.series_ = panel.ids

    # --- score ---
    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        W.position(panel.ids, self.series_, self.name)  # refuses series not in the fit, naming them
        uni = _split(panel)
        lag = self._fast_lag()
        p50, pq = self._one_step(uni, lag) if lag is not None else self._rolling(uni)
        floor = self.floor_[W.position(uni.ids, self.forecaster_.ids_, self.name)]
        z = [np.abs(v[:, 0] - a) / np.maximum(b - a, f) for v, a, b, f in zip(uni.values, p50, pq, floor)]
        n_cols = len(panel.columns)
        return [W.combine(np.column_stack(z[i * n_cols:(i + 1) * n_cols]), "max") for i in range(len(panel))]

    def _quantile_index(self) -> tuple[int, int]:
        qs = self.forecaster_.config.quantiles
        return qs.index(0.5), qs.index(self.config.spread_quantile)

    def _one_step(self, uni: Panel, lag: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Exact one-step-ahead p50 and pq of naive (lag 1) and seasonal_naive (lag = season): the value `lag`
        rows back plus the forecaster's learned one-step error quantiles."""
        f = self.forecaster_
        j50, jq = self._quantile_index()
        spread = f.spread_[:, 0, :] if lag == 1 and f.spread_.ndim == 3 else f.spread_
        rows = W.position(uni.ids, f.ids_, self.name)
        p50, pq = [], []
        for v, k in zip(uni.values, rows):
            base = W.lagged(v[:, 0], lag)
            base[:self._warm_up()] = np.nan
            p50.append(base + spread[k, j50])
            pq.append(base + spread[k, jq])
        return p50, pq

    def _rolling(self, uni: Panel) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """p50 and pq from forecasts made at origins every `every` rows of each series (see the module docstring)."""
        f = self.forecaster_
        every = self.config.origin_every or W.default_season(uni.step, None, model=self.name)
        need = self._warm_up()
        c50, cq = quantile_column(0.5), quantile_column(self.config.spread_quantile)
        p50 = [np.full(len(v), np.nan) for v in uni.values]
        pq = [np.full(len(v), np.nan) for v in uni.values]
        longest = max(len(v) for v in uni.values)
        for o in range(need - 1, longest - 1, every):  # o: the last row the forecast may use
            members = [i for i, v in enumerate(uni.values) if o < len(v) - 1]
            hist = pd.concat([uni.frame(i).iloc[max(0, o + 1 - need):o + 1] for i in members], ignore_index=True)
            pred = f.predict(every, history=hist)
            by_series = {sid: g for sid, g in pred.groupby("series", sort=False)}
            for i in members:
                g = by_series[uni.ids[i]]
                n = min(every, len(uni.values[i]) - 1 - o)
                p50[i][o + 1:o + 1 + n] = g[c50].to_numpy()[:n]
                pq[i][o + 1:o + 1 + n] = g[cq].to_numpy()[:n]
        return p50, pq

    # --- persistence ---
    def _save_state(self, path: Path) -> None:
        np.savez(path / "forecast_residual.npz", floor=self.floor_)
        self.forecaster_.save(path / "forecaster")

    def _load_state(self, path: Path) -> None:
        with np.load(path / "forecast_residual.npz") as f:
            self.floor_ = f["floor"]
        self.forecaster_ = Model.load(path / "forecaster")
        self.series_ = self.ids_


def _split(panel: Panel) -> Panel:
    """One univariate series (column `value`) per (series, column); ids stay as they are for one column."""
    cols = panel.columns
    if len(cols) == 1:
        return Panel(panel.ids, ("value",), panel.step, panel.index, panel.values, panel.observed)
    ids, index, values, observed = [], [], [], []
    for i, sid in enumerate(panel.ids):
        for j, c in enumerate(cols):
            ids.append(f"{sid}{_SEP}{c}")
            index.append(panel.index[i])
            values.append(panel.values[i][:, j:j + 1])
            observed.append(panel.observed[i])
    return Panel(tuple(ids), ("value",), panel.step, tuple(index), tuple(values), tuple(observed))


def _frame(uni: Panel) -> pd.DataFrame:
    return pd.concat([uni.frame(i) for i in range(len(uni))], ignore_index=True)
