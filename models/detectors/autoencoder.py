"""A dense autoencoder (Keras 3) over sliding windows: one network trained over every series.

Each value column is scaled per series by its training median and MAD. The input at row t is the window of the
last `window` rows of every column (rows t-window+1 .. t, so the score is causal), by default minus the median of
its older rows (`level="window"`: the network learns shapes, and a level drift stops being anomalous once settled),
clipped at +-10 MADs and flattened. The network squeezes it through a small bottleneck and reconstructs it; with
e the reconstruction error, the raw score weights the newest row by `last_weight`, so an anomaly is flagged when it
arrives rather than once it has crossed the window:

    err_c[t] = sqrt(last_weight * e[t, c]^2 + (1 - last_weight) * median over the older rows of e[., c]^2)
    raw[t]   = max over columns c of err_c[t]      (`combine="rms"`: their root mean square)

The median (not the mean) over older rows keeps one past spike from lifting the next `window` scores as much.
Training runs `train_steps` Adam steps on a seeded, shuffled, repeated sample of the windows (one Keras epoch, so
small histories are not undertrained and large ones not over-long). Deterministic for a seed: Keras' global seed
plus TensorFlow op determinism. Saved as a `.keras` file plus the scalers as .npz. Keras and TensorFlow are imported
only inside methods, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from models.base import Detector, DetectorConfig
from models.detectors import _windows as W
from models.panel import Panel

_CLIP = 10.0  # beyond +-10 MADs from the level a value only says "far off"; clipping limits what one spike does


class AutoencoderConfig(DetectorConfig):
    window: int = Field(32, ge=2, le=1024, description="rows per input window (the score at t sees t-window+1..t)")
    hidden: int = Field(32, ge=1, description="units of the hidden layers on either side of the bottleneck")
    latent: int = Field(8, ge=1, description="units of the bottleneck")
    train_steps: int = Field(1500, ge=1, description="Adam steps, whatever the number of training windows")
    epochs: int | None = Field(None, ge=1, description="passes over the training windows instead of train_steps")
    batch_size: int = Field(128, ge=1, description="windows per gradient step")
    noise: float = Field(0.0, ge=0, description="std of the Gaussian noise added to inputs in training (denoising)")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate")
    max_train_windows: int = Field(20_000, ge=10, description="windows sampled (seeded) from the history to train on")
    last_weight: float = Field(0.5, ge=0, le=1, description="share of the newest row in the reconstruction error")
    level: Literal["window", "series"] = Field(
        "window", description="window: each window minus the median of its older rows (the network learns shapes, "
                              "a level drift is not an anomaly once it has settled); series: the training median")
    combine: Literal["max", "rms"] = Field("max", description="how the columns' reconstruction errors combine")


class Autoencoder(Detector):
    """Dense autoencoder over the last `window` rows of all columns; raw score = weighted reconstruction error."""

    name = "autoencoder"
    config_class = AutoencoderConfig
    supports_multivariate = True
    requires = ("tensorflow-cpu==2.21.*", "keras>=3.15,<3.16")

    @property
    def min_history(self) -> int:
        return 2 * self.config.window

    @property
    def context_steps(self) -> int:
        return self.config.window - 1

    def _windows(self, panel: Panel, i: int, k: int) -> np.ndarray:
        """Series i (fitted row k) as flattened windows, one per row from row window-1 on, float32."""
        w = self.config.window
        z = (panel.values[i] - self.center_[k]) / self.scale_[k]
        if len(z) < w:
            return np.zeros((0, w * z.shape[1]), np.float32)
        win = W.sliding(z, w)
        if self.config.level == "window":  # the shape around the window's own level (its older rows' median)
            win = win - np.median(win[:, :-1], axis=1, keepdims=True)
        return np.clip(win, -_CLIP, _CLIP).reshape(len(win), -1).astype(np.float32)

    def _fit(self, panel: Panel) -> None:
        import keras
        import tensorflow as tf

        cfg = self.config
        scalers = [W.robust_center_scale(v) for v in panel.values]
        self.center_ = np.array([c for c, _ in scalers])
        self.scale_ = np.array([s for _, s in scalers])
        self.series_ = panel.ids
        x = np.vstack([self._windows(panel, i, i) for i in range(len(panel))])
        rng = np.random.default_rng(cfg.seed)
        if len(x) > cfg.max_train_windows:
            x = x[np.sort(rng.choice(len(x), cfg.max_train_windows, replace=False))]
        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
        dim = x.shape[1]
        net = keras.Sequential([
            keras.Input((dim,)),
            keras.layers.GaussianNoise(cfg.noise, seed=cfg.seed),  # training only: denoising, less memorising
            keras.layers.Dense(cfg.hidden, activation="relu"),
            keras.layers.Dense(cfg.latent),
            keras.layers.Dense(cfg.hidden, activation="relu"),
            keras.layers.Dense(dim),
        ], name="autoencoder")
        net.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mse")
        steps = cfg.epochs * -(-len(x) // cfg.batch_size) if cfg.epochs else cfg.train_steps
        # one Keras epoch of `steps` batches from a repeated, seeded shuffle: Keras' per-epoch overhead would
        # otherwise dominate on small histories
        data = (tf.data.Dataset.from_tensor_slices((x, x)).shuffle(len(x), seed=cfg.seed).repeat()
                .batch(cfg.batch_size))
        net.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        self.net_ = net

    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        cfg = self.config
        rows = W.position(panel.ids, self.series_, self.name)
        wins = [self._windows(panel, i, k) for i, k in enumerate(rows)]
        x = np.vstack(wins)
        recon = self._reconstruct(x)
        n_cols = len(panel.columns)
        err = ((recon - x).astype(np.float64) ** 2).reshape(len(x), cfg.window, n_cols)
        per_col = np.sqrt(cfg.last_weight * err[:, -1] + (1 - cfg.last_weight) * np.median(err[:, :-1], axis=1))
        raw = W.combine(per_col, cfg.combine)
        out, start = [], 0
        for i, w in enumerate(wins):
            s = np.full(len(panel.values[i]), np.nan)  # the first window-1 rows have no full window yet
            s[cfg.window - 1:] = raw[start:start + len(w)]
            start += len(w)
            out.append(s)
        return out

    def _reconstruct(self, x: np.ndarray) -> np.ndarray:
        # a direct call, not predict(): predict retraces its tf.function for every new input length
        import keras

        parts = [keras.ops.convert_to_numpy(self.net_(x[a:a + 8192], training=False)) for a in range(0, len(x), 8192)]
        return np.vstack(parts) if parts else x

    # --- persistence ---
    def _save_state(self, path: Path) -> None:
        np.savez(path / "scalers.npz", center=self.center_, scale=self.scale_)
        self.net_.save(path / "autoencoder.keras")

    def _load_state(self, path: Path) -> None:
        import keras

        with np.load(path / "scalers.npz") as f:
            self.center_, self.scale_ = f["center"], f["scale"]
        self.series_ = self.ids_
        self.net_ = keras.models.load_model(path / "autoencoder.keras")
