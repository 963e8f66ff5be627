"""What-if evaluation: policies replayed through the real simulator engine, scored on SLO and cost."""

from __future__ import annotations

import numpy as np
import pytest

from aiops.optimize.whatif import HPA, HPAWithFloor, Scheduled, Static, WorkloadModel, evaluate
from aiops.sim.spec import HPASpec

MODEL = WorkloadModel()
CAP = MODEL.pod_capacity


def test_pod_capacity_is_where_the_simulated_p99_crosses_the_slo():
    demand = np.full(240, 4 * CAP * 0.98)  # four pods just within the SLO
    over = np.full(240, 4 * CAP * 1.03)  # the same four pods just beyond it
    ok, bad = evaluate(demand, [Static(4)], warmup=60)[0], evaluate(over, [Static(4)], warmup=60)[0]
    assert ok.violation_minutes == 0
    assert bad.violation_minutes == 180  # every scored minute
    assert ok.replica_hours == pytest.approx(4 * 3.0)
    assert ok.core_hours == pytest.approx(4 * 3.0 * MODEL.cpu_request)
    assert list(MODEL.replicas_needed(np.array([0.0, CAP, CAP + 1e-6]))) == [1, 1, 2]


def test_policies_in_one_run_do_not_interfere():
    rng = np.random.default_rng(3)
    demand = np.repeat(rng.uniform(0.5, 9.0, 24), 30) * CAP  # a new level every 30 minutes
    hpa = HPA(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.7))
    alone = evaluate(demand, [hpa], warmup=60)[0]
    together = evaluate(demand, [Static(3), hpa, Static(12)], warmup=60)
    assert together[1] == alone
    assert together[0].violation_minutes > 0 and together[2].violation_minutes == 0


def test_the_hpa_lags_a_step_up_and_a_schedule_ahead_of_it_does_not():
    demand = np.r_[np.full(120, 2 * CAP * 0.9), np.full(120, 8 * CAP * 0.9)]  # a jump at minute 120
    need = MODEL.replicas_needed(demand)
    ahead = need.copy()
    ahead[110:120] = need[120]  # the jump's replicas asked for 10 minutes early (pods and nodes take ~6)
    hpa = HPA(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.8))
    out_hpa, out_sched, out_floor = evaluate(
        demand, [hpa, Scheduled(ahead), HPAWithFloor(hpa.hpa, ahead)], warmup=60)
    assert out_hpa.violation_minutes >= 2  # pods take a minute to start, nodes three
    assert out_sched.violation_minutes == 0
    assert out_floor.violation_minutes == 0
    # the schedule's cost is what it asked for (spec.replicas integrated over the scored minutes)
    assert out_sched.replica_hours == pytest.approx(ahead[60:].sum() / 60)


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="longer than the warm-up"):
        evaluate(np.ones(10), [Static(1)], warmup=10)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.r_[np.ones(10), np.nan], [Static(1)])
    with pytest.raises(ValueError, match="one value per demand step"):
        evaluate(np.ones(20), [Scheduled(np.ones(5))])
    assert evaluate(np.ones(20), []) == []
