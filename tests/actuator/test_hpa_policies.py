"""HPA scaling policies (behavior.scaleUp/scaleDown policies and selectPolicy) through the actuator.

The tuner of issue 6 changes policies together with the other HPA settings as one recommendation: here they are
dry-run (the diff shows them), applied to the simulated cluster's API (read back with the kubernetes client and
kubectl, and in the simulation engine's own HPA), rolled back to custom and to default policies, refused when
invalid, and stored and read back as JSON.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
import yaml
from pydantic import ValidationError

from aiops.actuator import changes as ch
from aiops.actuator.guardrails import Situation, check
from aiops.actuator.policy import Guardrails
from aiops.actuator.recommendation import HPAChange, HPAPolicy, State, Target
from aiops.sim.spec import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPAScalingPolicy
from tests.actuator.conftest import hpa_target, proposal

_FAKE_TARGET = Target(cluster="sim", namespace="shop", kind="HorizontalPodAutoscaler", name="cart")
UP = (HPAPolicy(type="Pods", value=2, period_s=60), HPAPolicy(type="Percent", value=50, period_s=60))
DOWN = (HPAPolicy(type="Pods", value=1, period_s=120),)


def situation(change, before) -> Situation:
    return Situation(_FAKE_TARGET, change, before, {"aiops.dev/actuate": "true"},
                     datetime(2026, 3, 2, 12, tzinfo=timezone.utc))


def _engine_hpa(sim, w):
    """The HPA the simulation engine runs for workload `w` (not the API's rendering of it)."""
    return next(s.hpa for s in sim.live.snapshot().workloads if (s.namespace, s.name) == (w.namespace, w.name))


def _spec(sim, w) -> dict:
    obj = sim.hpa.read_namespaced_horizontal_pod_autoscaler(sim.hpa_name(w), w.namespace)
    return sim.hpa.api_client.sanitize_for_serialization(obj)["spec"]


def _as_engine(policies) -> tuple[HPAScalingPolicy, ...]:
    return tuple(HPAScalingPolicy(type=p.type, value=p.value, period_s=p.period_s) for p in policies)


# --- the value ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, message", [
    ({"scale_up_policies": ()}, "scale_up_policies is empty: Kubernetes needs at least one policy"),
    ({"scale_down_policies": [{"type": "Pods", "value": 1, "period_s": 15}] * 5},
     "scale_down_policies has 5 policies, at most 4 are accepted"),
    ({"scale_up_policies": [{"type": "pods", "value": 1, "period_s": 15}]}, "Input should be 'Pods' or 'Percent'"),
    ({"scale_up_policies": [{"type": "Pods", "value": 0, "period_s": 15}]}, "value\n  Input should be greater than 0"),
    ({"scale_up_policies": [{"type": "Pods", "value": 1, "period_s": 1801}]},
     "period_s\n  Input should be less than or equal to 1800"),
    ({"scale_up_policies": [{"type": "Pods", "value": 1, "period_s": 0}]},
     "period_s\n  Input should be greater than or equal to 1"),
    ({"scale_up_policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}, "period_s\n  Field required"),
    ({"scale_down_select": "max"}, "Input should be 'Max', 'Min' or 'Disabled'"),
])
def test_invalid_policies_are_refused_with_the_field_named(kw, message):
    with pytest.raises(ValidationError) as e:
        HPAChange(**kw)
    field = next(iter(kw))
    assert field in str(e.value) and message in str(e.value)


def test_a_change_round_trips_through_json_and_keeps_old_fingerprints():
    c = HPAChange(min_replicas=3, scale_up_policies=UP, scale_up_select="Min", scale_down_policies=DOWN)
    assert HPAChange.model_validate_json(c.model_dump_json()) == c
    assert HPAChange.model_validate(json.loads(json.dumps(c.model_dump(mode="json")))) == c
    assert str(UP[1]) == "Percent 50%/60s"
    # an HPA change without policies dumps, and so fingerprints, exactly as before policies existed: a planner
    # resubmitting it after the upgrade stays idempotent
    old = HPAChange(min_replicas=3, scale_down_stabilization_s=120)
    assert old.model_dump(mode="json") == {"type": "hpa", "min_replicas": 3, "max_replicas": None,
                                           "target_cpu_utilization": None, "scale_up_stabilization_s": None,
                                           "scale_down_stabilization_s": 120}
    p = proposal(_FAKE_TARGET, old, run="r1")
    doc = {"run": "r1", "target": p.target.model_dump(mode="json"), "change": {
        "type": "hpa", "min_replicas": 3, "max_replicas": None, "target_cpu_utilization": None,
        "scale_up_stabilization_s": None, "scale_down_stabilization_s": 120}}
    assert p.fingerprint() == hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
    assert proposal(_FAKE_TARGET, c, run="r1").fingerprint() != p.fingerprint()


# --- reading, patching, undoing (no cluster) ----------------------------------------------------------------


def _hpa(behavior=None) -> dict:
    spec = {"scaleTargetRef": {"kind": "Deployment", "name": "cart"}, "minReplicas": 2, "maxReplicas": 10}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"metadata": {"name": "cart", "resourceVersion": "7"}, "spec": spec}


