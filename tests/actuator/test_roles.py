"""Who may do what: every role against every action, through the Python API and the real `aiops` command.

An allowed call does what it says. A forbidden one raises `Forbidden`, appends exactly one audit record (outcome
"denied", the caller's user and role, the action), and changes nothing: the recommendations, the freeze and the
cluster object (spec and resourceVersion, read back from the served API) are as they were. Identity: with no role
set, the kubeconfig context's user gets `default_role`; a binding by user or by `context:<name>` overrides it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from aiops.actuator.policy import Action
from aiops.actuator.recommendation import ReplicasChange, State
from aiops.errors import Forbidden
from tests.actuator.conftest import deployment_target, proposal

USER = "aiops-sim"  # the user of the served cluster's kubeconfig context (also the context's name)
ROLES = ("viewer", "developer", "operator", "admin")
ACTIONS = ("read", "propose", "dry-run", "apply", "reject", "rollback", "configure")
# Written out rather than derived from `Action.least_role`: this is the table the README promises.
ALLOWED = {
    "viewer": {"read"},
    "developer": {"read", "propose", "dry-run"},
    "operator": {"read", "propose", "dry-run", "apply", "reject", "rollback"},
    "admin": set(ACTIONS),
}
LEAST = {a: next(r for r in ROLES if a in ALLOWED[r]) for a in ACTIONS}


@pytest.fixture(scope="module")
def workload(pool):
    """One opted-in plain workload for the whole matrix: every cell reads its replicas before changing them."""
    return pool.take()


def _replicas(sim, w) -> int:
    return sim.deployment(w)["spec"]["replicas"]


def _next(n: int) -> int:
    # one replica up or down: inside max-step, above min-change and within [1, 50] for the sim's 2..6 replicas
    return n + 1 if n < 6 else n - 1


def _propose(act, sim, w):
    rec, created = act.propose(proposal(deployment_target(w), ReplicasChange(replicas=_next(_replicas(sim, w)))))
    assert created
    return rec


def _snapshot(act, sim, w) -> dict[str, Any]:
    """Everything a denied call must leave alone, read back from the store and the served API."""
    return {"recommendations": act.store.list(), "frozen": act.store.frozen(), "object": sim.deployment(w)}


def test_the_matrix_matches_the_policy():
    # the table below the tests is the one the code enforces
    assert {r: {a for a in ACTIONS if r_rank >= Action(a).least_role.rank}
            for r_rank, r in enumerate(ROLES)} == ALLOWED


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_role_may_or_may_not_take_action(role, action, make_actuator, sim, workload):
    w = workload
    setup = make_actuator(role="admin")  # prepares what the action needs, in the same store
    rec = _propose(setup, sim, w) if action not in ("propose", "configure") else None
    applied_from = _replicas(sim, w)
    if action == "rollback":
        setup.apply(rec.id)
    if action == "configure" and action not in ALLOWED[role]:
        setup.freeze("incident 4711")  # so the denied role also tries (and fails) to lift a freeze
    act = make_actuator(role=role)
    assert (act.caller.user, act.caller.role.value, act.caller.source) == (USER, role, "settings")
    before = _snapshot(act, sim, w)
    seq0 = act.store.head()[0]
    target_replicas = _next(_replicas(sim, w))
    calls = {
        "read": lambda: (act.authorize(Action.read), act.store.list(), act.store.audit_records()),
        "propose": lambda: act.propose(proposal(deployment_target(w), ReplicasChange(replicas=target_replicas))),
        "dry-run": lambda: act.apply(rec.id, dry_run=True),
        "apply": lambda: act.apply(rec.id),
        "reject": lambda: act.reject(rec.id, "not now"),
        "rollback": lambda: act.rollback(rec.id),
        "configure": lambda: act.unfreeze() if before["frozen"] else act.freeze("incident 4711"),
    }

    if action not in ALLOWED[role]:
        with pytest.raises(Forbidden) as exc:
            calls[action]()
        assert f"{USER} has role {role} (settings); {action} needs {LEAST[action]} or above" in str(exc.value)
        records = act.store.audit_records()
        assert len(records) == seq0 + 1, "a denial must append exactly one audit record"
        denied = records[-1]
        assert (denied["outcome"], denied["actor"], denied["role"], denied["action"]) == ("denied", USER, role, action)
        assert denied["recommendation_id"] == (rec.id if rec else None)
        if action in ("propose", "dry-run", "apply", "reject", "rollback"):
            assert denied["object_key"] == deployment_target(w).object_key
        assert _snapshot(act, sim, w) == before, "a denied call changed something"
        assert act.store.verify().ok
        return

    out = calls[action]()
    records = act.store.audit_records()
    new = records[seq0:]  # what this call appended
    assert all(r["actor"] == USER and r["role"] == role for r in new)
    if action == "read":
        assert new == [] and out[1] == before["recommendations"]  # reading is not audited and changes nothing
        assert _snapshot(act, sim, w) == before
    elif action == "propose":
        created, _ = out
        assert created.state is State.pending and [r.id for r in act.store.list()] == [created.id]
        assert [(r["action"], r["outcome"]) for r in new] == [("propose", "proposed")]
        assert sim.deployment(w) == before["object"]
    elif action == "dry-run":
        assert out.outcome == "dry-run-ok" and act.store.get(rec.id).state is State.dry_run_ok
        assert [(r["action"], r["outcome"]) for r in new] == [("dry-run", "dry-run-ok")]
        assert sim.deployment(w) == before["object"], "a dry-run changed the object"
    elif action == "apply":
        assert out.outcome == "applied" and act.store.get(rec.id).state is State.applied
        assert [(r["action"], r["outcome"]) for r in new] == [("apply", "applying"), ("apply", "applied")]
        assert _replicas(sim, w) == rec.change.replicas != before["object"]["spec"]["replicas"]
    elif action == "reject":
        assert out.outcome == "rejected" and act.store.get(rec.id).state is State.rejected
        assert [(r["action"], r["outcome"]) for r in new] == [("reject", "rejected")]
        assert sim.deployment(w) == before["object"]
    elif action == "rollback":
        assert out.outcome == "rolled-back" and act.store.get(rec.id).state is State.rolled_back
        assert [(r["action"], r["outcome"]) for r in new] == [("rollback", "applying"), ("rollback", "rolled-back")]
        assert _replicas(sim, w) == applied_from
    elif action == "configure":
        assert act.store.frozen() == "incident 4711" and out["outcome"] == "frozen"
        act.unfreeze("incident over")
        assert act.store.frozen() is None
        assert [(r["action"], r["outcome"]) for r in act.store.audit_records()[seq0:]] == [
            ("configure", "frozen"), ("configure", "unfrozen")]
    assert act.store.verify().ok


# --- identity --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings, role, source", [
    ({}, "viewer", "default"),
    ({"default_role": "developer"}, "developer", "default"),
    ({"role_bindings": {USER: "operator"}}, "operator", f"binding user:{USER}"),
    ({"role_bindings": {f"context:{USER}": "admin"}}, "admin", f"binding context:{USER}"),
    # a binding for the user wins over one for the context; another user's binding does not apply
    ({"role_bindings": {USER: "developer", f"context:{USER}": "admin"}}, "developer", f"binding user:{USER}"),
    ({"role_bindings": {"alice": "admin"}}, "viewer", "default"),
])
def test_identity_is_the_kubeconfig_user_and_its_role_comes_from_bindings(settings, role, source, make_actuator):
    act = make_actuator(role=None, **settings)
    assert (act.caller.user, act.caller.role.value, act.caller.source) == (USER, role, source)


def test_explicit_user_and_role_settings_win(make_actuator):
    named = make_actuator(role=None, user="alice", role_bindings={"alice": "operator", f"context:{USER}": "admin"})
    assert (named.caller.user, named.caller.role.value, named.caller.source) == ("alice", "operator",
                                                                                  "binding user:alice")
    pinned = make_actuator(role="developer", role_bindings={USER: "admin"})
    assert (pinned.caller.role.value, pinned.caller.source) == ("developer", "settings")


def test_the_resolved_role_is_what_is_enforced_and_audited(make_actuator, sim, workload):
    unbound = make_actuator(role=None)
    bound = make_actuator(role=None, role_bindings={f"context:{USER}": "operator"})
    rec = _propose(bound, sim, workload)  # operator by its context binding: may propose
    before = sim.deployment(workload)
    with pytest.raises(Forbidden, match=f"{USER} has role viewer \\(default\\); apply needs operator or above"):
        unbound.apply(rec.id)
    assert sim.deployment(workload) == before and unbound.store.get(rec.id).state is State.pending
    assert bound.apply(rec.id).outcome == "applied"
    assert _replicas(sim, workload) == rec.change.replicas
    trail = [(r["actor"], r["role"], r["action"], r["outcome"]) for r in bound.store.audit_records()]
    assert trail == [(USER, "operator", "propose", "proposed"), (USER, "viewer", "apply", "denied"),
                     (USER, "operator", "apply", "applying"), (USER, "operator", "apply", "applied")]


# --- the real command ------------------------------------------------------------------------------------------


def test_cli_refusals_exit_3_explain_themselves_and_change_nothing(sim, workload, make_actuator, cli, tmp_path):
    # the CLI's data directory is this test's, so an actuator here shares its store
    setup = make_actuator(role="admin")
    applied = _propose(setup, sim, workload)
    setup.apply(applied.id)
    pending = _propose(setup, sim, workload)
    before = _snapshot(setup, sim, workload)
    seq0 = setup.store.head()[0]

    cells = [  # (role given to the command, arguments, action the audit must name, least role)
        (None, ["apply", str(pending.id)], "apply", "operator"),  # no role: the kubeconfig user, a viewer
        ("viewer", ["apply", str(pending.id), "--dry-run"], "dry-run", "developer"),
        ("developer", ["apply", str(pending.id)], "apply", "operator"),
        ("developer", ["rollback", str(applied.id)], "rollback", "operator"),
        ("operator", ["freeze", "-m", "incident 4711"], "configure", "admin"),
    ]
    for role, args, action, least in cells:
        p = cli(*args, role=role)
        assert p.returncode == 3, (role, args, p.stdout, p.stderr)
        source = "default" if role is None else "settings"
        assert p.stderr.strip() == (f"error: forbidden: {USER} has role {role or 'viewer'} ({source}); {action} "
                                    f"needs {least} or above"), (role, args)
        assert p.stdout == ""

    # reading is a viewer's right: the refusals are in the audit trail, each with who, role and action
    listed = cli("suggestions", "-A", "-o", "json", role="viewer")
    assert listed.returncode == 0, listed.stderr
    assert {r["id"]: r["state"] for r in json.loads(listed.stdout)} == {applied.id: "applied",
                                                                         pending.id: "pending"}
    trail = cli("audit", "-o", "yaml", role="viewer")
    assert trail.returncode == 0, trail.stderr
    denied = [(r["actor"], r["role"], r["action"], r["outcome"]) for r in yaml.safe_load(trail.stdout)[seq0:]]
    assert denied == [(USER, role or "viewer", action, "denied") for role, _, action, _ in cells]
    assert _snapshot(setup, sim, workload) == before
    assert setup.store.verify().ok
