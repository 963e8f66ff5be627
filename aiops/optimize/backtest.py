"""Replay the scaling planner causally over recorded demand: what it would have asked for, step by step.

At every planning origin (every `every` steps of the fine demand series), a forecaster predicts the next
`horizon` coarse steps from the coarse history up to the origin (never after it), the planner turns that and the
fine demand observed so far into a replica target, and the target holds until the next origin. The result is a
replica schedule on the fine grid, ready for `aiops.optimize.whatif.Scheduled` (pre-scaling alone) or
`HPAWithFloor` (pre-scaling under an HPA). The model's recent error, which decides the fall-back to reactive
planning, is measured the same way: from the forecasts of the previous origins against what then happened.

`oracle_schedule` is the perfect-foresight bound: the replicas the true demand needs, in place `lead` steps early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from aiops.optimize.planner import ModelHealth, PlannerConfig, plan

Predict = Callable[[pd.DataFrame, int], pd.DataFrame]  # (history panel: series, ts, value; horizon) -> forecasts


@dataclass
class PlanReplay:
    replicas: np.ndarray  # per fine step, aligned with the demand (-1 before the first origin)
    modes: pd.Series  # per origin: "predictive" or "reactive"
    errors: pd.Series  # per origin: the recent relative error the planner was given


def coarse(fine: pd.Series, every: int) -> pd.Series:
    """Mean of each block of `every` fine steps, labelled by the block's start (NaN where all are NaN)."""
    step = fine.index[1] - fine.index[0]
    return fine.resample(step * every, origin=fine.index[0], label="left", closed="left").mean()


def forecast_origins(coarse_hist: pd.Series, *, predict: Predict, origins: pd.DatetimeIndex, horizon: int = 12,
                     context: int = 2304, batch: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> dict[pd.Timestamp, pd.DataFrame]:
    """The forecast made at each origin from the coarse history strictly before it (the bucket starting at the
    origin has not happened yet), with a `time` column: the end of each forecast bucket."""
    values = coarse_hist.to_numpy(np.float64)
    pos = {t: i for i, t in enumerate(coarse_hist.index)}
    step = coarse_hist.index[1] - coarse_hist.index[0]
    out: dict[pd.Timestamp, pd.DataFrame] = {}
    for b in range(0, len(origins), batch):
        chunk = origins[b : b + batch]
        frames = []
        for k, o in enumerate(chunk):
            i = pos[o]
            lo = max(0, i - context)
            frames.append(pd.DataFrame({"series": f"o{b + k}", "ts": coarse_hist.index[lo:i], "value": values[lo:i]}))
        fc = predict(pd.concat(frames, ignore_index=True), horizon)
        for k, (sid, f) in enumerate(sorted(fc.groupby("series"), key=lambda kv: int(kv[0][1:]))):
            f = f.sort_values("h")
            # a forecast step labelled t is the demand over [t, t + step): the planner gets its end
            out[origins[int(sid[1:])]] = f.assign(time=pd.to_datetime(f["ts"], utc=True) + step)
        if progress:
            progress(min(b + batch, len(origins)), len(origins))
    return out


def plan_replay(fine: pd.Series, coarse_hist: pd.Series, forecasts: dict[pd.Timestamp, pd.DataFrame], *,
                capacity: float, cfg: PlannerConfig, model: str = "model", version: str = "1",
                trained_at: datetime | None = None, error_window: int = 288, replan_every: int | None = None
                ) -> PlanReplay:
    """Plan at every origin of `forecasts` (sorted) with the demand observed up to it; targets hold until the next.

    `replan_every` (fine steps): also re-plan between origins, from the latest forecast and the newer observations
    (a planner that runs more often than its forecaster; a shorter interval needs a shorter lead)."""
    every = int(round((coarse_hist.index[1] - coarse_hist.index[0]) / (fine.index[1] - fine.index[0])))
    origins = pd.DatetimeIndex(sorted(forecasts))
    trained_at = trained_at or datetime(1970, 1, 1, tzinfo=timezone.utc)
    reps = np.full(len(fine), -1, np.int64)
    fine_pos = fine.index.get_indexer(origins)
    fine_utc = fine.tz_localize("UTC") if fine.index.tz is None else fine
    p50_next = pd.Series([float(forecasts[o]["p50"].iloc[0]) if len(forecasts[o]) else np.nan for o in origins],
                         index=origins)
    modes, errs = {}, {}
    for k, o in enumerate(origins):
        err = _recent_error(p50_next, coarse_hist, o, error_window)
        health = ModelHealth(model, version, trained_at, err)
        j0 = fine_pos[k]
        step = replan_every or every
        for j in range(j0, min(j0 + every, len(fine)), step):
            observed = fine_utc.iloc[max(0, j - 60) : j]
            if observed.empty:
                observed = fine_utc.iloc[j : j + 1] * 0  # nothing seen yet: no floor from observations
            now = fine_utc.index[j].to_pydatetime()
            p = plan(forecasts[o], observed, capacity=capacity, now=now, health=health, cfg=cfg)
            reps[j : j + step] = p.target
            if j == j0:
                modes[o], errs[o] = p.mode, err
    return PlanReplay(reps, pd.Series(modes), pd.Series(errs))


def replay_plans(fine: pd.Series, coarse_hist: pd.Series, *, predict: Predict, start: pd.Timestamp,
                 capacity: float, cfg: PlannerConfig, model: str = "model", version: str = "1",
                 trained_at: datetime | None = None, horizon: int = 12, context: int = 2304, batch: int = 64,
                 error_window: int = 288, progress: Callable[[int, int], None] | None = None) -> PlanReplay:
    """Plan at every coarse step from `start` to the end of `fine` (requests/s, regular index, no NaN).

    `coarse_hist` is the coarse series the forecaster reads (NaN where unknown); a forecast at origin o sees its
    values with timestamps < o only (the bucket starting at o has not happened yet).
    """
    origins = coarse_hist.index[(coarse_hist.index >= start) & (coarse_hist.index <= fine.index[-1])]
    fcs = forecast_origins(coarse_hist, predict=predict, origins=origins, horizon=horizon, context=context,
                           batch=batch, progress=progress)
    return plan_replay(fine, coarse_hist, fcs, capacity=capacity, cfg=cfg, model=model, version=version,
                       trained_at=trained_at, error_window=error_window)


def _recent_error(p50_next: pd.Series, actual: pd.Series, o: pd.Timestamp, window: int) -> float:
    """Mean |actual - p50| / mean actual of the one-step forecasts whose step has fully happened by `o`."""
    past = p50_next[(p50_next.index < o)].iloc[-window:]
    if len(past) < 12:
        return 0.0  # too little track record to distrust the model yet (the model's own holdout vouched for it)
    a = actual.reindex(past.index).to_numpy()
    ok = np.isfinite(a) & np.isfinite(past.to_numpy())
    if ok.sum() < 12 or a[ok].mean() <= 0:
        return 0.0
    return float(np.abs(a[ok] - past.to_numpy()[ok]).mean() / a[ok].mean())


def oracle_schedule(need: np.ndarray, lead: int) -> np.ndarray:
    """At each step, the most replicas any step within the next `lead` steps needs (perfect foresight)."""
    need = np.asarray(need, np.int64)
    out = need.copy()
    for k in range(1, lead + 1):
        out[:-k] = np.maximum(out[:-k], need[k:])
    return out
