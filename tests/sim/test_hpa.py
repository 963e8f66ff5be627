"""The HPA algorithm against hand-computed cases from the Kubernetes docs, plus a property test."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.sim.hpa import REASON_OVER_MAX, HPABank, sync_every
from aiops.sim.spec import HPAScalingPolicy, HPAScalingRules, HPASpec

FAST_DOWN = HPAScalingRules(stabilization_window_s=0, policies=(HPAScalingPolicy(type="Percent", value=100, period_s=15),))


def one(hpa: HPASpec, dt: float = 60.0) -> HPABank:
    return HPABank([hpa], eval_interval_s=dt)


def ev(bank: HPABank, now: float, current: int, util: float, ready: int | None = None, unready: int = 0) -> int:
    d, _ = bank.evaluate(now, np.array([current]), np.array([current if ready is None else ready]),
                         np.array([unready]), np.array([util]))
    return int(d[0])


def test_sync_period():
    assert sync_every(60) == 1 and sync_every(15) == 1 and sync_every(5) == 3


def test_tolerance_is_a_no_op():
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.8))
    assert ev(b, 0, 4, 0.85) == 4  # ratio 1.0625, within 10 %
    assert ev(b, 60, 4, 0.73) == 4  # ratio 0.9125


def test_desired_is_ceil_of_ratio_times_ready():
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5, scale_down=FAST_DOWN))
    assert ev(b, 0, 3, 0.9) == 6  # ceil(3 * 1.8) = ceil(5.4)
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5, scale_down=FAST_DOWN))
    assert ev(b, 0, 10, 0.1) == 2  # ceil(10 * 0.2)


def test_unready_pods_count_as_zero_when_scaling_up():
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5))
    # 2 ready at 100 %, 2 unready: ratio 2 -> recomputed 2*2/4 = 1.0 -> within tolerance, no change
    assert ev(b, 0, 4, 1.0, ready=2, unready=2) == 4
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5))
    # 2 ready at 150 %: new ratio 3*2/4 = 1.5 -> ceil(1.5 * 4) = 6
    assert ev(b, 0, 4, 1.5, ready=2, unready=2) == 6


def test_default_scale_up_policy_limits_growth():
    # defaults: max(100 % per 15 s, 4 pods per 15 s): from 4, at most 8
    b = one(HPASpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5))
    assert ev(b, 0, 4, 2.5) == 8  # wants ceil(4 * 5) = 20
    b = one(HPASpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5))
    assert ev(b, 0, 2, 2.5) == 6  # from 2: max(2 + 2, 2 + 4) = 6


def test_pods_and_percent_policies_and_select_policy():
    up = lambda sel: HPAScalingRules(stabilization_window_s=0, select_policy=sel, policies=(  # noqa: E731
        HPAScalingPolicy(type="Pods", value=4, period_s=60), HPAScalingPolicy(type="Percent", value=100, period_s=60)))
    assert ev(one(HPASpec(max_replicas=100, target_cpu_utilization=0.5, scale_up=up("Max"))), 0, 10, 5.0) == 20
    assert ev(one(HPASpec(max_replicas=100, target_cpu_utilization=0.5, scale_up=up("Min"))), 0, 10, 5.0) == 14
    assert ev(one(HPASpec(max_replicas=100, target_cpu_utilization=0.5, scale_up=up("Disabled"))), 0, 10, 5.0) == 10
    pct50 = HPAScalingRules(stabilization_window_s=0, policies=(HPAScalingPolicy(type="Percent", value=50, period_s=60),))
    assert ev(one(HPASpec(max_replicas=100, target_cpu_utilization=0.5, scale_up=pct50)), 0, 5, 5.0) == 8  # ceil(7.5)
    down_pods = HPAScalingRules(stabilization_window_s=0, policies=(HPAScalingPolicy(type="Pods", value=2, period_s=60),))
    assert ev(one(HPASpec(max_replicas=100, target_cpu_utilization=0.5, scale_down=down_pods)), 0, 10, 0.05) == 8


def test_limit_uses_replicas_at_the_start_of_the_period():
    rules = HPAScalingRules(stabilization_window_s=0, policies=(HPAScalingPolicy(type="Pods", value=1, period_s=120),))
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5, scale_up=rules))
    assert ev(b, 0, 2, 2.0) == 3
    assert ev(b, 60, 3, 2.0) == 3  # +1 already happened within the last 120 s: period start = 2, limit 3
    assert ev(b, 120, 3, 2.0) == 4  # the event at t=0 is no longer inside (120 - 120, 120]


def test_scale_down_stabilisation_window_delays_scale_down():
    b = one(HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5))  # default 300 s window
    assert ev(b, 0, 10, 0.5) == 10  # recommendation 10 recorded
    for t in (60, 120, 180, 240):
        assert ev(b, t, 10, 0.1) == 10, t  # wants 2, but the max over the last 300 s is 10
    assert ev(b, 300, 10, 0.1) == 2  # the t=0 recommendation left the window (after cutoff is strict)


def test_scale_up_stabilisation_window_takes_the_minimum():
    up = HPAScalingRules(stabilization_window_s=120, policies=(HPAScalingPolicy(type="Percent", value=900, period_s=15),))
    b = one(HPASpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5, scale_up=up))
    assert ev(b, 0, 4, 0.5) == 4
    assert ev(b, 60, 4, 2.0) == 4  # min(4 at t=0, 16) = 4
    assert ev(b, 120, 4, 2.0) == 16  # t=0 left the window: min(16, 16)


def test_min_max_clamp():
    b = one(HPASpec(min_replicas=2, max_replicas=5, target_cpu_utilization=0.5))
    assert ev(b, 0, 4, 5.0) == 5
    b = one(HPASpec(min_replicas=2, max_replicas=5, target_cpu_utilization=0.5, scale_down=FAST_DOWN))
    assert ev(b, 0, 4, 0.01) == 2
    b = one(HPASpec(min_replicas=2, max_replicas=5, target_cpu_utilization=0.5))
    d, r = b.evaluate(0, np.array([9]), np.array([9]), np.array([0]), np.array([0.5]))
    assert d[0] == 5 and r[0] == REASON_OVER_MAX
    b = one(HPASpec(min_replicas=3, max_replicas=5))
    assert ev(b, 0, 1, 0.8) == 3  # below minReplicas: raised to min regardless of the metric


def test_no_ready_pods_means_no_metrics_and_no_change():
    b = one(HPASpec(min_replicas=1, max_replicas=10))
    assert ev(b, 0, 3, 5.0, ready=0, unready=3) == 3


def test_vectorised_rows_are_independent():
    hpas = [HPASpec(min_replicas=1, max_replicas=20, target_cpu_utilization=0.5, scale_down=FAST_DOWN), None,
            HPASpec(min_replicas=1, max_replicas=3, target_cpu_utilization=0.5)]
    b = HPABank(hpas, eval_interval_s=60)
    d, _ = b.evaluate(0, np.array([4, 4, 2]), np.array([4, 4, 2]), np.zeros(3, int), np.array([1.0, 9.0, 2.0]))
    assert d.tolist() == [8, 4, 3]


@settings(max_examples=60, deadline=None)
@given(
    mn=st.integers(1, 4), span=st.integers(0, 12), pods=st.integers(1, 5), period=st.sampled_from([60, 120, 300]),
    window=st.sampled_from([0, 60, 300]), utils=st.lists(st.floats(0.0, 4.0), min_size=5, max_size=40),
)
def test_property_bounds_and_policy_rate(mn, span, pods, period, window, utils):
    mx = mn + span
    up = HPAScalingRules(stabilization_window_s=0, policies=(HPAScalingPolicy(type="Pods", value=pods, period_s=period),))
    down = HPAScalingRules(stabilization_window_s=window, policies=(HPAScalingPolicy(type="Pods", value=pods, period_s=period),))
    b = one(HPASpec(min_replicas=mn, max_replicas=mx, target_cpu_utilization=0.6, scale_up=up, scale_down=down))
    cur = mn
    history = [(0.0 - 1e9, cur)]
    for k, u in enumerate(utils):
        now = 60.0 * k
        prev, cur = cur, ev(b, now, cur, u)
        assert mn <= cur <= mx
        # a scale-up may reach at most `pods` above the replicas at the period's start, a scale-down at most
        # `pods` below it (start = current - added + removed within (now - period, now], i.e. the value just
        # before that span)
        start = [c for t, c in history if t <= now - period][-1]
        if cur > prev:
            assert cur - start <= pods
        elif cur < prev:
            assert start - cur <= pods
        history.append((now, cur))
