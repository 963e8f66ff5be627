"""The scaling planner on small hand-made demand: lead time, headroom, hysteresis, fall-back, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from aiops.errors import SchemaError
from aiops.optimize.planner import ModelHealth, PlannerConfig, plan, replicas_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)
HEALTHY = ModelHealth("gbm", "3", NOW - timedelta(hours=6), recent_error=0.1)


def forecast(values, q="p90"):
    times = [NOW + STEP * (i + 1) for i in range(len(values))]
    return pd.DataFrame({"time": times, "p50": np.asarray(values, float) * 0.8, "p90": values,
                         "p99": np.asarray(values, float) * 1.3})


def observed(values):
    return pd.Series(values, index=[NOW - STEP * (len(values) - 1 - i) for i in range(len(values))], dtype=float)


def test_replicas_cover_the_quantile_with_headroom_within_bounds():
    cfg = PlannerConfig(headroom=0.1, min_replicas=2, max_replicas=10)
    assert replicas_for(np.array([0, 100, 190, 5000]), 100.0, cfg).tolist() == [2, 2, 3, 10]


def test_square_root_staffing_adds_more_headroom_at_low_load_than_at_high_load():
    cfg = PlannerConfig(headroom=0.0, burst=2.0, max_replicas=1000)
    # R = 1 pod of demand: 1 + 2 * 1 = 3 pods; R = 100: 100 + 2 * 10 = 120 pods; R = 0: no burst allowance
    assert replicas_for(np.array([0.0, 100.0, 10_000.0]), 100.0, cfg).tolist() == [1, 3, 120]
    # without the burst allowance the same demand needs R pods
    assert replicas_for(np.array([100.0, 10_000.0]), 100.0, PlannerConfig(headroom=0.0, max_replicas=1000)).tolist() \
        == [1, 100]


def test_the_hold_can_keep_the_observed_level_instead_of_its_peak():
    # one burst of 900 in a quarter hour of 100: the peak hold keeps 9 pods, the level hold what 100 + burst needs
    seen = observed([100, 900, 100, 100])
    peak = plan(forecast([50] * 6), seen, capacity=100, now=NOW, health=HEALTHY,
                cfg=PlannerConfig(headroom=0.0, scale_in_hold=timedelta(minutes=20)))
    level = plan(forecast([50] * 6), seen, capacity=100, now=NOW, health=HEALTHY,
                 cfg=PlannerConfig(headroom=0.0, scale_in_hold=timedelta(minutes=20), hold_statistic="mean", burst=1.0))
    assert peak.target == 9
    assert level.target == 5  # mean 300 req/s: R = 3, 3 + sqrt(3) = 4.7 -> 5
    assert "mean over the last" in level.reason and "sqrt(R) replicas for bursts" in level.reason


def test_a_spike_is_provisioned_lead_time_ahead():
    # demand 100 req/s, a spike to 1000 at the 4th step (20 min ahead); pods take 10 min to be ready
    cfg = PlannerConfig(lead=timedelta(minutes=10), headroom=0.0)
    p = plan(forecast([100, 100, 100, 1000, 1000, 100]), observed([100] * 4), capacity=100, now=NOW,
             health=HEALTHY, cfg=cfg)
    assert p.mode == "predictive" and p.peak == 10
    by_time = dict(p.schedule)
    assert by_time[NOW + 2 * STEP] == 10  # 10 minutes before the spike the replicas are there
    assert by_time[NOW + STEP] == 1  # not earlier than needed: pre-scaling, not static peak provisioning
    assert p.target == 1
    assert "gbm v3 p90 forecast peaks at 1000 req/s" in p.reason


def test_the_target_now_covers_what_is_needed_within_the_lead():
    cfg = PlannerConfig(lead=timedelta(minutes=10), headroom=0.0)
    p = plan(forecast([100, 700, 100]), observed([100]), capacity=100, now=NOW, health=HEALTHY, cfg=cfg)
    assert p.target == 7


def test_never_scale_in_on_the_forecast_alone():
    # the forecast says demand falls to 50, but the last 15 minutes saw 900: keep what 900 needs
    cfg = PlannerConfig(headroom=0.0, scale_in_hold=timedelta(minutes=15))
    p = plan(forecast([50] * 6), observed([100, 900, 400, 300]), capacity=100, now=NOW, health=HEALTHY, cfg=cfg)
    assert p.target == 9 and all(r == 9 for _, r in p.schedule)
    assert "never below 9" in p.reason
    # once the observed demand has been low for the hold window, the plan follows the forecast down
    p = plan(forecast([50] * 6), observed([900, 100, 100, 100]), capacity=100, now=NOW, health=HEALTHY, cfg=cfg)
    assert p.target == 1


@pytest.mark.parametrize("health, why", [
    (None, "no champion forecaster"),
    (ModelHealth("gbm", "3", NOW - timedelta(days=5), 0.1), "was trained 5 days, 0:00:00 ago"),
    (ModelHealth("gbm", "3", NOW - timedelta(hours=1), 0.9), "was recently off by 90%"),
    (ModelHealth("gbm", "3", NOW - timedelta(hours=1), float("nan")), "was recently off by nan%"),
])
def test_falls_back_to_reactive_and_says_why(health, why):
    p = plan(forecast([1000] * 6), observed([100, 200]), capacity=100, now=NOW, health=health,
             cfg=PlannerConfig(headroom=0.0))
    assert p.mode == "reactive" and why in p.reason and p.target == 2 and p.schedule == []


def test_a_forecast_that_ends_before_now_is_not_trusted():
    stale = forecast([1000] * 3)
    stale["time"] = stale["time"] - timedelta(hours=1)
    p = plan(stale, observed([300]), capacity=100, now=NOW, health=HEALTHY, cfg=PlannerConfig(headroom=0.0))
    assert p.mode == "reactive" and "no step after now" in p.reason and p.target == 3


def test_a_forecast_with_missing_values_falls_back_and_one_below_zero_means_no_demand():
    f = forecast([100, float("nan"), 100])
    p = plan(f, observed([250]), capacity=100, now=NOW, health=HEALTHY, cfg=PlannerConfig(headroom=0.0))
    assert p.mode == "reactive" and "p90 forecast has missing values" in p.reason and p.target == 3
    p = plan(forecast([-5.0] * 3), observed([0.0]), capacity=100, now=NOW, health=HEALTHY)
    assert p.mode == "predictive" and p.target == 1 and p.peak == 1  # min_replicas


@pytest.mark.parametrize("mutate, msg", [
    (lambda f, o: (f.drop(columns=["p90"]), o, 100.0), "missing column(s) ['p90']"),
    (lambda f, o: (f.assign(p90="high"), o, 100.0), "column p90 is object; expected requests/s"),
    (lambda f, o: (f, o, 0.0), "capacity must be a positive number"),
    (lambda f, o: (f, o.iloc[:0], 100.0), "observed: no recent demand"),
])
def test_bad_input_is_named(mutate, msg):
    f, o, cap = mutate(forecast([100] * 3), observed([100]))
    with pytest.raises(SchemaError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        plan(f, o, capacity=cap, now=NOW, health=HEALTHY)


def test_config_is_checked():
    with pytest.raises(ValueError, match="min_replicas"):
        PlannerConfig(min_replicas=5, max_replicas=2)
