"""The actuator killed between its dry-run and its write: the next command settles the recommendation from what
the cluster really has, so state, audit and cluster agree.

`aiops apply` runs as a real process whose API calls go through a real HTTP proxy. The proxy holds its real
(non-dry-run) PATCH: either before the server sees it (the process is killed and the write is dropped: nothing
changed) or after the server applied it (the process is killed before it hears back: the change landed). Later
commands use the direct kubeconfig, as a restarted actuator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from typing import TypeVar

import yaml

from aiops.actuator.recommendation import ReplicasChange
from tests.actuator.conftest import AIOPS, deployment_target, proposal
from tests.support.proxy import Proxy, writes

BEFORE, AFTER = 4, 6
REAL_PATCH = writes("deployments")
T = TypeVar("T")


def _replicas(kubectl, w) -> int:
    return int(kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "jsonpath={.spec.replicas}"))


def _propose(cli, kubectl, w, tmp_path) -> None:
    kubectl("scale", "deploy", w.name, "-n", w.namespace, f"--replicas={BEFORE}")
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(proposal(deployment_target(w), ReplicasChange(replicas=AFTER)).model_dump(mode="json")))
    assert cli("propose", "-f", str(f)).returncode == 0


def _start_apply(proxy: Proxy, tmp_path) -> subprocess.Popen:
    """`aiops apply 1` in apply mode as an operator, on this test's data directory, talking through the proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(AIOPS_DATA_DIR=str(tmp_path / "data"), AIOPS_ACTUATOR__ROLE="operator", AIOPS_ACTUATOR__MODE="apply",
               AIOPS_KUBECONFIG=str(proxy.kubeconfig(tmp_path / "proxy-kubeconfig")), NO_COLOR="1", TERM="dumb")
    return subprocess.Popen([AIOPS, "apply", "1"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill_once(p: subprocess.Popen, wait: Callable[[], T]) -> T:
    """`wait()` for the moment to strike, then SIGKILL the process and reap it (its pid is gone, as after a crash)."""
    try:
        got = wait()
    except TimeoutError as exc:
        p.kill()
        _, err = p.communicate(timeout=30)
        raise AssertionError(f"{exc}; `aiops apply` exited {p.returncode}: {err}") from None
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL, f"`aiops apply` ended by itself ({p.returncode}) before it was killed"
    return got


def _suggested(cli) -> str:
    """The recommendation's state as an SRE sees it (`aiops suggestions`)."""
    (rec,) = json.loads(cli("suggestions", "-A", "-o", "json").stdout)
    return rec["state"]


def _verifies(cli) -> None:
    v = cli("audit", "--verify")
    assert v.returncode == 0 and "audit chain OK" in v.stdout, v.stdout + v.stderr


def test_killed_before_the_write_reached_the_server_is_not_applied(sim, pool, cli, kubectl, make_actuator,
                                                                     tmp_path):
    w = pool.take()
    _propose(cli, kubectl, w, tmp_path)
    with Proxy(sim.url) as proxy:
        held = proxy.intercept(REAL_PATCH, "hold")
        p = _start_apply(proxy, tmp_path)
        (write,) = _kill_once(p, lambda: held.wait_arrived(1, timeout_s=60))
        held.release(forward=False)
        assert write.json()["spec"] == {"replicas": AFTER}
        assert proxy.forwarded(REAL_PATCH) == [], "the write must never have reached the server"
    store = make_actuator().store  # reads the records the processes wrote; never touches the cluster
    # the dead process left its intent behind, and nothing else
    assert store.get(1).state.value == "applying"
    assert [r["outcome"] for r in store.audit_records()] == ["proposed", "applying"]
    listed = cli("suggestions", role="viewer")  # the default listing shows it, with what will settle it
    assert "applying (settled by the next apply or status)" in listed.stdout

    st = cli("status", "-o", "json")  # a restarted actuator: direct kubeconfig
    assert st.returncode == 0, st.stderr
    (recovered,) = json.loads(st.stdout)["actuator"]["recovered"]
    assert recovered["recommendation"] == 1 and recovered["outcome"] == "not-applied"
    assert recovered["state"] == "pending" and recovered["after"] == {"replicas": BEFORE}

    assert _suggested(cli) == "pending"
    audit = store.audit_records()
    assert [r["outcome"] for r in audit] == ["proposed", "applying", "not-applied"]
    intent, settled = audit[1], audit[2]
    assert intent["details"]["pid"] == p.pid and settled["details"]["intent_seq"] == intent["seq"]
    assert settled["reason"].startswith("recovered: the process stopped before the change landed")
    assert settled["before"] == {"replicas": BEFORE} and settled["after"] == {"replicas": BEFORE}
    assert _replicas(kubectl, w) == BEFORE

    # nothing is lost: the recommendation is open again and can be applied
    again = cli("apply", "1")
    assert again.returncode == 0, again.stderr
    assert _replicas(kubectl, w) == AFTER and store.get(1).state.value == "applied"
    _verifies(cli)


def test_killed_after_the_write_landed_is_applied_and_can_be_rolled_back(sim, pool, cli, kubectl, make_actuator,
                                                                         tmp_path):
    w = pool.take()
    _propose(cli, kubectl, w, tmp_path)
    with Proxy(sim.url) as proxy:
        held = proxy.intercept(REAL_PATCH, "forward_then_hold")
        p = _start_apply(proxy, tmp_path)
        (answered,) = _kill_once(p, lambda: held.wait_answered(1, timeout_s=60))
        held.release()  # the answer goes to a dead client
        assert answered.status == 200
    assert _replicas(kubectl, w) == AFTER  # landed, though the process never recorded it
    act = make_actuator()  # a restarted actuator: direct kubeconfig, the same data directory
    assert act.store.get(1).state.value == "applying"

    (recovered,) = act.recover()
    assert (recovered.recommendation, recovered.outcome, recovered.state) == (1, "applied", "applied")
    assert recovered.before == {"replicas": BEFORE} and recovered.after == {"replicas": AFTER}
    assert act.recover() == []  # settled once

    assert _suggested(cli) == "applied"
    audit = act.store.audit_records()
    assert [r["outcome"] for r in audit] == ["proposed", "applying", "applied"]
    intent, settled = audit[1], audit[2]
    assert intent["details"]["pid"] == p.pid and settled["details"]["intent_seq"] == intent["seq"]
    assert settled["reason"].startswith("recovered: the process that applied it stopped before recording it")
    assert act.store.get(1).applied_audit_seq == settled["seq"]  # the record a rollback restores from
    assert _replicas(kubectl, w) == AFTER

    r = cli("rollback", "1", "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "rolled-back" and out["before"] == {"replicas": AFTER} and out["after"] == {
        "replicas": BEFORE}
    assert _replicas(kubectl, w) == BEFORE and act.store.get(1).state.value == "rolled-back"
    assert [r["outcome"] for r in act.store.audit_records()][3:] == ["applying", "rolled-back"]
    _verifies(cli)


def test_a_write_that_timed_out_in_a_living_process_is_settled_and_a_late_write_is_fenced(
        sim, pool, cli, kubectl, make_actuator, tmp_path):
    import pytest

    from aiops.errors import ActuatorError

    w = pool.take()
    _propose(cli, kubectl, w, tmp_path)
    with Proxy(sim.url) as proxy:
        held = proxy.intercept(REAL_PATCH, "hold", times=1)
        slow = make_actuator(kubeconfig=proxy.kubeconfig(tmp_path / "proxy-kubeconfig"), request_timeout_s=2)
        with pytest.raises(ActuatorError, match="may or may not have been applied"):
            slow.apply(1)
        assert slow.store.get(1).state.value == "applying"
        # the same process (its pid alive) settles it: no thread of it is writing any more
        (rec,) = make_actuator().recover()
        assert (rec.outcome, rec.state, rec.after) == ("not-applied", "pending", {"replicas": BEFORE})
        held.release()  # the stale write reaches the server only now ...
        (late,) = held.wait_answered(1, timeout_s=30)
        assert late.status == 409  # ... and is refused: recovery moved the resourceVersion on first
    assert _replicas(kubectl, w) == BEFORE
    fenced = json.loads(kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "json"))
    assert fenced["metadata"]["annotations"]["aiops.dev/recovered"] == "2"  # the intent record's seq
    assert _suggested(cli) == "pending"
    _verifies(cli)
