"""Demand (requests per second per workload) and how a workload's pods answer it.

Demand does not depend on the cluster's state, so the engine computes it for a whole span of steps at once
(shape (n, W)). Noise is drawn per workload and per block of `BLOCK` steps from a generator keyed by
(seed, workload name, block), so the same step always gets the same noise however the run is cut into calls,
and adding a workload or an incident does not change another workload's demand.

The response functions (CPU throttling, queueing latency, latency histogram cut at the timeout) are pure array
maths used by the engine after its time loop, over all recorded steps at once.
"""

from __future__ import annotations

import zlib
from datetime import datetime

import numpy as np

from aiops.sim.replay import trace_demand
from aiops.sim.spec import WorkloadSpec
from aiops.sim.state import LATENCY_BUCKETS_S

BLOCK = 4096  # steps per noise block
TIMEOUT_S = 30.0  # requests time out here (a typical ingress/proxy timeout): latency never exceeds it
LN100 = float(np.log(100.0))  # p99 of an exponential sojourn time = mean * ln(100)
_DEMAND_STREAM = 1


def name_key(*parts: str) -> int:
    """A stable 32-bit key of names (crc32), to key random streams by name rather than position."""
    return zlib.crc32("/".join(parts).encode())


class DemandModel:
    """Per-workload demand shapes, vectorised over workloads."""

    def __init__(self, workloads: tuple[WorkloadSpec, ...], *, start: datetime, step_s: int, seed: int):
        self.workloads = workloads
        self.step_s = int(step_s)
        self.seed = int(seed)
        self.start_unix = int(start.timestamp())
        d = [w.demand for w in workloads]
        self.base = np.array([x.base_rps for x in d])
        self.daily = np.array([x.daily_amplitude for x in d])
        self.peak = np.array([x.peak_hour for x in d])
        self.weekly = np.array([x.weekly_amplitude for x in d])
        self.trend = np.array([x.trend_per_day for x in d])
        self.noise = np.array([x.noise for x in d])
        self.keys = [name_key(w.namespace, w.name) for w in workloads]
        self.traced = [i for i, x in enumerate(d) if x.trace is not None]
        self._noise_cache: dict[int, np.ndarray] = {}

    def _noise_block(self, b: int) -> np.ndarray:
        """Standard normal noise of block `b`, shape (BLOCK, W)."""
        got = self._noise_cache.get(b)
        if got is None:
            cols = [np.random.default_rng([self.seed, _DEMAND_STREAM, k, b]).standard_normal(BLOCK) for k in self.keys]
            got = np.stack(cols, axis=1) if cols else np.zeros((BLOCK, 0))
            if len(self._noise_cache) > 8:
                self._noise_cache.clear()
            self._noise_cache[b] = got
        return got

    def noise_z(self, t0: int, n: int) -> np.ndarray:
        out = np.empty((n, len(self.keys)))
        t = t0
        while t < t0 + n:
            b, off = divmod(t, BLOCK)
            k = min(BLOCK - off, t0 + n - t)
            out[t - t0 : t - t0 + k] = self._noise_block(b)[off : off + k]
            t += k
        return out

    def rps(self, t0: int, n: int) -> np.ndarray:
        """Demand of steps [t0, t0+n) in requests per second, shape (n, W), before incidents."""
        secs = self.start_unix + (np.arange(t0, t0 + n, dtype=np.int64) * self.step_s)
        hour = (secs % 86400) / 3600.0
        # unix day 0 was a Thursday: weekday = (days + 3) % 7 with Monday = 0
        weekday = ((secs // 86400) + 3) % 7
        days = (secs - self.start_unix) / 86400.0
        daily = 1.0 + self.daily * np.cos(2 * np.pi * (hour[:, None] - self.peak) / 24.0)
        weekly = 1.0 - self.weekly * (weekday[:, None] >= 5)
        trend = np.power(1.0 + self.trend, days[:, None])
        sigma = self.noise
        # lognormal noise with mean 1: exp(sigma z - sigma^2 / 2)
        noise = np.exp(sigma * self.noise_z(t0, n) - 0.5 * sigma * sigma)
        out = self.base * daily * weekly * trend * noise
        for i in self.traced:
            tr = self.workloads[i].demand.trace
            assert tr is not None
            out[:, i] = trace_demand(tr, self.start_unix, self.step_s, t0, n)
        return out


def throttled_ratio(need: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Fraction of CFS periods (100 ms) throttled when a pod needs `need` cores on average under a `cap` quota.

    Demand is bursty within a period, so throttling starts before the average reaches the quota: we use a
    ramp from 0 at 70 % of the quota to 1 at 130 % (an approximation; cAdvisor's real ratio depends on the
    burst pattern).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(cap > 0, need / cap, 0.0)
    return np.clip((u - 0.7) / 0.6, 0.0, 1.0)


def latency_mean(service_s: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Mean sojourn time of an M/M/1 queue, service / (1 - rho), before the timeout cuts requests off; inf when
    rho >= 1 (the queue grows without bound: every request times out)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1.0, service_s / np.maximum(1.0 - rho, 1e-12), np.inf)


def latency_p99(mean_s: np.ndarray) -> np.ndarray:
    """p99 of an exponential sojourn time with this mean (mean * ln 100), capped at the timeout."""
    return np.minimum(mean_s * LN100, TIMEOUT_S)


_BUCKETS = np.asarray(LATENCY_BUCKETS_S)
_N_BELOW = int(np.searchsorted(_BUCKETS, TIMEOUT_S))  # buckets below the timeout; the rest hold every request
_NEG_BUCKETS32 = -np.asarray(LATENCY_BUCKETS_S[:_N_BELOW], dtype=np.float32)


def latency_totals(requests: np.ndarray, mean_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What `requests` (n, W) with exponential latency of mean `mean_s` (n, W), cut at `TIMEOUT_S`, add to the
    latency counters, summed over the n steps: cumulative bucket counts (LATENCY_BUCKETS_S then +Inf; every
    request lands in the buckets >= the timeout), the latency sum of the requests served before the timeout in
    seconds, and the requests that timed out (each lasting exactly the timeout), shapes (W, buckets + 1), (W,),
    (W,).

    The exponentials of the buckets are computed in float32 (the engine's largest single cost otherwise); bucket
    counts are made monotone again after the float32 sums.
    """
    inv = 1.0 / np.maximum(mean_s, 1e-12)  # 0 for an infinite mean
    tail = np.exp(_NEG_BUCKETS32 * inv.astype(np.float32)[..., None])  # P(latency > b), b below the timeout
    total = requests.sum(axis=0)
    above = np.einsum("tw,twb->wb", requests.astype(np.float32), tail, dtype=np.float64)
    out = np.empty((requests.shape[1], len(LATENCY_BUCKETS_S) + 1))
    out[:, :_N_BELOW] = np.clip(total[:, None] - above, 0.0, total[:, None])
    out[:, _N_BELOW:] = total[:, None]
    np.maximum.accumulate(out, axis=1, out=out)
    p_timeout = np.exp(-TIMEOUT_S * inv)  # P(latency >= timeout)
    # E[min(X, T)] = mean * (1 - exp(-T / mean)); T for an infinite mean
    with np.errstate(invalid="ignore"):
        cut_mean = np.where(inv > 0, -np.expm1(-TIMEOUT_S * inv) / inv, TIMEOUT_S)
    timed_out = requests * p_timeout
    served_sum = np.maximum((requests * cut_mean - TIMEOUT_S * timed_out).sum(axis=0), 0.0)
    return out, served_sum, timed_out.sum(axis=0)


def histogram_increments(requests: np.ndarray, mean_s: np.ndarray) -> np.ndarray:
    """Cumulative bucket increments (LATENCY_BUCKETS_S then +Inf) for `requests` with exponential latency cut at
    the timeout (float64 reference of `latency_totals`' buckets).

    `requests`, `mean_s` have the same shape (..., ); the result has one more trailing axis of len(buckets)+1.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        cdf = 1.0 - np.exp(-_BUCKETS / np.maximum(mean_s, 1e-12)[..., None])
    cdf[..., _N_BELOW:] = 1.0
    cdf = np.concatenate([cdf, np.ones(cdf.shape[:-1] + (1,))], axis=-1)
    return requests[..., None] * cdf
