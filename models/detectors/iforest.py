"""Isolation Forest (scikit-learn) on causal window features: one forest over every series and column together.

Each value column is first scaled per series by its training median and MAD (so one forest serves series of any
scale), then described at row t by four or five features, all from rows <= t:

    value      z[t]
    delta      z[t] - z[t-1]
    deviation  z[t] - median(z[t-window .. t-1])            distance from the recent level
    roughness  mean |delta| over the last `short_window` rows  volatility; 0 on a stuck value
    seasonal   z[t] - z[t-season]                             (when the history covers two seasons)

The raw score is the forest's anomaly score (-score_samples: higher = more isolated). Multivariate natively: the
features of every column sit side by side in one row.

Persistence: scikit-learn has no native non-pickle format for a forest. The forest is stored with `skops.io`
(a restricted, inspectable format that loads only allow-listed types: here the one tree type scikit-learn uses),
the per-series scalers as .npz, the config as JSON. Without skops it falls back to joblib (a pickle), and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from aiops.errors import SchemaError
from models.base import Detector, DetectorConfig
from models.detectors import _windows as W
from models.panel import Panel

_TRUSTED = ["sklearn.tree._tree.Tree"]  # the only non-default type skops meets in an IsolationForest


class IsolationForestConfig(DetectorConfig):
    window: int = Field(32, ge=2, description="trailing steps of the level the deviation feature is measured from")
    short_window: int = Field(8, ge=2, description="trailing steps of the roughness feature")
    season_length: int | None = Field(None, ge=2, description="season in steps (default: one day at the step)")
    seasonal: bool | None = Field(
        None, description="add the change since the same time one season ago as a feature (None: when every series "
                          "of the history covers two seasons)")
    n_estimators: int = Field(100, ge=1, le=2000, description="trees in the forest")
    max_samples: int = Field(256, ge=2, description="rows each tree is grown on")
    max_features: float = Field(1.0, gt=0, le=1, description="fraction of the features each tree sees")
    max_train_rows: int = Field(100_000, ge=100, description="rows sampled (seeded) from the history to grow on")


class IsolationForestDetector(Detector):
    """scikit-learn IsolationForest over causal value, delta, deviation, roughness (and seasonal) features."""

    name = "isolation_forest"
    config_class = IsolationForestConfig
    supports_multivariate = True
    requires = ("scikit-learn==1.9.1", "skops>=0.16")

    @property
    def min_history(self) -> int:
        return self.config.window + self.config.short_window + 2

    @property
    def context_steps(self) -> int:
        own = max(self.config.window, self.config.short_window) + 1
        return max(own, self.season_ + 1) if getattr(self, "seasonal_", False) else own

    def _features(self, panel: Panel) -> list[np.ndarray]:
        cfg = self.config
        rows = W.position(panel.ids, self.series_, self.name)
        out = []
        for i, k in enumerate(rows):
            z = (panel.values[i] - self.center_[k]) / self.scale_[k]
            delta = np.vstack([np.full((1, z.shape[1]), np.nan), np.diff(z, axis=0)])
            dev = z - W.trailing_median(z, cfg.window, cfg.window)
            rough = W.trailing_mean_abs(delta, cfg.short_window)
            feats = [z, delta, dev, rough]
            if self.seasonal_:
                feats.append(z - W.lagged(z, self.season_))
            out.append(np.hstack(feats))
        return out

    def _fit(self, panel: Panel) -> None:
        from sklearn.ensemble import IsolationForest

        cfg = self.config
        scalers = [W.robust_center_scale(v) for v in panel.values]
        self.center_ = np.array([c for c, _ in scalers])
        self.scale_ = np.array([s for _, s in scalers])
        self.series_ = panel.ids
        self.season_ = W.default_season(panel.step, cfg.season_length, model=self.name)
        shortest = min(len(v) for v in panel.values)
        self.seasonal_ = cfg.seasonal if cfg.seasonal is not None else shortest >= 2 * self.season_
        if self.seasonal_ and shortest < self.season_ + self.min_history:
            raise SchemaError(f"history: the shortest series has {shortest} steps; isolation_forest with seasonal=True "
                              f"needs {self.season_ + self.min_history}; pass seasonal=False or a longer history")
        feats = np.vstack(self._features(panel))
        feats = feats[~np.isnan(feats).any(axis=1)]
        if len(feats) < 2:
            raise SchemaError(f"history: too short for isolation_forest features; each series needs at least "
                              f"{self.min_history} steps")
        rng = np.random.default_rng(cfg.seed)
        if len(feats) > cfg.max_train_rows:
            feats = feats[np.sort(rng.choice(len(feats), cfg.max_train_rows, replace=False))]
        self.forest_ = IsolationForest(
            n_estimators=cfg.n_estimators, max_samples=min(cfg.max_samples, len(feats)),
            max_features=cfg.max_features, random_state=cfg.seed, n_jobs=1,
        ).fit(feats)

    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        feats = self._features(panel)
        rows = np.vstack(feats)
        raw = np.full(len(rows), np.nan)
        ok = ~np.isnan(rows).any(axis=1)  # warm-up rows have no full feature vector yet
        if ok.any():
            raw[ok] = -self.forest_.score_samples(rows[ok])  # one call for every series: far less overhead
        return np.split(raw, np.cumsum([len(f) for f in feats])[:-1])

    # --- persistence ---
    def _extra_meta(self) -> dict:
        return {**super()._extra_meta(), "forest_format": self._forest_format(), "season": self.season_,
                "seasonal": bool(self.seasonal_)}

    def _load_extra_meta(self, extra: dict) -> None:
        super()._load_extra_meta(extra)
        self.season_, self.seasonal_ = int(extra["season"]), bool(extra["seasonal"])

    @staticmethod
    def _forest_format() -> str:
        try:
            import skops.io  # noqa: F401
        except ImportError:
            return "joblib"
        return "skops"

    def _save_state(self, path: Path) -> None:
        np.savez(path / "scalers.npz", center=self.center_, scale=self.scale_)
        if self._forest_format() == "skops":
            import skops.io as sio

            sio.dump(self.forest_, path / "forest.skops")
        else:  # no non-pickle format for a forest without skops (see the module docstring)
            import joblib

            joblib.dump(self.forest_, path / "forest.joblib")

    def _load_state(self, path: Path) -> None:
        with np.load(path / "scalers.npz") as f:
            self.center_, self.scale_ = f["center"], f["scale"]
        self.series_ = self.ids_
        if (path / "forest.skops").exists():
            import skops.io as sio

            untrusted = sio.get_untrusted_types(file=path / "forest.skops")
            unexpected = [t for t in untrusted if t not in _TRUSTED]
            if unexpected:
                raise SchemaError(f"{path / 'forest.skops'}: holds types {unexpected} an IsolationForest never has; "
                                  "refusing to load it")
            self.forest_ = sio.load(path / "forest.skops", trusted=untrusted)
        else:
            import joblib

            self.forest_ = joblib.load(path / "forest.joblib")
