"""Prophet per series: trend + daily (and weekly) Fourier seasonality, quantiles from predictive samples.

Design choices:
- Each series gets its own Prophet fit (MAP, L-BFGS in Stan) on its last `max_train_steps` points (default two
  weeks at the history's step: a fit of 4,000 points takes well under a second). Daily seasonality always; weekly
  when the points used cover at least two weeks (Prophet's own rule is one week; one week is one sample of the
  weekly shape, which it then repeats noise and all); no yearly.
- Gaps: Prophet fits on whatever timestamps it is given, so missing rows are simply left out of its frame
  (`handles_missing = True`: nothing is interpolated). Irregular sampling is refused all the same
  (`needs_regular_sampling = True`) because the forecast is made on a grid: `predict(horizon)` counts steps, and
  the step comes from the fit (the base refuses to predict without one). Resample irregular input first with
  models.panel.regularize.
- Quantiles are empirical quantiles of Prophet's posterior predictive samples (`uncertainty_samples` draws of trend
  changes and observation noise). Prophet draws them from NumPy's global generator: it is seeded from
  `config.seed` and the series' position for the draw and restored afterwards, so the same seed gives the same
  quantiles and the caller's random state is left alone. The Stan optimiser gets `config.seed` too.
- Prophet has no autoregression: its forecast is a function of the date. Predicting from a history newer than the
  fit forecasts the dates after that history's end with the fitted curve (no refit); the history's values are not
  used, only where it ends. Refit to take new data into account.
- Saved state is Prophet's own JSON (`prophet.serialize.model_to_json`), one document per series.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from models.base import Forecaster, ForecasterConfig
from models.panel import Panel

_MIN_POINTS = 10
_DEFAULT_TRAIN = pd.Timedelta(days=14)
_WEEKLY_FROM = pd.Timedelta(days=14)
_QUIET = ("prophet", "prophet.plot", "prophet.models", "prophet.forecaster", "cmdstanpy")


class ProphetConfig(ForecasterConfig):
    max_train_steps: int | None = Field(
        None, ge=_MIN_POINTS, description="fit each series on its last N points (default: 14 days at the step)")
    weekly: bool | None = Field(
        None, description="weekly seasonality; None: when the points used cover at least two weeks")
    changepoint_prior_scale: float = Field(
        0.05, gt=0, description="trend flexibility (Prophet's default 0.05; larger follows level shifts sooner)")
    uncertainty_samples: int = Field(
        500, ge=100, le=10_000, description="predictive draws the quantiles are read from (p99 needs hundreds)")


@contextlib.contextmanager
def _quiet():
    """Prophet and cmdstanpy log every fit at INFO (and Prophet an ERROR about plotly on import): mute them for
    the duration, then restore each logger as it was."""
    loggers = [logging.getLogger(n) for n in _QUIET]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before):
            lg.disabled = was


@contextlib.contextmanager
def _seeded(seed: int):
    """NumPy's global generator seeded for Prophet's sampling, the caller's state restored afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def _naive_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_convert("UTC").tz_localize(None)  # Prophet wants naive timestamps; ours are UTC


class ProphetForecaster(Forecaster):
    """Prophet fitted per series; p50/p90/... are quantiles of its posterior predictive samples."""

    name = "prophet"
    config_class = ProphetConfig
    handles_missing = True
    requires = ("prophet==1.5.*",)

    @property
    def min_history(self) -> int:
        return _MIN_POINTS

    @property
    def context_steps(self) -> int:
        # predict needs only where a series ends; a day of tail keeps plots and the residual detector useful
        return self.context_ if hasattr(self, "context_") else _MIN_POINTS

    def _prophet(self, weekly: bool):
        with _quiet():
            from prophet import Prophet

        return Prophet(daily_seasonality=True, weekly_seasonality=weekly, yearly_seasonality=False,
                       changepoint_prior_scale=self.config.changepoint_prior_scale,
                       uncertainty_samples=self.config.uncertainty_samples)

    def _fit(self, panel: Panel) -> None:
        c, step = self.config, panel.step
        n = c.max_train_steps or max(int(_DEFAULT_TRAIN / step), _MIN_POINTS)
        models = []
        for i in range(len(panel)):
            y, ix = panel.univariate(i)[-n:], panel.index[i][-n:]
            ok = panel.observed[i][-n:]
            weekly = c.weekly if c.weekly is not None else bool(len(ix) * step >= _WEEKLY_FROM)
            frame = pd.DataFrame({"ds": _naive_utc(ix[ok]), "y": y[ok]})
            model = self._prophet(weekly)
            with _quiet():
                model.fit(frame, seed=c.seed)
            models.append(model)
        self.models_ = models
        self.context_ = max(int(pd.Timedelta(days=1) / step), _MIN_POINTS)

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        pos = {sid: i for i, sid in enumerate(self.ids_)}
        qs = np.asarray(self.config.quantiles)
        out = np.empty((len(panel), horizon, len(qs)))
        for i, sid in enumerate(panel.ids):
            j = pos[sid]
            future = panel.index[i][-1] + np.arange(1, horizon + 1) * panel.step
            frame = pd.DataFrame({"ds": _naive_utc(pd.DatetimeIndex(future))})
            with _quiet(), _seeded(self.config.seed * 1_000_003 + j):
                draws = self.models_[j].predictive_samples(frame)["yhat"]  # (horizon, uncertainty_samples)
            out[i] = np.quantile(draws, qs, axis=1).T
        return out

    def _extra_meta(self) -> dict:
        return {"context": self.context_}

    def _load_extra_meta(self, extra: dict) -> None:
        self.context_ = int(extra["context"])

    def _save_state(self, path: Path) -> None:
        with _quiet():
            from prophet.serialize import model_to_json

        docs = [model_to_json(m) for m in self.models_]
        (path / "prophet.json").write_text(json.dumps({"models": docs}))

    def _load_state(self, path: Path) -> None:
        with _quiet():
            from prophet.serialize import model_from_json

        docs = json.loads((path / "prophet.json").read_text())["models"]
        with _quiet():
            self.models_ = [model_from_json(d) for d in docs]
