"""Automation: many recommendations proposed and acted on at once, one refusal not stopping the others; the
actuate flow run through the CLI (a real Prefect flow run on the embedded server)."""

from __future__ import annotations

import json

from aiops.actuator.automation import act_on_open, propose_all
from aiops.actuator.recommendation import Evidence, ReplicasChange
from aiops.settings import load_settings
from tests.actuator.conftest import deployment_target, proposal


def _settings(sim, tmp_path, **actuator):
    return load_settings(data_dir=tmp_path / "data", kubeconfig=sim.kubeconfig,
                         actuator={"user": "aiops-prescale", "role_bindings": {"aiops-prescale": "operator"},
                                   **actuator})


def test_propose_all_acts_on_each_and_reports_refusals(sim, pool, tmp_path, kubectl):
    ok, owned = pool.take(), pool.take("autoscaled")
    props = [proposal(deployment_target(ok), ReplicasChange(replicas=ok.replicas + 1)),
             proposal(deployment_target(owned), ReplicasChange(replicas=7))]
    res = propose_all(_settings(sim, tmp_path, mode="apply"), props, act=True)
    assert [(r["outcome"], r["exit_code"]) for r in res] == [("applied", 0), ("blocked", 4)]
    assert "owner" in res[1]["reason"] and res[1]["state"] == "rejected"
    assert kubectl("get", "deploy", ok.name, "-n", ok.namespace, "-o", "jsonpath={.spec.replicas}") == str(
        ok.replicas + 1)
    # resubmitting the same proposals (same run) does nothing twice
    again = propose_all(_settings(sim, tmp_path, mode="apply"), props, act=True)
    assert [r["outcome"] for r in again] == ["exists", "exists"]


def test_act_on_open_follows_the_mode_and_filters_by_source(sim, pool, tmp_path):
    w1, w2 = pool.take(), pool.take()
    p1 = proposal(deployment_target(w1), ReplicasChange(replicas=w1.replicas + 1))
    p2 = proposal(deployment_target(w2), ReplicasChange(replicas=w2.replicas + 1)).model_copy(
        update={"evidence": Evidence(source="cost")})
    settings = _settings(sim, tmp_path)  # mode dry-run
    propose_all(settings, [p1, p2])
    res = act_on_open(settings, sources=("test",))
    assert [(r["id"], r["outcome"], r["state"]) for r in res] == [(1, "dry-run-ok", "dry-run-ok")]
    assert act_on_open(settings, sources=("test",)) == []  # dry-run already done: nothing repeated
    res = act_on_open(_settings(sim, tmp_path, mode="apply"))
    assert [(r["id"], r["state"]) for r in res] == [(1, "applied"), (2, "applied")]


def test_actuate_flow_through_the_cli(sim, pool, cli, tmp_path):
    w = pool.take()
    settings = _settings(sim, tmp_path)
    propose_all(settings, [proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1))])
    env = {"AIOPS_ACTUATOR__USER": "aiops-prescale", "AIOPS_ACTUATOR__ROLE_BINDINGS": '{"aiops-prescale": "operator"}'}
    p = cli("actuate", "-o", "json", role=None, mode="apply", env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout[p.stdout.index("["):])
    assert [(r["id"], r["outcome"]) for r in res] == [(1, "applied")]
    audit = json.loads(cli("audit", "-o", "json", role="viewer").stdout)
    assert audit[-1]["actor"] == "aiops-prescale" and audit[-1]["outcome"] == "applied"


def test_a_newer_plan_supersedes_the_open_one_from_its_source_for_the_same_object(sim, pool, tmp_path):
    w, other = pool.take(), pool.take()
    settings = _settings(sim, tmp_path)  # mode dry-run
    old = proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1), run="run-1")
    elsewhere = proposal(deployment_target(other), ReplicasChange(replicas=other.replicas + 1), run="run-1")
    foreign = proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1), run="run-1-cost").model_copy(
        update={"evidence": Evidence(source="cost")})
    res = propose_all(settings, [old, elsewhere, foreign], act=True)
    assert [r["state"] for r in res] == ["dry-run-ok"] * 3
    newer = proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 2), run="run-2")
    # without superseding, both plans for w stay open and acting on every open one could apply the older
    res = propose_all(settings, [newer], supersede=True)
    assert [(r["id"], r["outcome"]) for r in res] == [(4, "proposed")]
    from aiops.actuator.actuator import Actuator

    a = Actuator.open(settings)
    try:
        states = {r.id: r.state.value for r in a.store.list()}
        records = a.store.audit_records(recommendation_id=1)
        verified = a.store.verify()
    finally:
        a.close()
    # only the same source's open plan for the same object is closed; another object and another source are not
    assert states == {1: "superseded", 2: "dry-run-ok", 3: "dry-run-ok", 4: "pending"}
    assert records[-1]["outcome"] == "superseded" and "superseded by recommendation 4" in records[-1]["reason"]
    assert verified.ok
    # what act_on_open would apply now is the newer plan only
    assert [r["id"] for r in act_on_open(settings, sources=("test",))] == [4]
