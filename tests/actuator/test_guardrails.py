"""Each guardrail on its own (no cluster): what passes, what blocks and why, and that a failing guard blocks."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from aiops.actuator.guardrails import Situation, check, in_window
from aiops.actuator.policy import ChangeWindow, Guardrails
from aiops.actuator.recommendation import HPAChange, NodePoolChange, ReplicasChange, ResourcesChange, Target
from aiops.errors import SettingsError
from aiops.settings import load_settings

DEPLOY = Target(cluster="sim", namespace="shop", kind="Deployment", name="cart", container="app")
MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
OPTED = {"aiops.dev/actuate": "true"}


def situation(change, before, **kw):
    target = kw.pop("target", DEPLOY)
    return Situation(target, change, before, kw.pop("annotations", OPTED), kw.pop("now", MONDAY_NOON), **kw)


def blocked_by(g: Guardrails, s: Situation) -> list[str]:
    return [v.guard for v in check(g, s).verdicts]


def test_a_reasonable_change_passes_every_guard():
    r = check(Guardrails(), situation(ReplicasChange(replicas=4), {"replicas": 3}))
    assert r.ok and r.passed == ["freeze", "cluster", "namespace", "opt-in", "owner", "bounds", "max-step", "min-change",
                                 "change-window", "rate-limit"]


@pytest.mark.parametrize("ns, allowed, denied, ok", [
    ("shop", ("*",), ("kube-system",), True),
    ("kube-system", ("*",), ("kube-system",), False),
    ("shop", ("pay*",), (), False),
    ("payments", ("pay*",), (), True),
    ("shop", (), (), False),  # an empty allow-list allows nothing
])
def test_namespace_allow_and_deny_lists(ns, allowed, denied, ok):
    g = Guardrails(allowed_namespaces=allowed, denied_namespaces=denied)
    t = DEPLOY.model_copy(update={"namespace": ns})
    assert ("namespace" not in blocked_by(g, situation(ReplicasChange(replicas=4), {"replicas": 3}, target=t))) == ok


@pytest.mark.parametrize("annotations, ok", [(OPTED, True), ({}, False), ({"aiops.dev/actuate": "false"}, False),
                                             ({"aiops.dev/actuate": "True"}, False)])
def test_opt_in_annotation_must_be_exactly_true(annotations, ok):
    r = check(Guardrails(), situation(ReplicasChange(replicas=4), {"replicas": 3}, annotations=annotations))
    assert r.ok == ok
    if not ok:
        assert "kubectl annotate deployment cart -n shop aiops.dev/actuate=true" in r.summary()
        assert not r.permanent  # held, not rejected: annotating lets it through
    assert Guardrails(require_opt_in=False) and check(Guardrails(require_opt_in=False), situation(
        ReplicasChange(replicas=4), {"replicas": 3}, annotations={})).ok


def test_a_recommendation_for_another_cluster_is_held():
    r = check(Guardrails(), situation(ReplicasChange(replicas=4), {"replicas": 3}, cluster="prod-eu"))
    assert [v.guard for v in r.verdicts] == ["cluster"] and not r.permanent
    assert "for cluster 'sim' but the actuator is connected to 'prod-eu'" in r.summary()


def test_hpa_owned_replicas_are_refused():
    r = check(Guardrails(), situation(ReplicasChange(replicas=4), {"replicas": 3}, hpa_owner="cart"))
    assert [v.guard for v in r.verdicts] == ["owner"] and r.permanent and "minReplicas" in r.summary()


@pytest.mark.parametrize("change, before, msg", [
    (ReplicasChange(replicas=60), {"replicas": 40}, "replicas 60 outside [1, 50]"),
    (ReplicasChange(replicas=0), {"replicas": 1}, "replicas 0 outside [1, 50]"),
    (HPAChange(max_replicas=70), {"min_replicas": 2, "max_replicas": 40}, "max_replicas 70 outside"),
    (HPAChange(min_replicas=12), {"min_replicas": 8, "max_replicas": 10}, "min_replicas 12 above max_replicas 10"),
    (ResourcesChange(cpu_request=0.005), {"cpu_request": 0.008, "cpu_limit": None}, "cpu_request 0.005 cores"),
    (ResourcesChange(memory_request=100 * 2**30), {"memory_request": 60 * 2**30, "memory_limit": None},
     "memory_request 1.07374e+11 bytes outside"),
    (ResourcesChange(cpu_request=0.3), {"cpu_request": 0.2, "cpu_limit": 0.25}, "cpu_request 0.3 above the cpu_limit"),
    (NodePoolChange(min_nodes=150, max_nodes=150), {"min_nodes": 100, "max_nodes": 100},
     "min_nodes 150 outside [0, 100]"),
])
def test_bounds(change, before, msg):
    g = Guardrails(max_step_up=10)
    r = check(g, situation(change, before))
    assert "bounds" in [v.guard for v in r.verdicts] and msg in r.summary() and r.permanent


@pytest.mark.parametrize("old, new, ok", [(4, 8, True), (4, 9, False), (4, 2, True), (4, 1, False), (0, 1, True),
                                          (0, 2, False)])
def test_max_step_up_and_down(old, new, ok):
    g = Guardrails(max_step_up=1.0, max_step_down=0.5, min_replicas=0)
    r = check(g, situation(ReplicasChange(replicas=new), {"replicas": old}))
    assert ("max-step" not in [v.guard for v in r.verdicts]) == ok
    if not ok:
        assert "at most" in r.summary() or "at least" in r.summary()


def test_insignificant_changes_are_skipped():
    g = Guardrails(min_relative_change=0.1)
    assert "min-change" in blocked_by(g, situation(ResourcesChange(cpu_request=0.105), {"cpu_request": 0.1,
                                                                                       "cpu_limit": None}))
    assert "min-change" not in blocked_by(g, situation(ResourcesChange(cpu_request=0.12), {"cpu_request": 0.1,
                                                                                          "cpu_limit": None}))
    # a field set for the first time is always significant
    assert "min-change" not in blocked_by(g, situation(ResourcesChange(cpu_limit=0.5), {"cpu_request": 0.1,
                                                                                       "cpu_limit": None}))


def test_change_windows_in_a_time_zone_and_across_midnight():
    berlin_office = ChangeWindow(days=("mon", "tue", "wed", "thu", "fri"), start=time(9), end=time(17),
                                 timezone="Europe/Berlin")
    assert in_window(berlin_office, datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc))  # Mon 13:00 CET
    assert not in_window(berlin_office, datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc))  # Mon 17:30 CET
    assert not in_window(berlin_office, datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc))  # Saturday
    night = ChangeWindow(days=("fri",), start=time(22), end=time(4))
    assert in_window(night, datetime(2026, 3, 6, 23, 0, tzinfo=timezone.utc))  # Fri 23:00
    assert in_window(night, datetime(2026, 3, 7, 3, 0, tzinfo=timezone.utc))  # Sat 03:00 belongs to Friday's
    assert not in_window(night, datetime(2026, 3, 8, 3, 0, tzinfo=timezone.utc))  # Sun 03:00
    g = Guardrails(change_windows=(berlin_office,))
    r = check(g, situation(ReplicasChange(replicas=4), {"replicas": 3},
                           now=datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc)))
    assert [v.guard for v in r.verdicts] == ["change-window"] and not r.permanent
    assert "mon/tue/wed/thu/fri 09:00-17:00 Europe/Berlin" in r.summary()


def test_rate_limit_and_freeze_hold_without_rejecting():
    g = Guardrails(rate_limit_changes=2)
    r = check(g, situation(ReplicasChange(replicas=4), {"replicas": 3}, applied_recently=2))
    assert [v.guard for v in r.verdicts] == ["rate-limit"] and not r.permanent
    assert check(g, situation(ReplicasChange(replicas=4), {"replicas": 3}, applied_recently=1)).ok
    r = check(g, situation(ReplicasChange(replicas=4), {"replicas": 3}, frozen="incident"))
    assert [v.guard for v in r.verdicts] == ["freeze"] and "incident" in r.summary()


def test_a_guard_that_fails_blocks_the_change():
    # an object whose field is not a number (a broken or unexpected object): the step guard cannot judge it
    r = check(Guardrails(), situation(ReplicasChange(replicas=4), {"replicas": "three"}))
    failed = [v for v in r.verdicts if "the guard failed" in v.reason]
    assert failed and not r.ok and failed[0].permanent


def test_guardrail_settings_are_validated():
    with pytest.raises(SettingsError, match="min_replicas .* must not exceed max_replicas"):
        load_settings(actuator={"guardrails": {"min_replicas": 10, "max_replicas": 5}})
    with pytest.raises(SettingsError, match="unknown IANA time zone"):
        load_settings(actuator={"guardrails": {"change_windows": [{"timezone": "Mars/Olympus"}]}})
    with pytest.raises(SettingsError, match="actuator.mode"):
        load_settings(actuator={"mode": "yolo"})


def test_a_lower_limit_below_the_request_in_place_is_refused():
    r = check(Guardrails(), situation(ResourcesChange(cpu_limit=0.15), {"cpu_request": 0.2, "cpu_limit": 0.25}))
    assert "cpu_request 0.2 above the cpu_limit 0.15" in r.summary() and r.permanent


@pytest.mark.parametrize("fields", [{"cpu_limit": float("inf")}, {"cpu_request": float("nan")},
                                    {"memory_request": 0.4}, {"memory_limit": float("inf")}])
def test_proposals_refuse_values_json_cannot_keep_or_the_cluster_cannot_take(fields):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ResourcesChange(**fields)
