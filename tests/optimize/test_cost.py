"""The cost optimizer on a cluster end to end: stored simulated usage, the simulated cluster's API over HTTP, the
PuLP right-sizing over every container, OpenCost money, and the requests applied through the actuator."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from kubernetes import client, config

from aiops.actuator.automation import propose_all
from aiops.actuator.policy import Guardrails
from aiops.errors import SchemaError, SettingsError
from aiops.optimize.config import CostSettings
from aiops.optimize.cost import _step, plan_costs, proposals
from aiops.optimize.cost_inputs import Container, Pool, class_of, per_pod_usage
from aiops.optimize.cost_nodes import PoolPlan, _propose_bounds, plan_pools, pool_proposals
from aiops.optimize.opencost import Prices
from tests.support.simworld import sim_world
from aiops.settings import load_settings

pytestmark = [pytest.mark.integration]
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS, SEED = 3, 4
MIB = 2**20


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cost")
    w = sim_world(root, workloads=8, days=DAYS, seed=SEED, start=START,
                  metrics=["cpu_usage", "memory_working_set", "replicas_available", "oom_kills"])
    spec, frame, server, kc = w.spec, w.frame, w.server, w.kubeconfig
    api = config.new_client_from_config(config_file=str(kc))
    settings = load_settings(data_dir=w.data_dir, kubeconfig=kc, actuator={"role": "operator", "mode": "apply"},
                             cost={"classes": {"payments/*": "critical"},
                                   "rightsize": {"cpu_risk": {"default": 0.05, "critical": 0.01}}})
    plan = plan_costs(settings)
    frame["series"] = frame["cluster"] + "/" + frame["namespace"] + "/" + frame["workload"] + "/" + frame["container"]
    yield spec, settings, plan, client.AppsV1Api(api), frame
    api.close()
    server.stop()


def test_every_container_is_sized_from_what_the_cluster_runs(world):
    spec, settings, plan, _, frame = world
    by_name = {w.name: w for w in spec.workloads}
    assert {p.container.workload for p in plan.containers} == set(by_name) and not plan.skipped
    for p in plan.containers:
        c, w = p.container, by_name[p.container.workload]
        # what runs now is read from the Deployment and its HPA through the API
        assert c.cpu_request == pytest.approx(w.resources.cpu_request)
        assert c.memory_request == pytest.approx(w.resources.memory_request)
        bounds = (w.hpa.min_replicas, w.hpa.max_replicas) if w.hpa else (w.replicas, w.replicas)
        assert (c.min_replicas, c.max_replicas) == bounds
        assert c.pool == w.node_pool and c.pods_min >= 1
        assert c.cls == ("critical" if c.namespace == "payments" else "default")
        assert p.status in ("recommended", "unchanged") and p.recommended["cpu_request"] > 0
        # memory is never recommended below the observed per-pod peak of the stored (5-minute) series
        rows = frame[frame["series"] == c.series].pivot_table(index="ts", columns="metric", values="value")
        rows = rows.resample("5min").mean()
        peak = (rows["memory_working_set"] / rows["replicas_available"].where(rows["replicas_available"] >= 1)).max()
        assert p.recommended["memory_request"] >= peak
    assert plan.solve["status"] == "Optimal" and plan.solve["gap"] <= 1e-3
    assert any("short for window + horizon" in n for n in plan.solve["notes"])  # 3 days of history


def test_per_pod_usage_and_the_monthly_money_follow_opencost(world):
    _, settings, plan, _, frame = world
    p = max(plan.containers, key=lambda x: x.cost_now)
    c = p.container
    rows = frame[frame["series"] == c.series].pivot_table(index="ts", columns="metric", values="value")
    rows = rows.resample("5min").mean()  # the stored features' step
    pods = rows["replicas_available"].where(rows["replicas_available"] >= 1)
    cpu, mem = rows["cpu_usage"] / pods, rows["memory_working_set"] / pods
    assert c.pods_mean == pytest.approx(float(rows["replicas_available"].mean()), rel=1e-6)
    # OpenCost: max(request, usage) x price per interval, per pod, scaled to 730 hours, times the mean pods
    price = Prices()
    hours = cpu.notna().sum() * 5 / 60
    per_pod = ((np.maximum(cpu, c.cpu_request) * price.cpu_price_per_core_hour
                + np.maximum(mem, c.memory_request) / 2**30 * price.memory_price_per_gib_hour) * 5 / 60).sum()
    assert p.cost_now == pytest.approx(per_pod / hours * 730 * c.pods_mean, rel=1e-3)
    # the risk now is the share of the last window's intervals with the mean pod above its request
    assert p.cpu_risk_now == pytest.approx(float((cpu.dropna() > c.cpu_request).mean()), abs=1e-9)
    t = plan.totals()
    assert t["saving"] == pytest.approx(t["cost_now"] - t["cost_new"]) and t["containers"] == len(plan.containers)


def test_a_critical_class_gets_a_tighter_risk_bound(world):
    _, _, plan, _, _ = world
    for p in plan.containers:
        target = 0.01 if p.container.cls == "critical" else 0.05
        assert p.cpu_risk_expected <= target + 1e-9 or "unreachable" in p.reason
        assert f"class '{p.container.cls}' target {target:.1%}" in p.reason
        # the window named is the one the data covers (3 days here), not the configured 14 days
        assert "14-day" not in p.reason and re.search(r"of the last [\d.]+-day window", p.reason)


def test_proposals_are_applied_through_the_actuator_and_a_rerun_is_a_no_op(world):
    _, settings, plan, apps, _ = world
    props = proposals(settings, plan, run_id="cost-test")
    assert props and all(x.evidence.source == "cost" and x.target.kind == "Deployment" for x in props)
    assert all("per month" in x.expected_effect and "expected" in x.expected_effect for x in props)
    opted = [x for x in props if apps.read_namespaced_deployment(x.target.name, x.target.namespace).metadata.annotations
             .get("aiops.dev/actuate") == "true"]
    assert opted
    out = propose_all(settings, opted[:1], act=True, dry_run=False)
    assert out[0]["outcome"] == "applied", str(out)
    dep = apps.read_namespaced_deployment(opted[0].target.name, opted[0].target.namespace)
    res = next(c for c in dep.spec.template.spec.containers if c.name == opted[0].target.container).resources
    from aiops.actuator.changes import parse_quantity
    ch = opted[0].change
    if ch.cpu_request is not None:
        assert float(parse_quantity(res.requests["cpu"])) == pytest.approx(ch.cpu_request, abs=1e-3)
    if ch.memory_request is not None:
        assert float(parse_quantity(res.requests["memory"])) == pytest.approx(ch.memory_request, rel=1e-6)
    again = propose_all(settings, opted[:1], act=True, dry_run=False)
    assert again[0]["outcome"] == "exists"


def test_a_big_cut_is_stepped_within_the_guardrails_and_says_so():
    c = Container("sim/a/b/c", "a", "b", "c", cpu_request=4.0, cpu_limit=8.0, memory_request=4096 * MIB,
                  memory_limit=4096 * MIB)
    g = Guardrails()
    out, note = _step(c, {"cpu_request": 0.5, "cpu_limit": None, "memory_request": 1024 * MIB,
                          "memory_limit": 1536 * MIB}, g)
    assert out["cpu_request"] == pytest.approx(2.0) and out["memory_request"] == pytest.approx(2048 * MIB)
    assert out["memory_limit"] == pytest.approx(2048 * MIB)  # halved, and never below the request
    assert "cpu_request 500m reached over several runs (2000m now)" in note
    assert "cpu_limit" not in out  # the model sets no CPU limit: today's stays (above the new request)
    # a raise is not held by max_step_down, and a limit under the new request is lifted to it
    c2 = Container("sim/a/b/c", "a", "b", "c", cpu_request=0.1, cpu_limit=0.15, memory_request=256 * MIB)
    out, note = _step(c2, {"cpu_request": 0.18, "cpu_limit": None, "memory_request": 256 * MIB,
                           "memory_limit": 384 * MIB}, g)
    assert out["cpu_request"] == pytest.approx(0.18) and out["cpu_limit"] == pytest.approx(0.18) and not note
    assert "memory_request" not in out and out["memory_limit"] == pytest.approx(384 * MIB)


def test_classes_and_bad_settings_are_named():
    from aiops.actuator.recommendation import ResourcesChange
    from aiops.cli.actions import _change_text

    # suggestions show requests and limits as kubectl does
    assert _change_text(ResourcesChange(cpu_request=0.15, memory_request=256 * MIB)) == \
        "cpu_request=150m, memory_request=256Mi"
    assert class_of("payments", "ledger", {"payments/*": "critical", "*": "batch"}) == "critical"
    assert class_of("shop", "cart", {"payments/*": "critical", "*/cart": "batch"}) == "batch"
    assert class_of("shop", "cart", {}) == "default"
    with pytest.raises(ValueError, match="cpu_risk"):
        CostSettings(rightsize={"cpu_risk": {"default": 5}})
    with pytest.raises(SettingsError, match="cost.rightsize.no_such_knob"):
        load_settings(cost={"rightsize": {"no_such_knob": 1}})
    # the environment reaches the model's knobs, as for every other setting
    import os
    os.environ["AIOPS_COST__RIGHTSIZE__CPU_RISK"] = '{"default": 0.02}'
    try:
        assert load_settings().cost.rightsize.cpu_risk == {"default": 0.02}
    finally:
        del os.environ["AIOPS_COST__RIGHTSIZE__CPU_RISK"]
    panel = pd.DataFrame({"series": ["s"] * 3, "ts": pd.date_range("2026-01-01", periods=3, freq="5min", tz="UTC"),
                          "cpu_usage": [1.0, 2.0, 3.0], "memory_working_set": [10.0, 20.0, 30.0],
                          "replicas_available": [2.0, 0.0, np.nan]})
    u = per_pod_usage(panel)
    assert u["cpu"].tolist()[0] == 0.5 and u["cpu"].isna().tolist() == [False, True, True]
    assert u["memory"].tolist()[0] == 5.0


def test_no_matching_usage_is_a_clear_error(world):
    _, settings, _, _, _ = world
    with pytest.raises(SchemaError, match="cost.namespaces"):
        plan_costs(settings, settings.cost.model_copy(update={"namespaces": ("nope",)}))


def test_node_pools_get_bounds_their_packed_pods_need_and_the_catalog_mix_is_reported(world):
    spec, settings, plan, _, _ = world
    plan = plan_pools(settings, plan)
    pools = {p.name: p for p in plan.pools}
    assert set(pools) == {p.name for p in spec.node_pools}
    used = {p.container.pool for p in plan.containers}
    for name, pp in pools.items():
        if name not in used:
            assert pp.reason == "no sized workload runs on it" and pp.floor is None
            continue
        mine = [p for p in plan.containers if p.container.pool == name]
        # the floor holds every workload's fewest pods at the recommended requests on this pool's nodes
        cpu = sum(p.recommended["cpu_request"] * p.container.pods_min for p in mine)
        assert pp.floor >= math.ceil(cpu / pp.pool.cpu - 1e-9) and pp.cap - settings.cost.node_headroom >= pp.floor
        most = sum(max(p.recommended["cpu_request"], p.container.cpu_request)
                   * max(p.container.max_replicas, p.container.pods_max) for p in mine)
        assert pp.cap - settings.cost.node_headroom >= math.ceil(most / pp.pool.cpu - 1e-9)
        assert "right-sized pods of its" in pp.reason
    assert plan.mix["cost_per_hour"] >= plan.mix["bound"] - 1e-9 and plan.mix["node_counts"]
    assert "today's pools run" in plan.mix["summary"]
    props = pool_proposals(settings, plan, run_id="cost-pools")
    assert props and all(p.target.kind == "MachineDeployment" for p in props)
    c = client.CustomObjectsApi(config.new_client_from_config(config_file=str(settings.kubeconfig)))
    # the guardrails want the pool's opt-in, as for workloads (the cluster's admin sets it, as kubectl would)
    c.patch_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments",
                                     props[0].target.name, {"metadata": {"annotations": {"aiops.dev/actuate": "true"}}},
                                     _content_type="application/merge-patch+json")
    out = propose_all(settings, props[:1], act=True, dry_run=False)
    assert out[0]["outcome"] == "applied", str(out)
    md = c.get_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments",
                                        props[0].target.name)
    ann = md["metadata"]["annotations"]
    want = props[0].change
    if want.max_nodes is not None:
        assert ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"] == str(want.max_nodes)
    if want.min_nodes is not None:
        assert ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] == str(want.min_nodes)


def test_pool_bounds_move_one_guarded_step_and_never_raise_the_minimum():
    g = Guardrails()
    pp = PoolPlan(Pool("p", "m5.xlarge", min_nodes=10, max_nodes=40, nodes=12, cpu=3.9, memory=14 * 2**30),
                  floor=2, cap=6)
    _propose_bounds(pp, g, 3, 1)
    assert (pp.min_nodes, pp.max_nodes) == (5, 20) and "stepped within the guardrails" in pp.reason
    pp = PoolPlan(Pool("p", "m5.xlarge", min_nodes=1, max_nodes=4, nodes=2, cpu=3.9, memory=14 * 2**30),
                  floor=3, cap=7)
    _propose_bounds(pp, g, 3, 1)
    assert pp.min_nodes is None and pp.max_nodes == 7 and "1-4 nodes of m5.xlarge (runs 2) -> 1-7" in pp.reason
    pp = PoolPlan(Pool("p", "m5.xlarge", min_nodes=1, max_nodes=7, nodes=2, cpu=3.9, memory=14 * 2**30),
                  floor=1, cap=7)
    _propose_bounds(pp, g, 3, 1)
    assert pp.min_nodes is None and pp.max_nodes is None and "unchanged" in pp.reason