def test_an_hpa_without_behavior_reads_as_the_kubernetes_defaults():
    c = HPAChange(scale_up_policies=UP, scale_down_policies=DOWN, scale_up_select="Min", scale_down_select="Min")
    got = ch.fields(c, _hpa(), _FAKE_TARGET)
    # the defaults the API server (and the simulator) apply, so a rollback has a definite state to restore
    for side, default in (("up", DEFAULT_SCALE_UP), ("down", DEFAULT_SCALE_DOWN)):
        assert got[f"scale_{side}_policies"] == [p.model_dump() for p in default.policies]
        assert got[f"scale_{side}_select"] == default.select_policy
        assert got[f"scale_{side}_stabilization_s"] == default.stabilization_window_s
    back = ch.inverse(c, got)
    assert back.scale_up_policies == tuple(HPAPolicy(**p.model_dump()) for p in DEFAULT_SCALE_UP.policies)
    body, _ = ch.patch(back, _hpa(), _FAKE_TARGET)
    assert body["spec"]["behavior"]["scaleDown"] == {
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}], "selectPolicy": "Max"}
    # a change without policies reads (and audits) the fields it always did; an unset window reads as its default,
    # so it too can be rolled back
    window = HPAChange(scale_down_stabilization_s=60)
    got = ch.fields(window, _hpa(), _FAKE_TARGET)
    assert got == {"min_replicas": 2, "max_replicas": 10, "target_cpu_utilization": None,
                   "scale_up_stabilization_s": 0, "scale_down_stabilization_s": 300}
    assert ch.inverse(window, got) == HPAChange(scale_down_stabilization_s=300)


def test_the_patch_replaces_only_the_policies_of_a_side():
    c = HPAChange(scale_up_policies=UP, scale_down_select="Disabled")
    body, ctype = ch.patch(c, _hpa({"scaleUp": {"stabilizationWindowSeconds": 30, "tolerance": "0.05"}}),
                           _FAKE_TARGET)
    # merge patch: objects merge key by key (the window and tolerance stay), the policies list is replaced whole
    assert ctype == ch.MERGE
    assert body == {"metadata": {"resourceVersion": "7"}, "spec": {"behavior": {
        "scaleUp": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60},
                                 {"type": "Percent", "value": 50, "periodSeconds": 60}]},
        "scaleDown": {"selectPolicy": "Disabled"}}}}


def test_policy_changes_are_significant_only_when_they_differ():
    before = ch.fields(HPAChange(scale_up_policies=UP), _hpa(), _FAKE_TARGET)
    same_reordered = HPAChange(scale_up_policies=tuple(reversed([HPAPolicy(**p) for p in before["scale_up_policies"]])))
    assert ch.significant(same_reordered, before) == 0.0
    assert ch.significant(HPAChange(scale_up_policies=UP), before) == float("inf")
    assert ch.significant(HPAChange(scale_up_select="Max"), before) == 0.0
    assert ch.significant(HPAChange(scale_up_select="Min"), before) == float("inf")
    # the guards judge policies without failing (a failing guard would block every policy change)
    mixed = HPAChange(min_replicas=3, scale_up_policies=UP, scale_down_select="Min")
    r = check(Guardrails(), situation(mixed, {**before, "min_replicas": 2, "max_replicas": 10}))
    assert r.ok, r.summary()
    r = check(Guardrails(), situation(same_reordered, before))
    assert [v.guard for v in r.verdicts] == ["min-change"] and "largest step 0.0%" in r.summary()


# --- through the actuator, on the simulated cluster -----------------------------------------------------------


