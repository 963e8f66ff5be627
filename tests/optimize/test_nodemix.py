"""The node-mix MILP: known optima on hand-made pods, feasibility of every packing (capacity, pod slots, each pod
exactly once), MILP <= FFD and bound <= cost, the time limit, bad input, and the catalog's allocatable rule."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aiops.errors import SchemaError
from aiops.optimize import nodemix_lp
from aiops.optimize.nodemix import (
    DEFAULT_CATALOG, NodeMixConfig, NodeType, Unschedulable, first_fit_decreasing, gke_reserved_cpu,
    gke_reserved_memory_gib, pack)
from aiops.sim.generate import INSTANCE_TYPES

GIB = 1024**3
MIB = 1024**2
BY_NAME = {t.name: t for t in DEFAULT_CATALOG}


def bare(name: str, cpu: float, gib: float, price: float, **kw) -> NodeType:
    """A node type with nothing reserved, so hand-made pods can fill it exactly."""
    return NodeType(name=name, cpu_cores=cpu, memory_gib=gib, price_per_hour=price, reserved_cpu_cores=0,
                    reserved_memory_gib=0, **kw)


def pods(sizes, memory=GIB) -> list[dict]:
    return [{"name": f"p{i}", "cpu": float(c), "memory": float(memory)} for i, c in enumerate(sizes)]


def mixed_pods(n: int, seed: int) -> pd.DataFrame:
    """Realistic variety: mostly small pods on a log-normal, a quarter big ones (4-8 cores, 8-40 GiB), replicas."""
    rng = np.random.default_rng(seed)
    big = rng.random(n) < 0.25
    cpu = np.where(big, rng.uniform(4, 8, n), np.exp(rng.normal(-1.5, 1.0, n)).clip(0.01, 3))
    mem = np.where(big, rng.uniform(8, 40, n), np.exp(rng.normal(0.0, 1.0, n)).clip(0.1, 12)) * GIB
    return pd.DataFrame({"name": [f"w{i}" for i in range(n)], "cpu": cpu.round(3), "memory": mem.round(-6),
                         "count": rng.choice([1, 1, 1, 2, 3], n)})


def check_packing(result, frame: pd.DataFrame, config: NodeMixConfig) -> None:
    """Every replica placed exactly once, no node over its allocatable CPU, memory or pod slots."""
    frame = pd.DataFrame(frame)
    if "count" not in frame:
        frame["count"] = 1
    a = result.assignment
    expected = {(n, r) for n, c in zip(frame["name"], frame["count"]) for r in range(int(c))}
    placed = list(zip(a["pod"], a["replica"]))
    assert len(placed) == len(set(placed)) == len(expected) and set(placed) == expected
    req = frame.set_index("name")
    used = a.assign(cpu=req.loc[a["pod"], "cpu"].to_numpy(), memory=req.loc[a["pod"], "memory"].to_numpy()
                    ).groupby(["node", "node_type"]).agg(cpu=("cpu", "sum"), memory=("memory", "sum"),
                                                         pods=("pod", "size")).reset_index()
    types = {t.name: t for t in config.catalog}
    for row in used.itertuples():
        t = types[row.node_type]
        assert row.cpu <= t.allocatable_cpu_cores + 1e-9, row
        assert row.memory <= t.allocatable_memory_gib * GIB + 1, row
        assert row.pods <= (t.max_pods or config.max_pods_per_node), row
    assert sorted(used["node"]) == sorted(result.nodes["node"])  # no empty node is paid for
    assert result.cost_per_hour == pytest.approx(result.nodes["price_per_hour"].sum())
    assert result.node_counts == result.nodes["node_type"].value_counts().to_dict()


def test_two_nodes_that_the_pods_fill_exactly_beat_one_bigger_node():
    config = NodeMixConfig(catalog=(bare("small", 4, 16, 0.20), bare("big", 8, 32, 0.45)))
    res = pack(pods([2, 2, 2, 2], memory=8 * GIB), config)
    assert res.node_counts == {"small": 2} and res.cost_per_hour == pytest.approx(0.40)
    assert res.status == "optimal" and res.gap == pytest.approx(0.0, abs=1e-9)
    assert (res.nodes["cpu_utilisation"] == 1.0).all() and (res.nodes["memory_utilisation"] == 1.0).all()
    assert res.cost_per_month == pytest.approx(0.40 * 730)
    assert res.summary().startswith("2 x small, $0.40/h ($292/month), LP bound $0.40/h, gap 0.0%, FFD $0.40/h")


def test_memory_heavy_pods_go_on_r5_and_cpu_heavy_ones_on_c5():
    config = NodeMixConfig(catalog=tuple(BY_NAME[n] for n in ("m5.xlarge", "r5.xlarge", "c5.xlarge")))
    memory_heavy = pack(pods([0.5] * 4, memory=6 * GIB), config)  # 24 GiB: two m5.xlarge or one r5.xlarge
    assert memory_heavy.node_counts == {"r5.xlarge": 1} and memory_heavy.cost_per_hour == pytest.approx(0.252)
    cpu_heavy = pack(pods([1.9, 1.9], memory=1 * GIB), config)  # 3.8 cores, 2 GiB: one c5.xlarge
    assert cpu_heavy.node_counts == {"c5.xlarge": 1} and cpu_heavy.cost_per_hour == pytest.approx(0.17)


def test_the_milp_finds_the_optimum_first_fit_decreasing_misses():
    # 10-core nodes, pods of 5,4,4,3,2,2 cores: FFD opens {5,4}, {4,3,2}, {2}; the optimum is {5,3,2}, {4,4,2}
    config = NodeMixConfig(catalog=(bare("n10", 10, 64, 1.0),))
    ffd = first_fit_decreasing(pods([5, 4, 4, 3, 2, 2]), config)
    res = pack(pods([5, 4, 4, 3, 2, 2]), config)
    assert ffd.cost_per_hour == 3.0 and ffd.method == "ffd"
    assert res.cost_per_hour == 2.0 and res.method in ("milp", "lp-rounding") and res.status == "optimal"
    assert res.ffd_cost_per_hour == 3.0 and res.bound == pytest.approx(2.0)
    assert sorted(res.nodes["cpu_requested"]) == [10.0, 10.0]


def test_a_realistic_mix_is_feasible_never_worse_than_ffd_and_above_its_bounds():
    frame = mixed_pods(150, seed=3)
    config = NodeMixConfig(time_limit_s=4)
    res, ffd = pack(frame, config), first_fit_decreasing(frame, config)
    check_packing(res, frame, config)
    check_packing(ffd, frame, config)
    assert res.cost_per_hour <= ffd.cost_per_hour + 1e-9 and res.ffd_cost_per_hour == ffd.cost_per_hour
    assert res.resource_bound <= res.bound + 1e-9 <= res.cost_per_hour + 1e-9
    assert res.gap == pytest.approx((res.cost_per_hour - res.bound) / res.cost_per_hour)
    assert ffd.bound == pytest.approx(res.resource_bound)  # FFD alone reports the resource bound
    assert set(res.heuristics) >= {"ffd[mixed]"} and min(res.heuristics.values()) == ffd.cost_per_hour


def test_the_pattern_lp_bound_sees_what_the_resource_bound_cannot():
    # three 6-core pods, 10-core nodes: the resource bound is 1.8 nodes, but no node holds two of them
    res = pack(pods([6, 6, 6]), NodeMixConfig(catalog=(bare("n10", 10, 64, 1.0),)))
    assert res.resource_bound == pytest.approx(1.8) and res.bound == pytest.approx(3.0)
    assert res.bound_kind.startswith("LP relaxation of the pattern model") and res.cost_per_hour == 3.0
    assert res.status == "optimal" and "LP bound $3.00/h, gap 0.0%" in res.summary()


def test_pod_slots_bind_when_pods_are_tiny():
    tiny = [{"name": "tiny", "cpu": 0.001, "memory": MIB, "count": 300}]
    config = NodeMixConfig(catalog=(bare("n", 4, 16, 0.2),))
    res = pack(tiny, config)
    assert res.node_counts == {"n": 3} and res.nodes["pods"].max() == 110  # 300 / 110 slots per node
    assert sorted(res.assignment["replica"]) == list(range(300)) and set(res.assignment["pod"]) == {"tiny"}
    roomy = pack(tiny, NodeMixConfig(catalog=(bare("n", 4, 16, 0.2, max_pods=150),)))
    assert roomy.node_counts == {"n": 2}


def test_max_nodes_limits_a_cheap_type_and_too_few_is_an_error():
    cheap, dear = bare("cheap", 4, 16, 0.1, max_nodes=1), bare("dear", 4, 16, 0.3)
    res = pack(pods([3, 3, 3]), NodeMixConfig(catalog=(cheap, dear)))
    assert res.node_counts == {"cheap": 1, "dear": 2}
    with pytest.raises(Unschedulable, match="max_nodes"):
        pack(pods([3, 3, 3]), NodeMixConfig(catalog=(cheap, bare("dear", 4, 16, 0.3, max_nodes=1))))


def test_the_time_limit_is_honoured_with_a_feasible_answer_and_its_gap():
    frame = mixed_pods(1000, seed=7)
    config = NodeMixConfig(time_limit_s=3)
    t = time.perf_counter()
    res = pack(frame, config)
    wall = time.perf_counter() - t
    assert wall < 3 + 4 and res.solve_seconds <= wall  # input checks, FFD and result frames on top of the limit
    check_packing(res, frame, config)
    assert res.status in ("optimal", "feasible") and 0 <= res.gap < 0.5
    assert res.cost_per_hour <= res.ffd_cost_per_hour + 1e-9 and res.bound <= res.cost_per_hour
    assert res.cbc_status and res.notes and "column generation" in res.notes[0]


def test_no_pods_need_no_nodes():
    res = pack([], NodeMixConfig())
    assert res.cost_per_hour == 0 and res.node_counts == {} and res.assignment.empty and res.nodes.empty
    assert res.summary().startswith("no nodes, $0.00/h")


@pytest.mark.parametrize("bad, message", [
    (pods([-1]), r"cpu must be a finite number of cores >= 0; got \{'p0': -1.0\}"),
    ([{"name": "a", "cpu": 1.0}], r"missing column\(s\) \['memory'\]"),
    ([{"name": "a", "cpu": 1, "memory": 1}, {"name": "a", "cpu": 1, "memory": 1}], "duplicate name"),
    ([{"name": "a", "cpu": 1, "memory": 1, "count": 1.5}], "count must be a whole number"),
    ([{"name": "a", "cpu": "lots", "memory": 1}], "cpu must be a finite number"),
    ("pods.csv", "expected a DataFrame or a sequence of mappings"),
])
def test_bad_pods_are_named(bad, message):
    with pytest.raises(SchemaError, match=message):
        pack(bad)


def test_a_pod_too_big_for_every_node_type_is_named_with_the_largest_allocatable():
    with pytest.raises(Unschedulable) as err:
        pack([{"name": "huge", "cpu": 40.0, "memory": 8 * GIB}, {"name": "ok", "cpu": 1, "memory": GIB}])
    text = str(err.value)
    assert "'huge' requests 40 cores and 8.00 GiB" in text and "'ok'" not in text
    assert "c5.9xlarge 35.8" in text and "r5.8xlarge" in text and "Add a bigger type" in text


def test_bad_config_is_rejected():
    with pytest.raises(ValidationError, match="unique names"):
        NodeMixConfig(catalog=(bare("a", 1, 1, 1), bare("a", 2, 2, 2)))
    with pytest.raises(ValidationError, match="leave nothing allocatable"):
        NodeType(name="x", cpu_cores=1, memory_gib=4, price_per_hour=0.1, reserved_cpu_cores=1)
    with pytest.raises(ValidationError):
        NodeMixConfig(time_limit_s=0)
    with pytest.raises(ValidationError):
        NodeMixConfig(surprise=1)
    with pytest.raises(SchemaError, match="expected NodeMixConfig"):
        pack(pods([1]), {"time_limit_s": 5})


def test_allocatable_follows_the_gke_rule_and_the_catalog_matches_the_simulator():
    assert gke_reserved_cpu(4) == pytest.approx(0.06 + 0.01 + 2 * 0.005)
    assert gke_reserved_cpu(32) == pytest.approx(0.08 + 28 * 0.0025)
    assert gke_reserved_memory_gib(16) == pytest.approx(1 + 0.8 + 0.8 + 100 / 1024)
    assert gke_reserved_memory_gib(0.5) == pytest.approx(355 / 1024)
    m5 = BY_NAME["m5.xlarge"]
    assert m5.allocatable_cpu_cores == pytest.approx(3.92) and m5.allocatable_memory_gib == pytest.approx(
        16 - 2.6 - 100 / 1024)
    for it in INSTANCE_TYPES:  # the simulated cluster's types, same capacity and price
        t = BY_NAME[it.name]
        assert (t.cpu_cores, t.memory_gib * GIB, t.price_per_hour) == (it.cpu_cores, it.memory_bytes,
                                                                       it.price_per_hour)


def test_solver_chatter_stays_off_stdout(capfd):
    with nodemix_lp._quiet_stdout():
        os.write(1, b"HighsMipSolverData::transformNewIntegerFeasibleSolution\n")
    os.write(1, b"after\n")
    assert capfd.readouterr().out == "after\n"
