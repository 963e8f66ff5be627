"""A global LSTM forecaster in Keras 3: one network over every series, all horizons and quantiles at once.

Per origin T of a series (features from models/forecasters/_windows.py, all causal, divided by the level at T and
taken through asinh, like the gbm forecaster's target):
- an LSTM reads the last `window` values with their time of day;
- a dense layer reads the origin's summary (rolling statistics, lags, autocorrelations, recent naive errors);
- for each horizon h a shared dense head reads both, plus what is known of the TARGET time T + h (the same time
  in past days and weeks, same-phase values of sub-daily cycles, time of day and day of week, h) and outputs every
  quantile of asinh(y[T + h] / level) - asinh(y[T] / level); a linear path from the target-time features runs
  alongside, and both start at zero, i.e. at the last value.
Trained with the pinball loss over windows sampled from all series, weighted by level and by 1/h. Inputs are
standardised (scalers kept as JSON). Quantiles then get split-conformal offsets per horizon bucket from a held-out
tail of the training span, as in the gbm forecaster.

Keras and TensorFlow are imported inside methods only. Saved as a native `.keras` file; offsets, scalers and the
feature layout as JSON.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pydantic import Field

from aiops.errors import SchemaError
from models.base import Forecaster, ForecasterConfig
from models.forecasters._windows import (SeriesWindows, apply_offsets, buckets, calendar, conformal_offsets, gather,
                                         observed_origins, season_steps)
from models.panel import Panel

# target-time features the per-horizon head reads (besides the calendar and h)
TARGET = ("same1", "same2", "same3", "same_mean", "same_median", "same_min", "same_max", "same1_smooth",
          "week1", "week2")
CLIP = 50.0  # summary features in levels: a spike of 50x the daily mean carries no more information than that


class LstmConfig(ForecasterConfig):
    max_horizon: int = Field(288, ge=1, description="steps forecast at once; predict refuses longer horizons")
    window: int = Field(72, ge=2, description="recent steps the LSTM reads")
    units: int = Field(32, ge=1, description="LSTM units")
    hidden: int = Field(64, ge=1, description="units of the per-horizon dense head")
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    origins_per_series: int = Field(400, ge=1, description="training windows sampled per series")
    lags: int = Field(12, ge=1, description="recent values in the origin summary")
    windows: tuple[int, ...] = Field((6, 12, 72, 288, 2016), description="rolling-statistic windows (steps)")
    seasons_back: int = Field(7, ge=1, description="past days whose same time of day feeds the head")
    calibration_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="share of the training span (its end) held out for conformal offsets")
    n_jobs: int = Field(1, ge=1, description="TensorFlow threads (fixed, for reproducible results)")


def _pinball(quantiles: tuple[float, ...]):
    import keras
    from keras import ops

    q = np.asarray(quantiles, dtype="float32")

    def loss(y_true, y_pred):  # y_true: (batch, H, 2) = target, weight (0 where the target was not observed)
        z, w = y_true[..., :1], y_true[..., 1:]
        d = z - y_pred
        return ops.sum(w * ops.maximum(q * d, (q - 1) * d)) / (ops.sum(w) * len(q) + keras.config.epsilon())

    return loss


class Lstm(Forecaster):
    """Global Keras 3 LSTM quantile forecaster (catalog name "lstm"); see the module docstring."""

    name = "lstm"
    config_class = LstmConfig
    global_model = True
    requires = ("tensorflow-cpu==2.21.*", "keras>=3.15,<3.16")

    @property
    def min_history(self) -> int:
        # one training window (context + every horizon) before the held-out calibration tail
        c = self.config
        return int(np.ceil((c.window + c.max_horizon + 2) / (1 - c.calibration_fraction)))

    @property
    def context_steps(self) -> int:
        if hasattr(self, "season_"):
            return self._windows(np.zeros(1), 0, 1).context
        return max(self.min_history, max(self.config.windows))

    # --- inputs ---
    def _windows(self, y: np.ndarray, t0_ns: int, step_ns: int) -> SeriesWindows:
        c = self.config
        return SeriesWindows(y, t0_ns, step_ns, self.season_, c.lags, c.windows, c.seasons_back)

    def _inputs(self, panel: Panel, i: int, T: np.ndarray):
        """(recent (n, window, 3), summary (n, k), target (n, H, m), level (n,), base (n,)) for origins T."""
        c, H = self.config, self.config.max_horizon
        y = panel.univariate(i)
        t0, step = panel.index[i][0].value, panel.step.value
        win = self._windows(y, t0, step)
        TT = np.repeat(T, H)
        hh = np.tile(np.arange(1, H + 1), T.size)
        f, L = win.rows(TT, hh)
        L1 = L[::H]
        k = np.arange(-c.window + 1, 1)
        pos = T[:, None] + k[None, :]
        base = np.arcsinh(y[T] / L1)
        # everything as a change from the origin's value, like the target: "yesterday at this time" is then
        # directly a candidate forecast of the target
        recent = np.arcsinh(gather(y, pos, T[:, None]) / L1[:, None]) - base[:, None]
        tod, _ = calendar(t0, step, pos)
        recent = np.stack([recent, np.sin(2 * np.pi * tod), np.cos(2 * np.pi * tod)], axis=-1)
        summary = np.column_stack([f[n][::H] for n in self.summary_])
        periodic = [n for n in f if n.startswith("phase") and not n.endswith("median")]
        tgt = np.column_stack([np.arcsinh(f[n]) - np.repeat(base, H) for n in (*TARGET, *periodic)]
                              + [np.sin(2 * np.pi * f["tod"]), np.cos(2 * np.pi * f["tod"]),
                                 np.sin(2 * np.pi * f["dow"] / 7), np.cos(2 * np.pi * f["dow"] / 7),
                                 hh / H, np.log(hh) / np.log(H + 1)])
        tgt = tgt.reshape(T.size, H, -1)
        clean = [np.clip(np.nan_to_num(a, nan=0.0), -CLIP, CLIP).astype("float32") for a in (recent, summary, tgt)]
        return (*clean, L1, base)

    def _sample(self, panel: Panel, rng: np.random.Generator):
        """Training windows over every series: inputs, targets (z, weight) and whether each is calibration."""
        c, H = self.config, self.config.max_horizon
        end = max(ix[-1] for ix in panel.index)
        start = min(ix[0] for ix in panel.index)
        cutoff = end - (end - start) * c.calibration_fraction
        parts, cal = [], []
        for i in range(len(panel)):
            y, obs = panel.univariate(i), panel.observed[i]
            ncut = int(np.searchsorted(panel.index[i], cutoff))
            mean_level = max(float(np.abs(y).mean()), 1e-12)
            seen = observed_origins(obs, self.season_)
            for lo, hi, share, is_cal in ((c.window, ncut - H, 1 - c.calibration_fraction, False),
                                          (max(ncut, c.window), len(y) - H, c.calibration_fraction, True)):
                if hi - lo < 1:
                    continue
                T = np.sort(rng.integers(lo, hi, size=max(int(round(c.origins_per_series * share)), 1)))
                T = T[seen[T]]
                if T.size == 0:
                    continue
                recent, summary, tgt, L, base = self._inputs(panel, i, T)
                pos = T[:, None] + np.arange(1, H + 1)[None, :]
                z = np.arcsinh(y[pos] / L[:, None]) - base[:, None]
                # weights: the level (errors in the series' units) and 1/h (every octave of horizons counts alike;
                # the short ones, where the last value is hard to beat, would otherwise be a few percent of the loss)
                hw = 1.0 / np.arange(1, H + 1)
                w = np.clip(L / mean_level, 0.1, 10.0)[:, None] * obs[pos] * (hw / hw.mean())[None, :]
                parts.append((recent, summary, tgt, np.stack([z, w], axis=-1).astype("float32")))
                cal.append(np.full(T.size, is_cal))
        if not parts or not any((~k).any() for k in cal):
            raise SchemaError(
                f"history: no series is long enough to train {self.name} on: each needs window={c.window} steps "
                f"of context plus max_horizon={H} targets before its last {c.calibration_fraction:.0%} (held out "
                "for calibration); pass a longer history or lower window / max_horizon")
        stacked = [np.concatenate([p[j] for p in parts]) for j in range(4)]
        return stacked, np.concatenate(cal)

    # --- network ---
    def _network(self, n_summary: int, n_target: int):
        import keras
        from keras import layers

        c, H, nq = self.config, self.config.max_horizon, len(self.config.quantiles)
        recent = keras.Input((c.window, 3), name="recent")
        summary = keras.Input((n_summary,), name="summary")
        target = keras.Input((H, n_target), name="target")
        state = layers.LSTM(c.units, name="lstm")(recent)
        ctx = layers.Dense(c.hidden, activation="relu", name="origin")(layers.Concatenate()([state, summary]))
        per_h = layers.Concatenate(axis=-1)([layers.RepeatVector(H)(ctx), target])
        x = layers.Dense(c.hidden, activation="relu", name="head1")(per_h)
        x = layers.Dense(c.hidden // 2, activation="relu", name="head2")(x)
        # plus a linear path from the target-time features: a seasonal-naive-like forecast is one weight away
        # both start at zero, i.e. at the last value: training moves away from naive only where it pays
        out = layers.Add(name="quantiles")([layers.Dense(nq, kernel_initializer="zeros", name="head_out")(x),
                                            layers.Dense(nq, kernel_initializer="zeros", name="linear")(target)])
        return keras.Model([recent, summary, target], out)

    def _origin_names(self) -> tuple[str, ...]:
        w = self._windows(np.arange(4.0), 0, 1)
        with warnings.catch_warnings():  # a 4-point probe: all-NaN slices are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            return tuple(w.origin_features(np.array([3]), np.array([1.0])))

    def _seed(self) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(self.config.seed)
        tf.config.experimental.enable_op_determinism()
        try:  # only possible before TensorFlow's first op in this process
            tf.config.threading.set_intra_op_parallelism_threads(self.config.n_jobs)
            tf.config.threading.set_inter_op_parallelism_threads(self.config.n_jobs)
        except RuntimeError:
            pass

    def _fit(self, panel: Panel) -> None:
        import keras

        c = self.config
        self.season_ = season_steps(panel.step)
        self.summary_ = self._origin_names()
        (recent, summary, tgt, yz), cal = self._sample(panel, np.random.default_rng(c.seed))
        # standardise every input feature over the training windows (the summary mixes levels, counts, shares);
        # a feature that never varied in training (two weeks back, with a shorter history) is held at 0 later,
        # since the network never learnt what to do with it
        self.scalers_ = []
        for a in (recent, summary, tgt):
            flat = a[~cal].reshape(-1, a.shape[-1]).astype(np.float64)  # float64: the JSON copy is exact
            sd = flat.std(axis=0)
            self.scalers_.append((flat.mean(axis=0), np.where(sd > 1e-6, np.maximum(sd, 0.05), np.inf)))
        recent, summary, tgt = self._standard([recent, summary, tgt])
        self._seed()
        net = self._network(summary.shape[1], tgt.shape[2])
        net.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=_pinball(c.quantiles))
        tr = ~cal
        net.fit([recent[tr], summary[tr], tgt[tr]], yz[tr], epochs=c.epochs, batch_size=c.batch_size, shuffle=True,
                verbose=0)
        self.net_ = net
        H = c.max_horizon
        if cal.any():
            pred = self._run([recent[cal], summary[cal], tgt[cal]])
            z, w = yz[cal][..., 0], yz[cal][..., 1]
            h = np.broadcast_to(np.arange(1, H + 1), z.shape)
            ok = w > 0
            self.offsets_ = conformal_offsets(z[ok], pred[ok], h[ok], c.quantiles, H)
        else:
            self.offsets_ = np.zeros((int(buckets(np.array([H]))[0]) + 1, len(c.quantiles)))

    def _standard(self, inputs):
        return [np.clip((a - m) / s, -8, 8).astype("float32") for a, (m, s) in zip(inputs, self.scalers_)]

    def _run(self, inputs) -> np.ndarray:
        # a direct call, not predict(): no graph tracing per input shape, which dominates for a few series
        out = [self.net_([a[k:k + 1024] for a in inputs], training=False) for k in range(0, len(inputs[0]), 1024)]
        return np.concatenate([np.asarray(o) for o in out])

    def _predict(self, horizon: int, panel: Panel) -> np.ndarray:
        c = self.config
        if horizon > c.max_horizon:
            raise ValueError(f"horizon: {horizon} steps is beyond max_horizon={c.max_horizon} that {self.name} was "
                             f"trained for; ask for at most {c.max_horizon} or refit with max_horizon >= {horizon}")
        short = [(sid, len(ix)) for sid, ix in zip(panel.ids, panel.index) if len(ix) < c.window]
        if short:
            raise SchemaError(f"history: series {short[0][0]!r} has {short[0][1]} steps; {self.name} needs at least "
                              f"window={c.window} to forecast from; pass a longer history")
        parts = [self._inputs(panel, i, np.array([len(panel.index[i]) - 1])) for i in range(len(panel))]
        inputs = [np.concatenate([p[j] for p in parts]) for j in range(3)]
        L = np.concatenate([p[3] for p in parts])
        base = np.concatenate([p[4] for p in parts])
        z = self._run(self._standard(inputs))[:, :horizon, :]
        z = apply_offsets(z, np.arange(1, horizon + 1), self.offsets_, c.quantiles)
        return np.sinh(z + base[:, None, None]) * L[:, None, None]

    # --- persistence: a native .keras file, offsets and feature layout as JSON ---
    def _extra_meta(self) -> dict:
        return {"season": self.season_, "summary": list(self.summary_), "offsets": self.offsets_.tolist(),
                "scalers": [[m.tolist(), np.where(np.isinf(s), -1.0, s).tolist()] for m, s in self.scalers_]}

    def _load_extra_meta(self, extra: dict) -> None:
        self.season_ = int(extra["season"])
        self.summary_ = tuple(extra["summary"])
        self.offsets_ = np.asarray(extra["offsets"], dtype=np.float64)
        self.scalers_ = [(np.asarray(m), np.where(np.asarray(s) < 0, np.inf, s)) for m, s in extra["scalers"]]

    def _save_state(self, path: Path) -> None:
        self.net_.save(path / "lstm.keras")

    def _load_state(self, path: Path) -> None:
        import keras

        self.net_ = keras.saving.load_model(path / "lstm.keras", compile=False)
