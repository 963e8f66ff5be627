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
