"""ARIMA for short horizons: a bundle of per-series statsforecast AutoARIMA fits on each series' recent tail.

Why statsforecast and not statsmodels (benchmarks/arima_choice.py: Bitbrains VM CPU, 20 VMs x 6 September
origins, 1-hour forecasts from the same 3-day tail): statsforecast's AutoARIMA took 0.45 CPU s per series against
1.05 s for a statsmodels SARIMAX order search, at the same mean MASE (0.72), a lower median (0.25 against 0.39)
and p90 coverage nearer nominal (0.95 against 0.80).

Defaults, each measured there against its alternative (our default: MASE 0.28, 0.18 CPU s per series with the
quantile calibration, 0.11 s without):
- Fit on the last 2 days (`max_train_steps`): 1 day was better in September and worse in August; 7 days about
  the same at 1 hour (better at 24 hours: MASE 0.81 against 0.89) and twice as slow.
- `transform="log"`: a non-negative series is modelled as log1p(y / median level). Usage series are floors with
  spikes; a Gaussian model of y itself forecasts the mean, which the spikes drag up, and mean-reverts hard after a
  drop. In log space the forecast is a median (quantiles map through exp exactly): MASE 0.28 against 0.51.
- No seasonal ARIMA: a daily season at a 5-minute step is 288 lags, and one seasonal fit did not finish in
  minutes. Instead a daily profile (the median of each time of day over the last week, smoothed) is removed
  before the ARIMA and added back to the forecast, per series, when the series' seasonal strength reaches 0.64
  (`season="auto"`; the threshold forecast::nsdiffs uses for seasonal differencing; MASE 0.28 against 0.29 with
  no profile). Forcing it on every series (`season="profile"`) made Bitbrains forecasts worse at 1 and 24 hours
  (MASE 0.43 and 1.30 against 0.28 and 0.89): most VMs have no stable daily shape.
  Phases are anchored at the epoch, so the profile lines up with any history, not only the fit's.
- Order search: p, q <= 3 on conditional sums of squares, then a likelihood fit (`approximation=True`): the exact
  search with p, q <= 5 gave the same MASE (0.29) at 2.7 times the time.

Quantiles are mean + z_q * se in model space, se read off the model's Gaussian 80 % interval. z_q is first the
normal quantile, then, per series, the measured one: the fitted model forecasts from `calibration_origins` past
origins of the fit's own history (with the same window `predict` uses), and z_q becomes the q-quantile of its
errors in units of se (bounded to [1/4, 4] x the normal z). Spiky usage has fat, skewed tails: the Gaussian band is
too wide in calm series and too narrow in bursty ones, which is what a per-series measured multiple fixes.

Predicting from a passed history (newer than the fit) applies the fitted coefficients to that history without
refitting (statsforecast's `forward`: the Kalman filter is rerun over its last `max_train_steps` points), so the
forecast starts from the end of the history it was given. Saved state is JSON (orders, coefficient names and
values, sigma2) plus .npz (the series each model was filtered on, log scales, profiles): no pickle.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.errors import SchemaError
from models.base import Forecaster, ForecasterConfig
from models.panel import Panel

_MIN_POINTS = 30  # below this the unit-root test and order search have too little to go on
_DEFAULT_TRAIN = pd.Timedelta(days=2)
_DEFAULT_TRAIN_MIN_POINTS = 200
_Z80 = NormalDist().inv_cdf(0.9)  # the one interval (80%) se is read from


class ArimaConfig(ForecasterConfig):
    max_train_steps: int | None = Field(
        None, ge=_MIN_POINTS,
        description="fit each series on its last N points (default: 2 days at the history's step, at least 200)")
    season: Literal["auto", "profile", "none"] = Field(
        "auto", description="'profile': remove the median daily shape before the ARIMA and add it back; 'auto': "
        "only on series whose seasonal strength reaches `min_strength`; 'none': never")
    min_strength: float = Field(
        0.64, ge=0, le=1, description="seasonal strength 1 - Var(remainder) / Var(detrended) from which 'auto' "
        "uses the profile (0.64: the threshold of forecast::nsdiffs' seasonal test)")
    season_length: int | None = Field(
        None, ge=2, description="season in steps for the profile (default: one day at the history's step)")
    profile_seasons: int = Field(
        7, ge=2, description="the profile is the median of each phase over the last N seasons (fewer if shorter)")
    profile_smoothing: int = Field(
        2, ge=0, description="the profile is averaged over +-k neighbouring phases (noise of few seasons)")
    d: int | None = Field(
        None, ge=0, le=2, description="order of differencing; None: chosen per series by KPSS unit-root tests")
    transform: Literal["log", "none"] = Field(
        "log", description="'log': model log1p(y / scale) when a series is non-negative (scale: its median "
        "level), so forecasts are medians and spikes do not drag them up; 'none': model y itself")
    max_order: int = Field(3, ge=0, le=5, description="largest AR and MA order the search tries (p, q <= this)")
    approximation: bool = Field(
        True, description="select the order on conditional sums of squares, then fit it by likelihood (faster)")
    calibration_origins: int = Field(
        24, ge=0, description="past origins per series whose forecast errors, in units of the model's standard "
        "error, set each quantile's multiple of it; 0: Gaussian quantiles as fitted")
    calibration_horizon: int = Field(288, ge=1, description="longest horizon (steps) the calibration scores")


def _phase(index: pd.DatetimeIndex, step: pd.Timedelta, m: int) -> np.ndarray:
    """Position of each timestamp in the season, counted from the epoch so any history lines up."""
    return (index.asi8 // step.value) % m


def _profile(y: np.ndarray, phase: np.ndarray, m: int, seasons: int, smooth: int) -> np.ndarray | None:
    """Median value at each phase over the last whole seasons, smoothed, centred; None with < 2 seasons.

    The median, not the mean: a spike on one day would otherwise come back at the same time every day."""
    k = min(len(y) // m, seasons)
    if k < 2:
        return None
    y, phase = y[-k * m:], phase[-k * m:]
    prof = np.empty(m)
    prof[phase[:m]] = np.median(y.reshape(k, m), axis=0)
    if smooth:
        w = 2 * smooth + 1
        prof = np.convolve(np.concatenate([prof[-smooth:], prof, prof[:smooth]]), np.ones(w) / w, mode="valid")
    return prof - prof.mean()


def _strength(y: np.ndarray, phase: np.ndarray, prof: np.ndarray, m: int) -> float:
    """Seasonal strength (Wang, Smith & Hyndman 2006): 1 - Var(remainder) / Var(detrended), the trend a centred
    moving average over one season; near 1 for a clean daily shape, near 0 for noise or spikes."""
    k = len(y) - m + 1
    if k < m:
        return 0.0
    trend = np.convolve(y, np.ones(m) / m, mode="valid")  # trend[i] averages y[i:i + m], about y[i + m // 2]
    detrended = y[m // 2:m // 2 + k] - trend
    remainder = detrended - prof[phase[m // 2:m // 2 + k]]
    var = float(np.var(detrended))
    return max(0.0, 1.0 - float(np.var(remainder)) / var) if var > 0 else 0.0


def _log_scale(y: np.ndarray) -> float:
    """The level a non-negative series is divided by before log1p (its median, else its mean); 0: no log."""
    if y.min() < 0:
        return 0.0
    s = float(np.median(y)) or float(np.mean(y))
    return s if s > 0 else 0.0


def _to_model(y: np.ndarray, scale: float) -> np.ndarray:
    # a later history may dip below zero where the fit never did: the log model treats it as zero
    return np.log1p(np.maximum(y, 0.0) / scale) if scale > 0 else y


def _from_model(u: np.ndarray, scale: float) -> np.ndarray:
    return scale * np.expm1(u) if scale > 0 else u


class Arima(Forecaster):
    """AutoARIMA per series (statsforecast) on each recent tail, log-scaled when non-negative; Gaussian quantiles."""

    name = "arima"
    config_class = ArimaConfig
    requires = ("statsforecast>=2.1,<2.2",)

    @property
    def min_history(self) -> int:
        return _MIN_POINTS

    @property
    def context_steps(self) -> int:
        return self.train_steps_ if hasattr(self, "train_steps_") else (self.config.max_train_steps or _MIN_POINTS)

    def _sf_args(self) -> dict:
        c = self.config
        return {"seasonal": False, "d": c.d, "max_p": c.max_order, "max_q": c.max_order,
                "approximation": c.approximation}

    def _fit(self, panel: Panel) -> None:
        from statsforecast.models import AutoARIMA

        c, step = self.config, panel.step
        n = c.max_train_steps or max(int(_DEFAULT_TRAIN / step), _DEFAULT_TRAIN_MIN_POINTS)
        m = c.season_length or max(int(pd.Timedelta(days=1) / step), 2)
        models, profiles = [], np.zeros((len(panel), m))
        profiled, scales = np.zeros(len(panel), dtype=bool), np.zeros(len(panel))
        for i in range(len(panel)):
            y, ix = panel.univariate(i), panel.index[i]
            scales[i] = _log_scale(y[-n:]) if c.transform == "log" else 0.0
            u = _to_model(y, scales[i])
            prof = self._season_profile(u, _phase(ix, step, m), m)
            u, ix = u[-n:], ix[-n:]
            if prof is not None:
                profiles[i], profiled[i] = prof, True
                u = u - prof[_phase(ix, step, m)]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                fitted = AutoARIMA(**self._sf_args()).fit(u).model_
            models.append(_slim(fitted))
        self.train_steps_, self.season_ = n, m
        self.models_, self.profiles_, self.profiled_, self.scales_ = models, profiles, profiled, scales
        self.quantile_z_ = self._calibrate(panel) if c.calibration_origins else None  # (series, quantiles) z or None

    def _calibrate(self, panel: Panel) -> np.ndarray | None:
        """Per series and quantile, the multiple of the model's standard error that quantile lies at, measured.

        The fitted model forecasts from `calibration_origins` past origins spread over the part of the series with
        a full `train_steps_` window before it (as `predict` does with a history), up to `calibration_horizon`
        steps ahead; its errors, in units of its own standard error at each step (which already widens with the
        horizon), give the empirical quantile that replaces the Gaussian z. A series with fewer than 50 such errors
        keeps z. Bounded to [1/4, 4] x z: a handful of spikes must not make a band useless. None when no series
        has room for an origin.
        """
        c, n, m, step = self.config, self.train_steps_, self.season_, panel.step
        z = np.array([NormalDist().inv_cdf(q) for q in c.quantiles])
        out = np.tile(z, (len(panel), 1))
        calibrated = False
        for i in range(len(panel)):
            y, ix, obs = panel.univariate(i), panel.index[i], panel.observed[i]
            if len(y) <= n:
                continue
            prof = self.profiles_[i] if self.profiled_[i] else np.zeros(m)
            u = _to_model(y, self.scales_[i]) - prof[_phase(ix, step, m)]
            errors = []
            for t in np.unique(np.linspace(n, len(y) - 1, min(c.calibration_origins, len(y) - n)).astype(int)):
                k = np.arange(min(c.calibration_horizon, len(y) - t))  # t: the first target; history u[t - n:t]
                mean, se = self._forward(i, u[t - n:t], len(k))
                ok = obs[t + k] & (se > 1e-9)
                errors.append((u[t + k][ok] - mean[ok]) / se[ok])
            e = np.concatenate(errors) if errors else np.empty(0)
            if e.size < 50:
                continue
            for j, q in enumerate(c.quantiles):
                if q == 0.5:
                    continue
                out[i, j] = np.clip(_conformal_quantile(e, q), *sorted((z[j] / 4, z[j] * 4)))
            calibrated = True
        return out if calibrated else None

    def _season_profile(self, u: np.ndarray, phase: np.ndarray, m: int) -> np.ndarray | None:
        """The profile a series gets: none, or its daily profile (under 'auto' only when strong enough)."""
        c = self.config
        if c.season == "none":
            return None
        prof = _profile(u, phase, m, c.profile_seasons, c.profile_smoothing)
        if prof is None or c.season == "profile":
            return prof
        w = slice(-m * c.profile_seasons, None)
        return prof if _strength(u[w], phase[w], prof, m) >= c.min_strength else None

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        pos = {sid: i for i, sid in enumerate(self.ids_)}
        z = np.array([NormalDist().inv_cdf(q) for q in self.config.quantiles])
        m, step = self.season_, panel.step
        out = np.empty((len(panel), horizon, len(z)))
        for i, sid in enumerate(panel.ids):
            j = pos[sid]
            y, ix = panel.univariate(i)[-self.train_steps_:], panel.index[i][-self.train_steps_:]
            if len(y) < _MIN_POINTS:
                raise SchemaError(
                    f"history: series {sid!r} has {len(y)} steps; arima forecasts from at least {_MIN_POINTS} "
                    "recent points; pass a longer history or none (the fit's tail is used)")
            prof = self.profiles_[j] if self.profiled_[j] else np.zeros(m)
            u = _to_model(y, self.scales_[j]) - prof[_phase(ix, step, m)]
            mean, se = self._forward(j, u, horizon)
            if np.ptp(u) == 0:  # statsforecast gives a flat history no spread at all: keep the fit's
                se = self._forward(j, self.models_[j]["x"], horizon)[1]
            future = (int(ix.asi8[-1] // step.value) + np.arange(1, horizon + 1)) % m
            zj = z if self.quantile_z_ is None else self.quantile_z_[j]
            q = (mean + prof[future])[:, None] + se[:, None] * zj[None, :]
            # an integrated model's band widens with sqrt(h) and, in log space, its upper quantiles would grow
            # exponentially (1e99 at a day ahead): nothing beyond the history's own range past its extremes
            seen = _to_model(y, self.scales_[j])
            reach = max(float(np.nanmax(seen) - np.nanmin(seen)), 1e-9)
            q = np.clip(q, np.nanmin(seen) - reach, np.nanmax(seen) + reach)
            out[i] = _from_model(q, self.scales_[j])  # monotone: quantiles stay quantiles
        return out

    def _forward(self, j: int, u: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard error of series j's fitted model run over `u` (model space), without refitting."""
        from statsforecast.models import AutoARIMA

        est = AutoARIMA(**self._sf_args())
        est.model_ = _unslim(self.models_[j])  # a fresh dict: forward must not share state between calls
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            f = est.forward(u, h=horizon, level=[80])
        mean = np.asarray(f["mean"], dtype=np.float64)
        return mean, np.maximum((np.asarray(f["hi-80"], dtype=np.float64) - mean) / _Z80, 0.0)

    def _extra_meta(self) -> dict:
        return {"train_steps": self.train_steps_, "season": self.season_,
                "quantile_z": None if self.quantile_z_ is None else self.quantile_z_.tolist()}

    def _load_extra_meta(self, extra: dict) -> None:
        self.train_steps_, self.season_ = int(extra["train_steps"]), int(extra["season"])
        z = extra.get("quantile_z")
        self.quantile_z_ = None if z is None else np.asarray(z, dtype=np.float64)

    def _save_state(self, path: Path) -> None:
        arrays = {"profiles": self.profiles_, "profiled": self.profiled_, "scales": self.scales_}
        doc = []
        for i, mod in enumerate(self.models_):
            arrays[f"x_{i}"] = mod["x"]
            if mod["xreg"] is not None:
                arrays[f"xreg_{i}"] = mod["xreg"]
            doc.append({"arma": mod["arma"], "coef": mod["coef"], "sigma2": mod["sigma2"],
                        "xreg": mod["xreg"] is not None})
        (path / "arima.json").write_text(json.dumps({"models": doc}, indent=1))
        np.savez(path / "arima.npz", **arrays)

    def _load_state(self, path: Path) -> None:
        doc = json.loads((path / "arima.json").read_text())["models"]
        with np.load(path / "arima.npz") as arrays:
            self.profiles_, self.profiled_ = arrays["profiles"], arrays["profiled"].astype(bool)
            self.scales_ = arrays["scales"]
            self.models_ = [
                {"arma": list(d["arma"]), "coef": {k: float(v) for k, v in d["coef"].items()},
                 "sigma2": float(d["sigma2"]), "x": arrays[f"x_{i}"],
                 "xreg": arrays[f"xreg_{i}"] if d["xreg"] else None}
                for i, d in enumerate(doc)]


