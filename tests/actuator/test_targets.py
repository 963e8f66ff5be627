"""One client code for every target: a kubeconfig with several contexts, the role bound to a context, and a
clear error when the chosen cluster cannot be reached."""

from __future__ import annotations

import pytest
import yaml

from aiops.actuator.actuator import Actuator
from aiops.actuator.recommendation import ReplicasChange
from aiops.errors import ActuatorError
from aiops.settings import load_settings
from tests.actuator.conftest import deployment_target, proposal
from tests.support.servers import free_port


def _kubeconfig(path, sim_url: str, dead_url: str):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": dead_url}},
                     {"name": "staging", "cluster": {"server": sim_url}}],
        "users": [{"name": "alice", "user": {}}, {"name": "bob", "user": {}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "alice"}},
                     {"name": "staging", "context": {"cluster": "staging", "user": "bob"}}],
    }))
    return path


def test_the_chosen_context_is_the_target_and_the_identity(sim, pool, tmp_path, kubectl):
    kc = _kubeconfig(tmp_path / "kubeconfig", sim.url, f"http://127.0.0.1:{free_port()}")
    w = pool.take()
    settings = load_settings(data_dir=tmp_path / "data", kubeconfig=kc, kube_context="staging",
                             actuator={"mode": "apply", "role_bindings": {"context:staging": "operator",
                                                                          "alice": "admin"}})
    a = Actuator.open(settings)
    try:
        assert (a.caller.user, a.caller.role.value, a.caller.source) == ("bob", "operator", "binding context:staging")
        assert a.cluster.server == sim.url
        rec, _ = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1)))
        assert a.apply(rec.id).state == "applied"
        applied = a.store.audit_records(recommendation_id=rec.id)[-1]
        assert (applied["actor"], applied["role"], applied["outcome"]) == ("bob", "operator", "applied")
    finally:
        a.close()
    assert kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "jsonpath={.spec.replicas}") == str(
        w.replicas + 1)


def test_an_unreachable_cluster_is_a_clear_error_and_changes_no_state(sim, pool, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    kc = _kubeconfig(tmp_path / "kubeconfig", sim.url, dead)
    w = pool.take()
    settings = load_settings(data_dir=tmp_path / "data", kubeconfig=kc,
                             actuator={"mode": "apply", "role_bindings": {"alice": "operator"}})
    a = Actuator.open(settings)
    try:  # the current context's user
        assert (a.caller.user, a.caller.role.value, a.caller.source) == ("alice", "operator", "binding user:alice")
        rec, _ = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1)))
        with pytest.raises(ActuatorError, match=f"cannot reach the cluster's API at {dead}"):
            a.apply(rec.id)
        assert a.store.get(rec.id).state.value == "pending"
        assert a.store.verify().ok
    finally:
        a.close()


def test_a_missing_kubeconfig_says_how_to_get_one(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", actuator={"mode": "apply", "role": "operator"})
    a = Actuator.open(settings)
    try:
        with pytest.raises(ActuatorError, match="aiops sim serve"):
            _ = a.cluster
    finally:
        a.close()
