"""Calibrate raw anomaly scores to [0, 1] so one threshold means the same on every series.

A detector's raw scores are on its own scale, and that scale differs from series to series. The calibrated score
of a raw score x is its probability under the raw scores seen in training for that series: the empirical CDF for
the body, and for the top `tail` fraction an exponential tail fitted to the excesses over the tail's start (the
peaks-over-threshold idea), so scores above anything seen in training still rank and do not all saturate at 1.
Series not seen in training use the pooled distribution of all series.

`Passthrough` is for detectors whose raw scores are already probabilities on one scale for every series (e.g.
models/detectors/likelihood.py, which keeps learning the distribution from the scored stream itself): it only clips
to [0, 1]. `Calibrator.from_dict` rebuilds either kind.
"""

from __future__ import annotations

import numpy as np

_GRID = 201  # stored quantiles of the body per series
_Z_EXP = 20.0  # excesses (in tail scale units) up to which the exponential tail is used as is


class _Dist:
    def __init__(self, qs: np.ndarray, u: float, beta: float, tail: float):
        self.qs, self.u, self.beta, self.tail = qs, u, beta, tail

    @classmethod
    def fit(cls, raw: np.ndarray, tail: float) -> _Dist:
        x = raw[np.isfinite(raw)]
        if x.size == 0:
            x = np.zeros(1)
        probs = np.linspace(0.0, 1.0 - tail, _GRID)
        qs = np.quantile(x, probs)
        u = float(qs[-1])
        exc = x[x > u] - u
        spread = float(np.subtract(*np.quantile(x, [0.75, 0.25]))) or float(np.std(x)) or 1.0
        beta = float(exc.mean()) if exc.size else spread
        return cls(qs, u, max(beta, 1e-9 * max(abs(u), 1.0), 1e-12), tail)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        out = np.full(raw.shape, np.nan)
        ok = np.isfinite(raw)
        x = raw[ok]
        probs = np.linspace(0.0, 1.0 - self.tail, _GRID)
        qs = self.qs
        # ties in the body (flat stretches of quantiles) take the upper probability: a raw score equal to the
        # training median is not rarer than the median
        body = np.interp(x, qs, probs, left=0.0, right=1.0 - self.tail)
        over = x > self.u
        z = (x[over] - self.u) / self.beta
        # beyond Z_EXP excesses the exponential tail would round to exactly 1.0 in float64 and every extreme point
        # would tie; past it the tail decays as 1/z instead, so the ranking of extremes survives (continuous,
        # monotone; probabilities below 1 - 1e-10 are untouched)
        far = z > _Z_EXP
        surv = np.exp(-np.minimum(z, _Z_EXP))
        surv[far] *= _Z_EXP / z[far]
        body[over] = 1.0 - self.tail * surv
        out[ok] = np.clip(body, 0.0, 1.0)
        return out

    def to_dict(self) -> dict:
        return {"qs": self.qs.tolist(), "u": self.u, "beta": self.beta, "tail": self.tail}

    @classmethod
    def from_dict(cls, d: dict) -> _Dist:
        return cls(np.asarray(d["qs"], dtype=np.float64), float(d["u"]), float(d["beta"]), float(d["tail"]))


class Calibrator:
    """Per-series (and pooled) maps from raw score to [0, 1]."""

    def __init__(self, tail: float = 0.05):
        if not 0 < tail < 0.5:
            raise ValueError(f"tail: expected a fraction in (0, 0.5), received {tail}")
        self.tail = tail

    def fit(self, ids, raw: list[np.ndarray]) -> Calibrator:
        raw = [np.asarray(r, dtype=np.float64) for r in raw]
        self.per_series_ = {sid: _Dist.fit(r, self.tail) for sid, r in zip(ids, raw, strict=True)}
        pooled = np.concatenate(raw) if raw else np.zeros(1)
        self.pooled_ = _Dist.fit(pooled, self.tail)
        return self

    def transform(self, ids, raw: list[np.ndarray]) -> list[np.ndarray]:
        return [self.per_series_.get(sid, self.pooled_).transform(np.asarray(r, dtype=np.float64))
                for sid, r in zip(ids, raw, strict=True)]

    def to_dict(self) -> dict:
        return {"tail": self.tail, "pooled": self.pooled_.to_dict(),
                "series": {k: v.to_dict() for k, v in self.per_series_.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator | Passthrough:
        if d.get("kind") == Passthrough.kind:
            return Passthrough()
        c = cls(tail=float(d["tail"]))
        c.pooled_ = _Dist.from_dict(d["pooled"])
        c.per_series_ = {k: _Dist.from_dict(v) for k, v in d["series"].items()}
        return c


class Passthrough:
    """The calibrator of a detector whose raw scores are already calibrated: clips them to [0, 1], keeps NaN."""

    kind = "passthrough"

    def fit(self, ids, raw: list[np.ndarray]) -> Passthrough:
        return self

    def transform(self, ids, raw: list[np.ndarray]) -> list[np.ndarray]:
        return [np.clip(np.asarray(r, dtype=np.float64), 0.0, 1.0) for r in raw]

    def to_dict(self) -> dict:
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> Passthrough:
        return cls()