def _conformal_quantile(e: np.ndarray, q: float) -> float:
    """The q-quantile of the errors e with the split-conformal finite-sample correction (outwards from the median,
    so an upper quantile covers at least q and a lower one at most q)."""
    n = e.size
    if q > 0.5:
        return float(np.quantile(e, min(np.ceil((n + 1) * q) / n, 1.0), method="higher"))
    return float(np.quantile(e, max((np.floor((n + 1) * q) - 1) / n, 0.0), method="lower"))


def _slim(model: dict) -> dict:
    """What `forward` reads from a fitted statsforecast ARIMA: orders, coefficients, sigma2, the filtered series
    (its length places the drift term) and the drift/exogenous regressors."""
    return {"arma": [int(a) for a in model["arma"]], "coef": {str(k): float(v) for k, v in model["coef"].items()},
            "sigma2": float(model["sigma2"]), "x": np.asarray(model["x"], dtype=np.float64),
            "xreg": None if model["xreg"] is None else np.asarray(model["xreg"], dtype=np.float64)}


def _unslim(s: dict) -> dict:
    return {"arma": tuple(s["arma"]), "coef": dict(s["coef"]), "sigma2": s["sigma2"], "x": s["x"].copy(),
            "xreg": None if s["xreg"] is None else s["xreg"].copy(), "lambda": None, "distribution": "normal"}
