"""The two model contracts: a forecaster and a detector, each a frozen pydantic config plus a small class.

Public methods check, private ones compute (STYLE.md 3-5): `fit`, `predict` and `score` turn the input frame into a
checked `Panel` (models/panel.py) using the class's capabilities, then call `_fit`, `_predict` or `_raw_scores`.
`__init__` only stores the config; learned state ends in `_`; randomness comes from `config.seed`.

Persistence is config as data plus state in native formats: `save(dir)` writes `model.json` (name and config), the
history tail the model predicts or scores from, and whatever `_save_state` writes (arrays as .npz, Keras files,
LightGBM text, Prophet JSON); `load(dir)` rebuilds with `catalog.create(name, **config)` and `_load_state`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.errors import SchemaError
from models.panel import Panel, fill, to_panel

FORMAT_VERSION = 1


class ModelConfig(BaseModel):
    """Every model's config: frozen, unknown keys rejected, randomness from `seed`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0, description="seed for every random choice the model makes")


class ForecasterConfig(ModelConfig):
    quantiles: tuple[float, ...] = Field((0.5, 0.9, 0.99), description="quantiles to predict; must include 0.5")

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < q < 1 for q in v) or len(set(v)) != len(v):
            raise ValueError(f"quantiles must be distinct and in (0, 1), received {v}")
        if 0.5 not in v:
            raise ValueError(f"quantiles must include 0.5 (the point forecast), received {v}")
        return tuple(sorted(v))


class DetectorConfig(ModelConfig):
    columns: tuple[str, ...] | None = Field(
        None, description="value columns to score together (default: every column but series and ts)")
    calibration_tail: float = Field(
        0.05, gt=0, lt=0.5, description="fraction of the highest training scores the calibration tail is fitted on")


def quantile_column(q: float) -> str:
    """The output column of quantile q: 0.5 -> p50, 0.9 -> p90, 0.99 -> p99, 0.999 -> p99.9."""
    return f"p{round(q * 100, 6):g}"


