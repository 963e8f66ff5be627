"""The PuLP right-sizer: known answers on hand-made usage, causal risk estimates, calibration under drift, memory
margins and OOM bumps, namespace budgets, bad input, solve status."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aiops import errors
from aiops.errors import SchemaError, UnknownNameError
from aiops.optimize import rightsize_risk as risk
from aiops.optimize.rightsize import (
    EXTRA_COLUMNS, OUTPUT_COLUMNS, InfeasibleBudget, RightsizeConfig, cpu_grid, memory_grid, rightsize)
from aiops.optimize.rightsize_baselines import krr_simple

MIB = 1024**2
T0 = pd.Timestamp("2026-03-01", tz="UTC")
STEP = pd.Timedelta(minutes=10)
PER_DAY = 144
FAST = dict(window=pd.Timedelta(days=7), horizon=pd.Timedelta(days=7), n_splits=4)


def frame(series: str, cpu, memory=200 * MIB, start=T0) -> pd.DataFrame:
    cpu = np.asarray(cpu, float)
    memory = np.broadcast_to(np.asarray(memory, float), cpu.shape)
    return pd.DataFrame({"series": series, "ts": start + STEP * np.arange(len(cpu)), "cpu": cpu, "memory": memory})


def row(result, series: str) -> pd.Series:
    return result.recommendations.set_index("series").loc[series]


def spikes(days: int, base: float, spike: float, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cpu = np.full(days * PER_DAY, base)
    cpu[rng.random(cpu.size) < share] = spike
    return cpu


def test_a_constant_workload_gets_the_smallest_candidates_above_its_usage():
    res = rightsize(frame("a", np.full(21 * PER_DAY, 0.25), 100 * MIB), RightsizeConfig(**FAST))
    rec, grid = row(res, "a"), cpu_grid(RightsizeConfig())
    assert rec["cpu_request"] == grid[grid >= 0.25][0]
    assert rec["cpu_request"] <= 0.25 * 1.02 + 0.005  # the grid's step (2 %, 5 m): nothing wasted beyond it
    assert rec["cpu_risk_in_sample"] == rec["cpu_risk_expected"] == 0
    mgrid = memory_grid(RightsizeConfig())
    assert rec["memory_request"] == mgrid[mgrid >= 100 * MIB][0] <= 100 * MIB * 1.02 + 8 * MIB
    assert rec["memory_limit"] == 150 * MIB  # the peak + 50 %
    assert np.isnan(rec["cpu_limit"])
    assert list(res.recommendations.columns) == [*OUTPUT_COLUMNS, *EXTRA_COLUMNS]
    assert "decided by the risk bound" in rec["why"]
    assert "p99.9 of the history 100.0Mi, limit 150Mi: the peak 100.0Mi + 50%" in rec["why"]


def test_spikes_are_covered_only_when_the_risk_target_requires_it():
    usage = frame("a", spikes(28, 0.2, 1.0, 0.10, seed=1))
    tight = row(rightsize(usage, RightsizeConfig(**FAST)), "a")  # 10 % spikes, 5 % target: must cover them
    loose = row(rightsize(usage, RightsizeConfig(cpu_risk={"default": 0.2}, **FAST)), "a")
    assert tight["cpu_request"] >= 1.0 and tight["cpu_risk_expected"] <= 0.05
    assert 0.2 <= loose["cpu_request"] < 0.25  # 10 % above the request is within a 20 % target
    assert 0.05 < loose["cpu_risk_expected"] <= 0.2 and loose["monthly_cost"] < tight["monthly_cost"]
    assert "target 20.0%" in loose["why"]


def test_classes_carry_their_own_targets():
    usage = pd.concat([frame("batch", spikes(28, 0.2, 1.0, 0.10, seed=2)),
                       frame("web", spikes(28, 0.2, 1.0, 0.10, seed=3))])
    res = rightsize(usage, RightsizeConfig(cpu_risk={"default": 0.05, "batch": 0.2}, **FAST),
                    classes={"batch": "batch"})
    assert row(res, "batch")["cpu_request"] < 0.25 <= 1.0 <= row(res, "web")["cpu_request"]


def test_the_risk_estimate_is_causal():
    rng = np.random.default_rng(4)
    cpu = 0.3 + 0.1 * rng.random(35 * PER_DAY)
    full = frame("a", cpu)
    end = full["ts"].iloc[28 * PER_DAY - 1]
    changed = full.copy()
    future = changed["ts"] > end
    changed.loc[future, "cpu"] *= 5  # the future changes completely
    changed.loc[future, "memory"] *= 5
    results = [rightsize(f, RightsizeConfig(**FAST), now=end).recommendations for f in (full, changed)]
    history = rightsize(full[~future], RightsizeConfig(**FAST)).recommendations
    pd.testing.assert_frame_equal(results[0], results[1])
    pd.testing.assert_frame_equal(results[0], history)


def test_under_drift_the_calibrated_request_keeps_its_risk_and_the_in_sample_p95_does_not():
    rng = np.random.default_rng(5)
    days, hist = 35, 28
    t = np.arange(days * PER_DAY) / PER_DAY
    parts = []
    for k in range(8):  # usage growing 0.4 to 3.2 % a day, with daily cycles and noise
        cpu = 0.3 * np.exp(0.004 * (k + 1) * t) * (1 + 0.2 * np.sin(2 * np.pi * t + k)) \
            + 0.04 * rng.standard_normal(t.size)
        parts.append(frame(f"w{k}", np.clip(cpu, 0, None)))
    usage = pd.concat(parts, ignore_index=True)
    end = T0 + STEP * (hist * PER_DAY - 1)
    history, future = usage[usage["ts"] <= end], usage[usage["ts"] > end]
    ours = rightsize(history, RightsizeConfig(**FAST)).recommendations.set_index("series")["cpu_request"]
    krr = krr_simple(history).set_index("series")["cpu_request"]  # in-sample p95 over 14 days

    def exceedance(req):
        return future.groupby("series").apply(lambda f: float(np.mean(f["cpu"] > req[f.name])),
                                              include_groups=False)

    assert abs(exceedance(ours).mean() - 0.05) < 0.03  # 7 daily peaks per test week: a noisy measure
    assert exceedance(krr).mean() > 0.25


def _spiky_memory(days: int = 21, spikes: int = 2) -> np.ndarray:
    mem = np.full(days * PER_DAY, 400 * MIB)
    mem[100:100 + spikes] = 1000 * MIB  # a few minutes of a spike: under 0.1 % of the samples
    return mem


def test_the_memory_request_pays_for_the_level_and_the_limit_covers_the_peak():
    mem = _spiky_memory()
    res = rightsize(frame("a", np.full(mem.size, 0.1), mem), RightsizeConfig(**FAST))
    a, mgrid = row(res, "a"), memory_grid(RightsizeConfig())
    assert a["memory_request"] == mgrid[mgrid >= 400 * MIB][0] < 420 * MIB  # p99.9: the spike is not paid for
    assert a["memory_limit"] == 1500 * MIB and a["memory_peak"] == 1000 * MIB  # but never killed by it
    assert "p99.9 of the history 400.0Mi" in a["why"] and "the peak 1000.0Mi + 50%" in a["why"]
    peak = row(rightsize(frame("a", np.full(mem.size, 0.1), mem), RightsizeConfig(memory_quantile=1.0, **FAST)), "a")
    assert peak["memory_request"] == mgrid[mgrid >= 1000 * MIB][0]  # quantile 1 = the peak, as before
    assert peak["memory_limit"] == 1500 * MIB and "memory 1000Mi: peak of the history 1000.0Mi" in peak["why"]
    longer = _spiky_memory(spikes=30)  # a spike that lasts 5 hours is part of the level
    assert row(rightsize(frame("a", np.full(mem.size, 0.1), longer), RightsizeConfig(**FAST)),
               "a")["memory_request"] >= 1000 * MIB


def test_a_memory_level_the_workload_left_weeks_ago_still_sets_the_request_unlike_krr():
    mem = np.r_[np.full(7 * PER_DAY, 1000 * MIB), np.full(21 * PER_DAY, 400 * MIB)]  # a high week, then three low
    usage = frame("a", np.full(mem.size, 0.1), mem)
    ours = row(rightsize(usage, RightsizeConfig(**FAST)), "a")
    krr = krr_simple(usage).set_index("series").loc["a"]
    assert ours["memory_request"] >= 1000 * MIB and ours["memory_limit"] == 1500 * MIB  # the whole history
    assert krr["memory_request"] == krr["memory_limit"] == np.ceil(400 * 1.15) * MIB  # its 14 days only


def test_oom_kills_raise_both_margins_and_the_limit_ratio_is_a_floor():
    mem = _spiky_memory()
    usage = pd.concat([frame("a", np.full(mem.size, 0.1), mem), frame("b", np.full(mem.size, 0.1), mem)])
    res = rightsize(usage, RightsizeConfig(**FAST), ooms={"b": 2})
    mgrid = memory_grid(RightsizeConfig())
    a, b = row(res, "a"), row(res, "b")
    assert b["memory_request"] == mgrid[mgrid >= 560 * MIB][0]  # the level + 2 x 20 %
    assert b["memory_limit"] == 1900 * MIB  # the peak + 50 % + 2 x 20 %
    assert a["memory_limit"] == 1500 * MIB
    assert "2 OOM kill(s)" in b["why"] and "OOM" not in a["why"]
    ratio = row(rightsize(usage, RightsizeConfig(memory_limit_ratio=5.0, **FAST)), "a")
    assert ratio["memory_limit"] == 5 * ratio["memory_request"] > 1500 * MIB
    assert f"limit {5 * ratio['memory_request'] / MIB:.0f}Mi: the request x 5" in ratio["why"]
    margin = row(rightsize(usage, RightsizeConfig(memory_margin=0.25, memory_limit_margin=1.0, **FAST)), "a")
    assert margin["memory_request"] == mgrid[mgrid >= 500 * MIB][0] and margin["memory_limit"] == 2000 * MIB


def _team() -> pd.DataFrame:
    return pd.concat([frame(f"w{k}", spikes(28, 0.2, 1.0, 0.03, seed=10 + k)) for k in range(3)])


def test_a_binding_namespace_budget_changes_the_choice_and_an_impossible_one_names_the_namespace():
    # unmet CPU priced high: unconstrained, the model buys requests above the 5 % bound, covering the spikes
    priced = dict(unmet_cpu_price_per_core_hour=5.0, **FAST)
    ns = {f"w{k}": "team" for k in range(3)}
    free = rightsize(_team(), RightsizeConfig(**priced), namespaces=ns).recommendations
    floor = rightsize(_team(), RightsizeConfig(**FAST), namespaces=ns).recommendations
    assert free["monthly_cost"].sum() > floor["monthly_cost"].sum()
    budget = (free["monthly_cost"].sum() + floor["monthly_cost"].sum()) / 2
    res = rightsize(_team(), RightsizeConfig(budgets={"team": budget}, **priced), namespaces=ns)
    held = res.recommendations
    assert held["monthly_cost"].sum() <= budget + 1e-6
    assert (held["cpu_request"] < free["cpu_request"]).any()
    assert (held["cpu_risk_expected"] <= 0.05).all()
    assert held["why"].str.contains("budget/quota").any()
    with pytest.raises(errors.InfeasibleBudget, match=r"namespace 'team': budget .*short by") as caught:
        rightsize(_team(), RightsizeConfig(budgets={"team": floor["monthly_cost"].sum() * 0.9}, **FAST),
                  namespaces=ns)
    assert isinstance(caught.value, errors.SettingsError)  # a setting to change, caught as any AiopsError
    with pytest.raises(InfeasibleBudget, match="namespace 'team': CPU quota"):  # still importable from rightsize
        rightsize(_team(), RightsizeConfig(cpu_quota_cores={"team": 0.3}, **FAST), namespaces=ns)


def test_solve_status_bound_gap_and_saving_are_reported():
    usage = _team()
    current = pd.DataFrame({"series": ["w0", "w1", "w2"], "cpu_request": 2.0, "cpu_limit": np.nan,
                            "memory_request": 1024 * MIB, "memory_limit": np.nan})
    res = rightsize(usage, RightsizeConfig(**FAST), current=current)
    assert res.status == "Optimal" and res.solve_seconds > 0
    assert res.bound <= res.objective + 1e-6 and 0 <= res.gap < 1e-3
    assert res.objective == pytest.approx(res.recommendations["monthly_cost"].sum())
    assert res.recommendations["why"].str.contains(r"saves \$\d", regex=True).all()


def test_too_little_data_is_undefined_with_a_reason():
    usage = pd.concat([frame("a", np.full(21 * PER_DAY, 0.2)), frame("b", np.full(50, 0.2))])
    res = rightsize(usage, RightsizeConfig(**FAST))
    assert np.isnan(row(res, "b")["cpu_request"]) and "not enough data" in row(res, "b")["why"]
    assert row(res, "a")["cpu_request"] > 0


def test_bad_input_is_named():
    usage = frame("a", np.full(21 * PER_DAY, 0.2))
    with pytest.raises(UnknownNameError, match="workload class 'gold'"):
        rightsize(usage, RightsizeConfig(**FAST), classes={"a": "gold"})
    with pytest.raises(SchemaError, match="no series belongs to"):
        rightsize(usage, RightsizeConfig(budgets={"tema": 10.0}, **FAST), namespaces={"a": "team"})
    with pytest.raises(SchemaError, match="missing column"):
        rightsize(usage.drop(columns="memory"))
    with pytest.raises(SchemaError, match="ooms"):
        rightsize(usage, ooms={"a": 1.5})
    with pytest.raises(ValidationError, match="cpu_risk"):
        RightsizeConfig(cpu_risk={"default": 5})
    with pytest.raises(ValidationError, match="extra"):
        RightsizeConfig(cpu_percentile=95)
    with pytest.raises(ValidationError):
        RightsizeConfig(memory_limit_ratio=0.5)


def test_two_thousand_workloads_solve_in_seconds():
    rng = np.random.default_rng(6)
    n, length = 2000, 4 * PER_DAY
    scale = rng.lognormal(-1, 1, n)
    cpu = scale[:, None] * (1 + 0.3 * rng.random((n, length)))
    usage = pd.DataFrame({"series": np.repeat([f"w{k:04d}" for k in range(n)], length),
                          "ts": np.tile(T0 + STEP * np.arange(length), n), "cpu": cpu.ravel(), "memory": 1e8})
    ns = {f"w{k:04d}": f"ns{k % 10}" for k in range(n)}
    res = rightsize(usage, RightsizeConfig(window=pd.Timedelta(days=2), horizon=pd.Timedelta(days=1),
                                           budgets={"ns0": 1e6}), namespaces=ns)
    assert res.status == "Optimal" and res.solve_seconds < 10
    assert res.recommendations["cpu_request"].notna().all()


def test_the_expected_risk_is_never_below_the_last_windows_own_exceedance():
    # a backtest in which every split was calmer afterwards (test exceedance 0) teaches nothing below the window
    bt = risk.WorkloadBacktest(split_scores=np.array([[0.5, 0.2, -1.2]] * 3), test_exceed=np.zeros((3, 3)))
    est, k = risk.expected_risk(bt, np.full(risk._LEVELS.size, np.nan), np.array([0.4, 0.15, -1.1]), 2.0)
    assert k == 3 and list(est) == [0.4, 0.15, 0.0]


def test_a_class_that_calmed_down_does_not_talk_a_busy_new_workload_below_its_own_level():
    days = 28
    old = []
    for k in range(4):  # busy for ten days, then calm: their backtests say spikes do not last
        cpu = spikes(days, 0.2, 1.0, 0.2, seed=20 + k)
        cpu[10 * PER_DAY:] = 0.2
        old.append(frame(f"old{k}", cpu))
    new = frame("new", spikes(7, 0.2, 1.0, 0.2, seed=30), start=T0 + pd.Timedelta(days=days - 7))  # one busy week
    res = rightsize(pd.concat([*old, new], ignore_index=True), RightsizeConfig(**FAST))
    n = row(res, "new")
    assert n["cpu_request"] >= 1.0  # 20 % spikes in its only week: a 5 % target must cover them
    assert n["cpu_risk_expected"] >= n["cpu_risk_in_sample"]
    assert "0 backtest split(s)" in n["why"]


def test_an_unreachable_target_takes_the_smallest_candidate_with_the_least_expected_risk():
    feas, unreachable = risk.feasible(np.array([0.5, 0.2, 0.03, 0.03, 0.03]), 0.01)
    assert unreachable and list(feas) == [2, 3, 4]  # not the largest: 3 and 4 buy no risk, only cost
    feas, unreachable = risk.feasible(np.array([0.5, 0.2, 0.03, 0.01, 0.0]), 0.01)
    assert not unreachable and list(feas) == [3, 4]
