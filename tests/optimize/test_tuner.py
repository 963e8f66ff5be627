"""The NSGA-II tuner and random search over HPA settings, evaluated in the simulator."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aiops.optimize.tuner import (GENES, Evaluated, SearchSpace, TunerConfig, choose, decode, default_candidate,
                                  pareto, tune)
from aiops.optimize.whatif import Outcome, WorkloadModel

MODEL = WorkloadModel()
SPACE = SearchSpace(max_min_replicas=6, max_replicas=16, min_max_replicas=8)


def _demand(days: float = 1.5, seed: int = 0) -> np.ndarray:
    """A daily cycle between 1 and 10 pods' worth with short bursts (1-minute steps)."""
    t = np.arange(int(days * 1440))
    rng = np.random.default_rng(seed)
    level = 5.5 - 4.5 * np.cos(2 * np.pi * t / 1440)
    bursts = np.repeat(rng.random(len(t) // 20 + 1) < 0.08, 20)[: len(t)] * 3.0
    return (level + bursts) * MODEL.pod_capacity * 0.8


@given(st.lists(st.floats(0, 1), min_size=len(GENES), max_size=len(GENES)))
@settings(max_examples=200, deadline=None)
def test_every_genome_decodes_to_valid_settings_within_the_space(genome):
    c = decode(genome, SPACE)
    h = c.hpa
    assert 1 <= h.min_replicas <= SPACE.max_min_replicas and h.min_replicas <= h.max_replicas <= SPACE.max_replicas
    assert h.max_replicas >= SPACE.min_max_replicas
    assert SPACE.target[0] <= h.target_cpu_utilization <= SPACE.target[1]
    assert SPACE.cpu_request[0] <= c.cpu_request <= SPACE.cpu_request[1] + 1e-9
    assert 0 <= h.scale_down.stabilization_window_s <= SPACE.down_window_s[1]
    assert all(15 <= p.period_s <= 600 for p in h.scale_up.policies + h.scale_down.policies)


def test_the_search_is_reproducible_and_parallel_evaluation_changes_nothing():
    d = _demand()
    a = tune(d, model=MODEL, warmup=360, space=SPACE, cfg=TunerConfig(budget=16, population=8, seed=5, workers=1))
    b = tune(d, model=MODEL, warmup=360, space=SPACE, cfg=TunerConfig(budget=16, population=8, seed=5, workers=2))
    c = tune(d, model=MODEL, warmup=360, space=SPACE, cfg=TunerConfig(budget=16, population=8, seed=6, workers=1))
    key = lambda r: [(e.candidate.as_dict(), e.outcome) for e in r.evaluated]  # noqa: E731
    assert len(a.evaluated) == 16 and key(a) == key(b)
    assert key(a) != key(c)
    assert a.chosen.candidate.as_dict() == b.chosen.candidate.as_dict()
    state = random.getstate()
    tune(d, model=MODEL, warmup=360, space=SPACE, cfg=TunerConfig(budget=8, population=8, seed=1, workers=1))
    assert random.getstate() == state


def test_nsga2_improves_on_its_first_generation_and_reports_a_true_front():
    d = _demand(days=2)
    r = tune(d, model=MODEL, warmup=360, space=SPACE,
             cfg=TunerConfig(budget=64, population=16, seed=0, workers=2, cost="replica_hours"))
    first = pareto(r.evaluated[:16], "replica_hours")
    # every first-generation front point is matched or dominated by the final front
    for f in first:
        assert any(e.outcome.violation_minutes <= f.outcome.violation_minutes
                   and e.outcome.replica_hours <= f.outcome.replica_hours for e in r.front)
    for e in r.front:  # nothing evaluated dominates a front point
        assert not any(o.outcome.violation_minutes <= e.outcome.violation_minutes
                       and o.outcome.replica_hours <= e.outcome.replica_hours
                       and (o.outcome.violation_minutes, o.outcome.replica_hours)
                       != (e.outcome.violation_minutes, e.outcome.replica_hours) for o in r.evaluated)
    assert r.default.candidate == default_candidate(SPACE, MODEL)
    # the rule (within_cost): no costlier than the default, and the fewest violations among those
    assert r.chosen.outcome.replica_hours <= r.default.outcome.replica_hours
    cheaper = [e for e in r.evaluated if e.outcome.replica_hours <= r.default.outcome.replica_hours]
    assert r.chosen.outcome.violation_minutes == min(e.outcome.violation_minutes for e in cheaper)
    assert len(r.generations) == 3 and r.evaluations_per_s > 0
    rows = r.table()
    assert len(rows) == 64 and sum(x["chosen"] for x in rows) == 1 and sum(x["on_front"] for x in rows) == len(r.front)


def test_random_search_spends_the_same_budget_from_the_same_start():
    d = _demand()
    r = tune(d, model=MODEL, warmup=360, space=SPACE, method="random",
             cfg=TunerConfig(budget=12, population=8, seed=0, workers=1))
    assert len(r.evaluated) == 12 and r.evaluated[0].candidate == default_candidate(SPACE, MODEL)


def _ev(v: float, c: float) -> Evaluated:
    return Evaluated(default_candidate(SPACE, MODEL), Outcome(v, c, c, c, 1000.0))


def test_choice_rules():
    pts = [_ev(50, 10), _ev(5, 30), _ev(0, 80), _ev(20, 12)]
    best, why = choose(pts, budget_minutes=6, cost="replica_hours", rule="slo_budget")
    assert best is pts[1] and "cheapest" in why
    best, why = choose(pts, budget_minutes=0.5, cost="replica_hours", rule="slo_budget")
    assert best is pts[2]
    best, why = choose(pts, budget_minutes=-1, cost="replica_hours", rule="slo_budget")
    assert best is pts[2] and "no candidate met" in why
    best, why = choose(pts, budget_minutes=0, cost="replica_hours", rule="within_cost", baseline=pts[3])
    assert best is pts[3] and "no more replica-hours" in why
    with pytest.raises(ValueError, match="baseline"):
        choose(pts, budget_minutes=0, cost="replica_hours", rule="within_cost")
    assert [p.outcome.violation_minutes for p in pareto(pts, "replica_hours")] == [50, 20, 5, 0]


def test_config_is_validated():
    with pytest.raises(ValueError, match="multiple"):
        TunerConfig(population=10)
    with pytest.raises(ValueError):
        TunerConfig(budget=1)


def test_the_space_keeps_min_replicas_at_the_quiet_level_and_max_replicas_above_the_peak():
    d = _demand(days=2)
    need = MODEL.replicas_needed(d)
    space = SearchSpace.for_demand(d, MODEL)
    # a daily cycle from ~1 to ~10 pods (bursts to ~13): minReplicas may not hold the daytime level all night
    assert space.max_min_replicas == int(np.quantile(need, 0.05)) and space.max_min_replicas <= 2
    assert space.max_replicas == 2 * need.max() >= 20
    assert SearchSpace.for_demand(d, MODEL, quiet=0.5).max_min_replicas == int(np.median(need)) > 2
