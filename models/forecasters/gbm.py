"""A global gradient-boosting forecaster: one LightGBM booster per quantile over every series, direct multi-horizon.

Each training row is (series, origin T, horizon h), sampled over all series (horizons log-uniform, so the short
ones, where the last value is hard to beat, get as many rows per octave as the long ones); the horizon is a feature,
so one model forecasts every step 1..max_horizon directly (no recursion). Features (models/forecasters/_windows.py)
use y[0..T] only, divided by the series' level at the origin: recent lags, rolling mean/std/min/max, how well
"k steps ago" has been forecasting lately, how long the series has stayed near its current value, autocorrelation at
sub-daily cycles, the same time of day in past days and weeks at the TARGET time (and same-phase values of
sub-daily cycles), the target's time of day and day of week, and h. The target is the change since the origin,
g(y[T + h] / level) - g(y[T] / level) with g = asinh: any monotone g keeps quantiles, and asinh keeps a 100x spike
from dominating the loss; contrast features give the same change for what the past suggests.

Quantiles: one booster per quantile (pinball objective, rows weighted by level so the loss is in the series' units
and every series weighs alike), then split-conformal offsets per horizon bucket (h = 1, 2-3, 4-7, ...) from a
held-out tail of the training span, so each upper quantile covers its nominal share there. With `refit` the
boosters are then refitted on the whole span (its most recent weeks matter most) and keep the offsets.

Global: a series not seen in fit can be forecast from its own history; the longer it is (up to `context_steps`),
the more features are filled (missing ones are NaN, which LightGBM routes on its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from aiops.errors import SchemaError
from models.base import Forecaster, ForecasterConfig, quantile_column
from models.forecasters._windows import (SeriesWindows, apply_offsets, buckets, conformal_offsets, observed_origins,
                                         season_steps)
from models.panel import Panel


# features also given as their change from the origin's value (in the transformed target's space)
CONTRASTED = ("same", "week", "phase", "usual_origin", "mean6", "mean12", "mean72", "mean288")


class GbmConfig(ForecasterConfig):
    max_horizon: int = Field(288, ge=1, description="longest horizon trained (steps); predict refuses longer ones")
    lags: int = Field(12, ge=1, description="recent values used as features (steps back from the origin)")
    windows: tuple[int, ...] = Field((6, 12, 72, 288, 2016), description="rolling-statistic windows (steps)")
    seasons_back: int = Field(7, ge=1, description="past days whose same time of day feeds the target features")
    origins_per_series: int = Field(300, ge=1, description="training origins sampled per series")
    horizons_per_origin: int = Field(16, ge=1, description="horizons sampled per training origin")
    calibration_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="share of the training span (its end) held out for conformal offsets")
    refit: bool = Field(True, description="refit on the whole span after calibration (offsets kept)")
    num_boost_round: int = Field(400, ge=1, description="boosting rounds per quantile")
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(300, ge=1)
    feature_fraction: float = Field(0.5, gt=0, le=1)
    transform: Literal["none", "asinh"] = Field(
        "asinh", description="target transform before differencing (asinh: a spike weighs a few levels, not 100s)")
    n_jobs: int = Field(1, ge=1, description="LightGBM threads (fixed, for reproducible results)")


class GradientBoosting(Forecaster):
    """Global LightGBM quantile forecaster (catalog name "gbm"); see the module docstring."""

    name = "gbm"
    config_class = GbmConfig
    global_model = True
    requires = ("lightgbm>=4.7,<5",)

    @property
    def min_history(self) -> int:
        # one origin (lags + every horizon) before the held-out calibration tail
        c = self.config
        return int(np.ceil((c.max_horizon + c.lags + 2) / (1 - c.calibration_fraction)))

    @property
    def context_steps(self) -> int:
        if hasattr(self, "season_"):
            return self._windows(np.zeros(1), 0, 1).context
        return max(self.min_history, max(self.config.windows))

    # --- features ---
    def _windows(self, y: np.ndarray, t0_ns: int, step_ns: int) -> SeriesWindows:
        c = self.config
        return SeriesWindows(y, t0_ns, step_ns, self.season_, c.lags, c.windows, c.seasons_back)

    def _rows(self, panel: Panel, i: int, T: np.ndarray, h: np.ndarray):
        """(features (n, k) float32 in the order of features_, level (n,), transformed origin value (n,))."""
        f, L, base = self._features(panel.univariate(i), panel.index[i][0].value, panel.step.value, T, h)
        return np.column_stack([f[n] for n in self.features_]).astype(np.float32), L, base

    def _features(self, y: np.ndarray, t0_ns: int, step_ns: int, T: np.ndarray, h: np.ndarray):
        f, L = self._windows(y, t0_ns, step_ns).rows(T, h)
        base = self._g(y[T] / L)
        # the target is a change since the origin: give the trees the same changes for what the past suggests,
        # so one split can say "the same time yesterday was 2 levels above now"
        for n in [k for k in f if k.startswith(CONTRASTED)]:
            f[f"d_{n}"] = self._g(f[n]) - base
        return f, L, base

    def _g(self, v):
        return np.arcsinh(v) if self.config.transform == "asinh" else v

    def _ginv(self, v):
        return np.sinh(v) if self.config.transform == "asinh" else v

    def _sample(self, panel: Panel, rng: np.random.Generator):
        """Training rows (X, z, h, weight, is_calibration) sampled over every series."""
        c = self.config
        end = max(ix[-1] for ix in panel.index)
        start = min(ix[0] for ix in panel.index)
        cutoff = end - (end - start) * c.calibration_fraction
        Xs, zs, hs, ws, cal = [], [], [], [], []
        for i in range(len(panel)):
            y, obs = panel.univariate(i), panel.observed[i]
            n = len(y)
            ncut = int(np.searchsorted(panel.index[i], cutoff))  # first position of the calibration tail
            # rows weigh by their level over the series' mean level: within a series the loss is the unscaled
            # error (what MASE measures), and every series weighs alike
            mean_level = max(float(np.abs(y).mean()), 1e-12)
            seen = observed_origins(obs, self.season_)
            for lo, hi, share, is_cal in ((c.lags, ncut, 1 - c.calibration_fraction, False),
                                          (max(ncut, c.lags), n - 1, c.calibration_fraction, True)):
                if hi - lo < 2:
                    continue
                k = max(int(round(c.origins_per_series * share)), 1)
                T = np.repeat(rng.integers(lo, hi - 1, size=k), c.horizons_per_origin)
                h = self._horizons(rng, T.size)
                keep = (T + h < hi) & obs[np.minimum(T + h, n - 1)] & seen[T]
                T, h = T[keep], h[keep]
                if T.size == 0:
                    continue
                X, L, base = self._rows(panel, i, T, h)
                Xs.append(X)
                zs.append(self._g(y[T + h] / L) - base)
                hs.append(h)
                ws.append(np.clip(L / mean_level, 0.1, 10.0))
                cal.append(np.full(T.size, is_cal))
        if not Xs or not any((~k).any() for k in cal):
            raise SchemaError(
                f"history: no series is long enough to train {self.name} on: each needs lags={c.lags} steps plus "
                f"targets before its last {c.calibration_fraction:.0%} (held out for calibration); pass a longer "
                "history or lower lags / max_horizon")
        return (np.vstack(Xs), np.concatenate(zs), np.concatenate(hs), np.concatenate(ws), np.concatenate(cal))

    def _horizons(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Horizons of training rows, log-uniform on 1..max_horizon: short horizons need precise fits (the last
        value is hard to beat there) and get as many rows per octave as long ones."""
        hmax = self.config.max_horizon
        return np.minimum(np.floor(np.exp(rng.uniform(0, np.log(hmax + 1), n))), hmax).astype(int)

    # --- fit / predict ---
    def _params(self, q: float) -> dict:
        c = self.config
        return {"objective": "quantile", "alpha": q, "learning_rate": c.learning_rate, "num_leaves": c.num_leaves,
                "min_data_in_leaf": c.min_data_in_leaf, "feature_fraction": c.feature_fraction,
                "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "seed": c.seed,
                "deterministic": True, "force_col_wise": True, "num_threads": c.n_jobs, "verbosity": -1}

    def _train(self, X, z, w):
        import lightgbm as lgb

        boosters = []
        for q in self.config.quantiles:
            data = lgb.Dataset(X, z, weight=w, feature_name=list(self.features_), free_raw_data=False)
            boosters.append(lgb.train(self._params(q), data, num_boost_round=self.config.num_boost_round))
        return boosters

    def _fit(self, panel: Panel) -> None:
        c = self.config
        self.season_ = season_steps(panel.step)
        self.features_ = tuple(self._features(np.arange(4.0), 0, 1, np.array([3]), np.array([1]))[0])
        X, z, h, w, cal = self._sample(panel, np.random.default_rng(c.seed))
        boosters = self._train(X[~cal], z[~cal], w[~cal])
        if cal.any():
            pred = np.column_stack([b.predict(X[cal], num_threads=c.n_jobs) for b in boosters])
            offsets = conformal_offsets(z[cal], pred, h[cal], c.quantiles, c.max_horizon)
            if c.refit:
                boosters = self._train(X, z, w)
        else:
            offsets = np.zeros((int(buckets(np.array([c.max_horizon]))[0]) + 1, len(c.quantiles)))
        self.boosters_ = boosters
        self.offsets_ = offsets

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        c = self.config
        if horizon > c.max_horizon:
            raise ValueError(f"horizon: {horizon} steps is beyond max_horizon={c.max_horizon} that {self.name} was "
                             f"trained for; ask for at most {c.max_horizon} or refit with max_horizon >= {horizon}")
        h = np.arange(1, horizon + 1)
        Xs, Ls, bases = [], [], []
        for i in range(len(panel)):
            T = np.full(horizon, len(panel.index[i]) - 1)
            X, L, base = self._rows(panel, i, T, h)
            Xs.append(X)
            Ls.append(L)
            bases.append(base)
        X, L, base = np.vstack(Xs), np.concatenate(Ls), np.concatenate(bases)
        return self._quantiles(X, L, base, np.tile(h, len(panel))).reshape(len(panel), horizon, len(c.quantiles))

    def _quantiles(self, X: np.ndarray, L: np.ndarray, base: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Forecast quantiles (rows, quantiles) in the series' units from feature rows."""
        z = np.column_stack([b.predict(X, num_threads=self.config.n_jobs) for b in self.boosters_])
        z = apply_offsets(z, h, self.offsets_, self.config.quantiles)
        return self._ginv(z + base[:, None]) * L[:, None]

    # --- persistence: LightGBM's own text format, offsets as JSON ---
    def _extra_meta(self) -> dict:
        return {"season": self.season_, "features": list(self.features_), "offsets": self.offsets_.tolist()}

    def _load_extra_meta(self, extra: dict) -> None:
        self.season_ = int(extra["season"])
        self.features_ = tuple(extra["features"])
        self.offsets_ = np.asarray(extra["offsets"], dtype=np.float64)

    def _save_state(self, path: Path) -> None:
        for q, booster in zip(self.config.quantiles, self.boosters_):
            booster.save_model(str(path / f"gbm_{quantile_column(q)}.txt"))

    def _load_state(self, path: Path) -> None:
        import lightgbm as lgb

        self.boosters_ = [lgb.Booster(model_file=str(path / f"gbm_{quantile_column(q)}.txt"))
                          for q in self.config.quantiles]