def test_policies_are_dry_run_applied_and_rolled_back_on_the_cluster(sim, pool, make_actuator, kubectl):
    w = pool.take("autoscaled")
    name = sim.hpa_name(w)
    # someone set the windows by hand: a policy change must leave them alone
    sim.hpa.patch_namespaced_horizontal_pod_autoscaler(name, w.namespace, {"spec": {"behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": {"stabilizationWindowSeconds": 600}}}})
    assert _engine_hpa(sim, w).scale_up.policies == DEFAULT_SCALE_UP.policies  # the generated HPAs run defaults
    original = _spec(sim, w)
    act = make_actuator()
    c = HPAChange(scale_up_policies=UP, scale_up_select="Min", scale_down_policies=DOWN)
    rec, _ = act.propose(proposal(hpa_target(sim, w), c))

    dry = act.apply(rec.id, dry_run=True)
    assert dry.state == State.dry_run_ok.value
    for line in ("-      - {type: Pods, value: 4, periodSeconds: 15}",
                 "+      - {type: Pods, value: 2, periodSeconds: 60}",
                 "+      - {type: Percent, value: 50, periodSeconds: 60}", "-      selectPolicy: Max",
                 "+      selectPolicy: Min", "+      - {type: Pods, value: 1, periodSeconds: 120}"):
        assert line in dry.diff, dry.diff
    assert dry.after["scale_up_policies"] == [p.model_dump() for p in UP]
    assert _spec(sim, w) == original  # a dry-run changes nothing

    done = act.apply(rec.id)
    assert done.state == State.applied.value
    spec = _spec(sim, w)
    assert spec["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 30, "selectPolicy": "Min", "policies": [
        {"type": "Pods", "value": 2, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}]}
    assert spec["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 600, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 120}]}
    assert {k: v for k, v in spec.items() if k != "behavior"} == {
        k: v for k, v in original.items() if k != "behavior"}
    seen = json.loads(kubectl("get", "hpa", name, "-n", w.namespace, "-o", "jsonpath={.spec.behavior}"))
    assert seen == spec["behavior"]
    engine = _engine_hpa(sim, w)  # the simulation now scales with the new policies
    assert engine.scale_up.policies == _as_engine(UP) and engine.scale_up.select_policy == "Min"
    assert engine.scale_down.policies == _as_engine(DOWN) and engine.scale_up.stabilization_window_s == 30

    # a second change on top, then both undone in turn: first to the custom policies, then to the defaults
    rec2, _ = act.propose(proposal(hpa_target(sim, w), HPAChange(scale_up_policies=DOWN, scale_up_select="Max")))
    assert act.apply(rec2.id).state == State.applied.value
    assert _engine_hpa(sim, w).scale_up.policies == _as_engine(DOWN)
    back = act.rollback(rec2.id)
    assert back.state == State.rolled_back.value
    assert _spec(sim, w)["behavior"] == spec["behavior"]
    assert _engine_hpa(sim, w).scale_up.policies == _as_engine(UP)
    assert act.rollback(rec.id).state == State.rolled_back.value
    assert _spec(sim, w) == original
    engine = _engine_hpa(sim, w)
    assert engine.scale_up.policies == DEFAULT_SCALE_UP.policies and engine.scale_up.select_policy == "Max"
    assert engine.scale_down.policies == DEFAULT_SCALE_DOWN.policies
    # the audit chain holds the policies as JSON and still verifies
    applied = act.store.audit_record(act.store.get(rec.id).applied_audit_seq, verified=True)
    assert applied["after"]["scale_down_policies"] == [{"type": "Pods", "value": 1, "period_s": 120}]
    assert act.store.verify().ok


def test_policy_changes_round_trip_through_the_store_and_the_cli(sim, pool, make_actuator, cli, tmp_path):
    w = pool.take("autoscaled")
    c = HPAChange(max_replicas=20, scale_down_policies=(HPAPolicy(type="Percent", value=10, period_s=60),
                                                        HPAPolicy(type="Pods", value=2, period_s=60)),
                  scale_down_select="Min")
    p = proposal(hpa_target(sim, w), c, run="tune-1")
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump([p.model_dump(mode="json")], sort_keys=False))
    r = cli("propose", "-f", str(f), role="developer")
    assert r.returncode == 0, r.stderr
    act = make_actuator(role="viewer")
    (stored,) = act.store.list()
    assert stored.change == c and stored.fingerprint() == p.fingerprint()
    again = cli("propose", "-f", str(f), role="developer")  # same fingerprint: a no-op
    assert again.returncode == 0 and "already exists" in again.stdout and len(act.store.list()) == 1
    listed = json.loads(cli("suggestions", "-o", "json", role="viewer").stdout)
    assert listed[0]["change"]["scale_down_policies"] == [{"type": "Percent", "value": 10, "period_s": 60},
                                                          {"type": "Pods", "value": 2, "period_s": 60}]

    # an invalid policy in a file: refused with the field, what was expected, and nothing stored
    bad = p.model_dump(mode="json")
    bad["change"]["scale_down_policies"][1]["type"] = "Replicas"
    f.write_text(yaml.safe_dump(bad))
    r = cli("propose", "-f", str(f), role="developer")
    assert r.returncode == 2
    assert "change.hpa.scale_down_policies.1.type" in r.stderr and "'Pods' or 'Percent'" in r.stderr
    assert len(act.store.list()) == 1