class Model:
    """What forecasters and detectors share: config, capabilities, input checks, persistence."""

    name: ClassVar[str]
    kind: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    # capabilities, read by flows and tests (STYLE.md 5)
    supports_multivariate: ClassVar[bool] = False
    needs_regular_sampling: ClassVar[bool] = True
    handles_missing: ClassVar[bool] = False  # False: gaps are interpolated before the model sees them
    global_model: ClassVar[bool] = False  # one model over all series: can predict/score series it was not fit on
    requires: ClassVar[tuple[str, ...]] = ()  # extra pip requirements of the saved model (e.g. "tensorflow-cpu")

    def __init__(self, config: ModelConfig | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise TypeError(f"{self.name}: pass a config or keyword settings, not both")
        if config is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{self.name}: expected a {self.config_class.__name__}, received {type(config).__name__}")
        self.config = config if config is not None else self.config_class(**kwargs)

    # --- capabilities that depend on the config ---
    @property
    def min_history(self) -> int:
        """Observed points each series needs to be fit."""
        return 2

    @property
    def context_steps(self) -> int:
        """Trailing points per series kept after fit, to predict or score from when no history is passed."""
        return self.min_history

    @property
    def fitted(self) -> bool:
        return hasattr(self, "history_")

    # --- input checks ---
    def _panel(self, frame: pd.DataFrame, *, name: str, min_history: int, step=None,
               fill_missing: bool | None = None) -> Panel:
        fill_missing = (not self.handles_missing) if fill_missing is None else fill_missing
        panel = to_panel(frame, name=name, columns=self._columns(frame), regular=self.needs_regular_sampling,
                         fill_missing=fill_missing, min_history=min_history, model=self.name, step=step)
        if len(panel.columns) > 1 and not self.supports_multivariate:
            raise SchemaError(
                f"{name}: {self.name} is univariate but received value columns {list(panel.columns)}; pass one "
                "column (e.g. `value`) or pick a model with supports_multivariate"
            )
        return panel

    def _columns(self, frame: pd.DataFrame) -> tuple[str, ...] | None:
        cols = getattr(self.config, "columns", None)
        if cols is None and hasattr(self, "columns_"):
            return self.columns_
        return cols

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit() first")

    def _remember(self, panel: Panel) -> None:
        self.columns_ = panel.columns
        self.step_ = panel.step
        self.ids_ = panel.ids
        self.history_ = _tail(panel, self.context_steps)

    def _resolve_history(self, history: pd.DataFrame | None, *, name: str, fill_missing: bool | None = None) -> Panel:
        """The panel to predict or score from: the given history, or the fit's tail."""
        if history is None:
            return self.history_
        panel = self._panel(history, name=name, min_history=1, step=self.step_, fill_missing=fill_missing)
        unknown = [s for s in panel.ids if s not in self.ids_]
        if unknown and not self.global_model:
            raise SchemaError(
                f"{name}: series {unknown[:5]} were not in the fit; {self.name} fits each series on its own, so "
                f"fit it on them first (fitted series: {list(self.ids_)[:5]}{'...' if len(self.ids_) > 5 else ''})"
            )
        return panel

    # --- persistence ---
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to directory `path` (created): model.json, history.parquet, state/."""
        self._check_fitted()
        path = Path(path)
        (path / "state").mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_VERSION, "name": self.name, "kind": self.kind,
                "config": self.config.model_dump(mode="json"), "columns": list(self.columns_),
                "step": None if self.step_ is None else self.step_.isoformat(), "ids": list(self.ids_),
                "extra": self._extra_meta()}
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        _panel_frame(self.history_).to_parquet(path / "history.parquet", index=False)
        self._save_state(path / "state")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Rebuild a model written by `save`, through the catalog (the saved name picks the class)."""
        from models.catalog import create

        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise SchemaError(f"{path}: model format {meta.get('format')} is not {FORMAT_VERSION}")
        model = create(meta["name"], **meta["config"])
        if cls is not Model and not isinstance(model, cls):
            raise SchemaError(f"{path}: holds a {meta['kind']} ({meta['name']}), not a {cls.__name__}")
        hist = pd.read_parquet(path / "history.parquet")
        step = None if meta["step"] is None else pd.Timedelta(meta["step"])
        model.columns_ = tuple(meta["columns"])
        model.step_ = step
        model.ids_ = tuple(meta["ids"])
        model.history_ = to_panel(hist, name="history", columns=model.columns_, regular=step is not None,
                                  fill_missing=False, min_history=1, step=step)
        model._load_extra_meta(meta.get("extra") or {})
        model._load_state(path / "state")
        return model

    def _extra_meta(self) -> dict:
        return {}

    def _load_extra_meta(self, extra: dict) -> None:
        pass

    def _save_state(self, path: Path) -> None:
        raise NotImplementedError

    def _load_state(self, path: Path) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({args})"


class Forecaster(Model):
    """fit(history) -> self; predict(horizon, history=None) -> quantile forecasts per series and step ahead."""

    kind: ClassVar[str] = "forecaster"
    config_class: ClassVar[type[ModelConfig]] = ForecasterConfig

    def fit(self, history: pd.DataFrame) -> Forecaster:
        panel = self._panel(history, name="history", min_history=self.min_history)
        self._fit(panel)
        self._remember(panel)
        return self

    def predict(self, horizon: int, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast `horizon` steps after the end of each series of `history` (default: the fit's history).

        Returns columns series, ts, h (1..horizon), then one column per quantile (`quantile_column`: p50, p90,
        p99 by default), non-decreasing across quantiles. Passing `history` conditions on it without refitting.
        """
        self._check_fitted()
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon: expected a whole number of steps >= 1, received {horizon!r}")
        if self.step_ is None:
            raise SchemaError(f"{self.name}: predict needs a regular step; the fit had none")
        panel = self._resolve_history(history, name="history")
        q = np.asarray(self._predict(int(horizon), panel), dtype=np.float64)
        nq = len(self.config.quantiles)
        if q.shape != (len(panel), horizon, nq):
            raise AssertionError(f"{self.name}._predict returned shape {q.shape}, expected {(len(panel), horizon, nq)}")
        q = np.sort(q, axis=2)  # quantiles never cross
        steps = np.arange(1, horizon + 1)
        out = pd.DataFrame({
            "series": np.repeat(np.array(panel.ids, dtype=object), horizon),
            "ts": np.concatenate([panel.index[i][-1] + steps * self.step_ for i in range(len(panel))]),
            "h": np.tile(steps, len(panel)),
        })
        out["ts"] = pd.to_datetime(out["ts"], utc=True)
        for j, qq in enumerate(self.config.quantiles):
            out[quantile_column(qq)] = q[:, :, j].reshape(-1)
        return out

    def _fit(self, panel: Panel) -> None:
        raise NotImplementedError

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        """Quantile forecasts, shape (len(panel), horizon, len(config.quantiles)), from each series' end."""
        raise NotImplementedError


class Detector(Model):
    """fit(history) -> self; score(window) -> an anomaly score in [0, 1] per point (1 = most anomalous).

    Scores are causal: the score at t uses only data up to t (the fit's history tail, then the window itself).
    Raw scores (`_raw_scores`, any scale, higher = more anomalous) are calibrated per series against the raw
    scores seen in training (models/calibration.py), so one threshold means the same on every series.
    Thresholds are a separate post-step (models/thresholds.py).
    """

    kind: ClassVar[str] = "detector"
    config_class: ClassVar[type[ModelConfig]] = DetectorConfig
    # True for a detector whose raw scores are already comparable probabilities in [0, 1] (calibrated online, as
    # they are scored): fit skips the training pass that maps raw scores through the training distribution
    self_calibrated: ClassVar[bool] = False

    def fit(self, history: pd.DataFrame) -> Detector:
        from models.calibration import Calibrator, Passthrough

        panel = self._panel(history, name="history", min_history=self.min_history)
        self._fit(panel)
        if self.self_calibrated:
            self.calibrator_ = Passthrough()
        else:
            raw = self._raw_scores(panel)
            self.calibrator_ = Calibrator(tail=self.config.calibration_tail).fit(panel.ids, raw)
        self._remember(panel)
        return self

    def score(self, window: pd.DataFrame) -> pd.DataFrame:
        """Scores for every row of `window` on the grid: columns series, ts, score (float in [0, 1]; NaN where the
        input had no value)."""
        self._check_fitted()
        # gaps are filled only after the fit's tail is put in front, so a metric missing over the whole window
        # (a quarantined batch) is carried from the context instead of refusing the window
        panel = self._resolve_history(window, name="window", fill_missing=False)
        ctx = _with_context(self.history_, panel)
        if not self.handles_missing:
            ctx = fill(ctx, name="window")
        raw = self._raw_scores(ctx)
        cal = self.calibrator_.transform(ctx.ids, raw)
        frames = []
        for i, sid in enumerate(panel.ids):
            k = len(panel.index[i])
            s = np.asarray(cal[i][-k:], dtype=np.float64).copy()
            s[~panel.observed[i]] = np.nan
            frames.append(pd.DataFrame({"series": sid, "ts": panel.index[i], "score": s}))
        return pd.concat(frames, ignore_index=True)

    def _fit(self, panel: Panel) -> None:
        raise NotImplementedError

    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        """Per series, one raw score per row (causal; NaN where there is not yet enough data to score)."""
        raise NotImplementedError

    def _extra_meta(self) -> dict:
        return {"calibrator": self.calibrator_.to_dict()}

    def _load_extra_meta(self, extra: dict) -> None:
        from models.calibration import Calibrator

        self.calibrator_ = Calibrator.from_dict(extra["calibrator"])


def _tail(panel: Panel, n: int) -> Panel:
    n = max(int(n), 1)
    return Panel(panel.ids, panel.columns, panel.step, tuple(ix[-n:] for ix in panel.index),
                 tuple(v[-n:] for v in panel.values), tuple(o[-n:] for o in panel.observed))


def _panel_frame(panel: Panel) -> pd.DataFrame:
    return pd.concat([panel.frame(i) for i in range(len(panel))], ignore_index=True)


def _with_context(history: Panel, window: Panel) -> Panel:
    """Each series of `window` preceded by the fit's tail of that series when the tail ends before the window."""
    pos = {sid: i for i, sid in enumerate(history.ids)}
    index, values, observed = [], [], []
    for i, sid in enumerate(window.ids):
        j = pos.get(sid)
        if j is not None and len(history.index[j]) and history.index[j][-1] < window.index[i][0]:
            hix, hv = history.index[j], history.values[j]
            if window.step is not None:  # fill the gap between tail and window so the grid stays regular
                n_gap = int((window.index[i][0] - hix[-1]) / window.step) - 1
                if n_gap > 0:
                    hix = hix.append(pd.date_range(hix[-1] + window.step, periods=n_gap, freq=window.step))
                    hv = np.vstack([hv, np.repeat(hv[-1:], n_gap, axis=0)])
            index.append(hix.append(window.index[i]))
            values.append(np.vstack([hv, window.values[i]]))
            observed.append(np.concatenate([np.ones(len(hix), bool), window.observed[i]]))
        else:
            index.append(window.index[i])
            values.append(window.values[i])
            observed.append(window.observed[i])
    return Panel(window.ids, window.columns, window.step, tuple(index), tuple(values), tuple(observed))
