"""The causal replay of the planner over recorded demand, and the oracle schedule."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from aiops.optimize.backtest import coarse, oracle_schedule, replay_plans
from aiops.optimize.planner import PlannerConfig

START = pd.Timestamp("2024-03-04 00:00")
TRAINED = datetime(2024, 3, 3, tzinfo=timezone.utc)


def _fine(days: float = 1.0) -> pd.Series:
    t = np.arange(int(days * 1440))
    demand = 100 + 80 * np.sin(2 * np.pi * t / 1440) + np.where((t % 360) > 300, 150, 0)  # a burst every 6 h
    return pd.Series(demand.astype(float), index=START + pd.to_timedelta(t, unit="min"))


def _oracle_predict(truth: pd.Series, seen: list):
    """Forecasts that are the true coarse future, recording what history each call was given."""

    def predict(hist: pd.DataFrame, h: int) -> pd.DataFrame:
        rows = []
        for sid, g in hist.groupby("series"):
            last = pd.Timestamp(g["ts"].max())
            seen.append((sid, last))
            ts = last + pd.Timedelta(minutes=5) * np.arange(1, h + 1)
            v = truth.reindex(ts).fillna(float(truth.iloc[-1])).to_numpy()  # past the end: the last value
            rows.append(pd.DataFrame({"series": sid, "ts": ts, "h": np.arange(1, h + 1), "p50": v, "p90": v, "p99": v}))
        return pd.concat(rows, ignore_index=True)

    return predict


def test_plans_see_only_the_past_and_cover_the_demand_with_a_perfect_forecast():
    fine = _fine()
    hist = coarse(fine, 5)
    seen: list = []
    cfg = PlannerConfig(quantile="p99", headroom=0.0, lead=pd.Timedelta(minutes=10), max_replicas=100)
    start = START + pd.Timedelta(hours=2)
    out = replay_plans(fine, hist, predict=_oracle_predict(hist, seen), start=start, capacity=50.0, cfg=cfg,
                       trained_at=TRAINED, horizon=6, context=48)
    origins = hist.index[hist.index >= start]
    assert len(out.modes) == len(origins) and (out.modes == "predictive").all()
    # causality: the forecast made at origin o read history up to the bucket before o, never o itself
    by_origin = dict(zip([f"o{i}" for i in range(len(origins))], origins))
    assert all(last == by_origin[sid] - pd.Timedelta(minutes=5) for sid, last in seen)
    assert (out.replicas[: 120] == -1).all() and (out.replicas[120:] >= 1).all()
    # with the truth as forecast, each 5-minute block has the pods its mean demand needs
    need = np.ceil(hist.reindex(origins).to_numpy() / 50.0 - 1e-9)
    planned = out.replicas[120::5][: len(need)]
    assert (planned >= need).all()


def test_a_model_that_is_badly_wrong_falls_back_to_reactive_from_its_own_track_record():
    fine = _fine()
    hist = coarse(fine, 5)

    def wrong(hist_: pd.DataFrame, h: int) -> pd.DataFrame:
        rows = []
        for sid, g in hist_.groupby("series"):
            ts = pd.Timestamp(g["ts"].max()) + pd.Timedelta(minutes=5) * np.arange(1, h + 1)
            rows.append(pd.DataFrame({"series": sid, "ts": ts, "h": np.arange(1, h + 1), "p50": 1.0, "p90": 1.0,
                                      "p99": 1.0}))
        return pd.concat(rows, ignore_index=True)

    out = replay_plans(fine, hist, predict=wrong, start=START + pd.Timedelta(hours=1), capacity=50.0,
                       cfg=PlannerConfig(max_replicas=100), trained_at=TRAINED, horizon=3, context=24)
    # the first origins have no track record yet; once 12 forecasts have come due, the error (~99 %) shows
    assert (out.modes.iloc[:12] == "predictive").all()
    assert (out.modes.iloc[13:] == "reactive").all() and out.errors.iloc[-1] > 0.9
    # reactive plans still provision for the demand observed over the last 15 minutes
    j = 1440 - 30
    assert out.replicas[j] >= np.ceil(fine.iloc[j - 15 : j].max() * 1.1 / 50.0 - 1e-9)


def test_oracle_schedule_is_the_running_maximum_over_the_lead():
    need = np.array([1, 1, 5, 1, 1, 1, 3, 1])
    assert oracle_schedule(need, 0).tolist() == need.tolist()
    assert oracle_schedule(need, 2).tolist() == [5, 5, 5, 1, 3, 3, 3, 1]


def test_coarse_means_blocks_and_keeps_gaps():
    fine = _fine(0.01).iloc[:10]
    fine.iloc[5:] = np.nan
    c = coarse(fine, 5)
    assert c.iloc[0] == pytest.approx(fine.iloc[:5].mean()) and np.isnan(c.iloc[1])


def test_replanning_between_forecasts_follows_the_observed_demand_each_minute():
    fine = pd.Series(100.0, index=START + pd.to_timedelta(np.arange(240), unit="min"))
    fine.iloc[122:] = 400.0  # a jump two minutes after an origin (120), unforeseen by the flat forecast
    hist = coarse(fine, 5)

    def flat(hist_: pd.DataFrame, h: int) -> pd.DataFrame:
        rows = []
        for sid, g in hist_.groupby("series"):
            ts = pd.Timestamp(g["ts"].max()) + pd.Timedelta(minutes=5) * np.arange(1, h + 1)
            rows.append(pd.DataFrame({"series": sid, "ts": ts, "h": np.arange(1, h + 1), "p50": 100.0,
                                      "p90": 100.0, "p99": 100.0}))
        return pd.concat(rows, ignore_index=True)

    from aiops.optimize.backtest import forecast_origins, plan_replay

    cfg = PlannerConfig(headroom=0.0, max_replicas=100)
    fcs = forecast_origins(hist, predict=flat, origins=hist.index[hist.index >= START + pd.Timedelta(hours=1)],
                           horizon=3, context=12)
    every5 = plan_replay(fine, hist, fcs, capacity=50.0, cfg=cfg, trained_at=TRAINED)
    every1 = plan_replay(fine, hist, fcs, capacity=50.0, cfg=cfg, trained_at=TRAINED, replan_every=1)
    # minute 123 has seen the jump: re-planned every minute it asks for 8 pods there; every 5 minutes only at 125
    assert every1.replicas[123] == 8 and every5.replicas[123] == 2 and every5.replicas[125] == 8
    assert (every1.replicas[60:123] == 2).all() and (every5.replicas[60:125] == 2).all()
