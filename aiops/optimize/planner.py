"""The scaling planner: how many replicas a workload needs ahead of its forecast demand, and when.

From the champion forecaster's quantiles: the replicas the chosen upper quantile needs (with headroom), in place
`lead` ahead of time (pod start-up plus node provisioning), so the target at each instant is the most any moment
within the next `lead` needs. Scale-in has hysteresis: never below what the demand observed over the last
`scale_in_hold` needed, so the forecast alone never removes capacity. When the model is missing, stale or has
been wrong lately, the plan falls back to reactive behaviour (what the observed demand needs) and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from aiops.errors import SchemaError
from aiops.optimize.config import PlannerConfig


@dataclass(frozen=True)
class ModelHealth:
    """What the planner needs to know to trust a forecast: the model, its age and its recent error."""

    model: str
    version: str
    trained_at: datetime
    recent_error: float  # e.g. mean |actual - p50| / mean actual over the last day's forecasts


@dataclass
class ReplicaPlan:
    mode: Literal["predictive", "reactive"]
    reason: str
    target: int  # replicas to have now
    schedule: list[tuple[datetime, int]] = field(default_factory=list)  # replicas to have at each future step
    peak: int = 0


def replicas_for(demand: np.ndarray | float, capacity: float, cfg: PlannerConfig) -> np.ndarray:
    """Replicas that serve `demand` (requests/s) at `capacity` requests/s per pod with the headroom and the burst
    allowance, bounded.

    Square-root staffing (Halfin and Whitt, 1981): R = demand x (1 + headroom) / capacity pods carry the mean, and
    beta x sqrt(R) more carry the bursts around it. Arrivals that are roughly Poisson within a forecast step
    fluctuate like the square root of their level, so a fixed fraction of headroom is too little at low load and
    more than needed at high load."""
    r = np.maximum(np.asarray(demand, float), 0.0) * (1 + cfg.headroom) / capacity
    need = np.ceil(r + cfg.burst * np.sqrt(r) - 1e-9)
    return np.clip(need, cfg.min_replicas, cfg.max_replicas).astype(int)


def _check(forecast: pd.DataFrame, observed: pd.Series, capacity: float, cfg: PlannerConfig) -> None:
    if not capacity > 0 or not math.isfinite(capacity):
        raise SchemaError(f"capacity must be a positive number of requests/s per pod, got {capacity!r}")
    missing = {"time", cfg.quantile} - set(forecast.columns)
    if missing:
        raise SchemaError(f"forecast: missing column(s) {sorted(missing)}; it has {list(forecast.columns)}")
    if len(forecast) and not pd.api.types.is_numeric_dtype(forecast[cfg.quantile]):
        raise SchemaError(f"forecast: column {cfg.quantile} is {forecast[cfg.quantile].dtype}; expected requests/s")
    if observed.empty:
        raise SchemaError("observed: no recent demand; the planner needs at least one observation to plan from")


def plan(forecast: pd.DataFrame, observed: pd.Series, *, capacity: float, now: datetime,
         health: ModelHealth | None, cfg: PlannerConfig = PlannerConfig()) -> ReplicaPlan:
    """The replica plan from a quantile forecast (`time` and quantile columns, future steps) and the demand
    observed up to `now` (a Series indexed by time, requests/s)."""
    _check(forecast, observed, capacity, cfg)
    recent = observed[observed.index > now - cfg.scale_in_hold]
    recent = recent if not recent.empty else observed.iloc[-1:]
    seen = float(recent.max() if cfg.hold_statistic == "max" else recent.mean())
    floor = int(replicas_for(seen, capacity, cfg))
    reason = _distrust(health, now, cfg)
    if reason is not None:
        return ReplicaPlan("reactive", f"reactive: {reason}; provisioning for the observed demand", floor, [], floor)
    fc = forecast.sort_values("time")
    fc = fc[pd.to_datetime(fc["time"], utc=True) > pd.Timestamp(now)]
    if fc[cfg.quantile].isna().any():
        # the model could not forecast this series (e.g. too much of its recent history is missing): no forecast
        return ReplicaPlan("reactive", f"reactive: the {cfg.quantile} forecast has missing values; provisioning for "
                           "the observed demand", floor, [], floor)
    fc = fc.assign(**{cfg.quantile: fc[cfg.quantile].clip(lower=0.0)})  # below zero means no demand
    if fc.empty:
        return ReplicaPlan("reactive", "reactive: the forecast has no step after now; provisioning for the "
                           "observed demand", floor, [], floor)
    times = pd.DatetimeIndex(pd.to_datetime(fc["time"], utc=True)).tz_convert(None).to_numpy()
    need = replicas_for(fc[cfg.quantile].to_numpy(), capacity, cfg)
    # what must be in place at each step: the most any step within the next `lead` needs (pods take that long)
    lead = np.timedelta64(int(cfg.lead.total_seconds() * 1e9), "ns")
    ahead = np.array([need[(times >= t) & (times <= t + lead)].max() for t in times])
    first = need[times <= np.datetime64(pd.Timestamp(now).tz_convert(None)) + lead]
    target_now = int(max(first.max() if first.size else ahead[0], floor))
    schedule = [(pd.Timestamp(t, tz="UTC").to_pydatetime(), int(max(a, floor))) for t, a in zip(times, ahead)]
    peak = int(max(a for _, a in schedule))
    why = (f"predictive: {health.model} v{health.version} {cfg.quantile} forecast peaks at "
           f"{fc[cfg.quantile].max():.4g} req/s within the horizon, needing {peak} replicas at {capacity:g} req/s "
           f"per pod with {cfg.headroom:.0%} headroom{_burst(cfg)}, in place {cfg.lead} ahead; never below {floor} "
           f"(the observed demand's {cfg.hold_statistic} over the last {cfg.scale_in_hold})")
    return ReplicaPlan("predictive", why, target_now, schedule, peak)


def _burst(cfg: PlannerConfig) -> str:
    return f" and {cfg.burst:g} x sqrt(R) replicas for bursts" if cfg.burst else ""


def _distrust(health: ModelHealth | None, now: datetime, cfg: PlannerConfig) -> str | None:
    if health is None:
        return "no champion forecaster"
    age = now - health.trained_at
    if age > cfg.max_model_age:
        return f"the champion {health.model} v{health.version} was trained {age} ago (limit {cfg.max_model_age})"
    if not math.isfinite(health.recent_error) or health.recent_error > cfg.max_recent_error:
        return (f"the champion {health.model} v{health.version} was recently off by {health.recent_error:.0%} "
                f"(limit {cfg.max_recent_error:.0%})")
    return None
