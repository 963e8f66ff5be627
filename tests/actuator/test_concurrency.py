"""Two actuators writing the same object at the same moment: one wins, the other loses cleanly.

A real HTTP proxy between the actuators and the simulated cluster's API holds each real (non-dry-run) PATCH until
both have arrived, so both have read the same resourceVersion before either writes; then it forwards both at
once. The API server's resourceVersion precondition lets exactly one through (200) and answers the other 409;
the loser sees that the fields it changes moved, so it overwrites nothing and puts its recommendation back to
pending. Run with two threads of the Python API and with two `aiops apply` processes, on one shared store.
And one recommendation applied twice at once: the store lets one actuator move it on, the object changes once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from aiops.actuator.changes import MERGE
from aiops.actuator.kube import Cluster, NotFound
from aiops.actuator.recommendation import ReplicasChange, Target
from aiops.errors import Blocked, Conflict
from tests.actuator.conftest import deployment_target, proposal
from tests.support.proxy import Proxy, writes

BEFORE, LOW, HIGH = 4, 6, 8  # 4 -> 8 is a step of +100%: the default max_step_up (1.0) still allows it
GUARDRAILS = {"max_step_up": 1.0, "rate_limit_changes": 5}
REAL_PATCH = writes("deployments")
DRY_RUN_PATCH = writes("deployments", dry_run=True)


def _replicas(kubectl, w) -> int:
    return int(kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "jsonpath={.spec.replicas}"))


def _scale(kubectl, w, n: int) -> None:
    kubectl("scale", "deploy", w.name, "-n", w.namespace, f"--replicas={n}")
    assert _replicas(kubectl, w) == n


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads at once; each result, or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the exception is the result under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a concurrent apply did not finish within 180 s"
    return results


def _outcomes(records: list[dict], rec_id: int) -> list[str]:
    return [r["outcome"] for r in records if r["recommendation_id"] == rec_id]


def _same_version_then_one_wins(proxy: Proxy, barrier) -> None:
    """Both real PATCHes carried the same resourceVersion precondition; the server took one and refused one."""
    held = barrier.wait_arrived(2, timeout_s=1)
    versions = {r.json()["metadata"]["resourceVersion"] for r in held}
    assert len(versions) == 1, f"the two writes read different versions: {versions}"
    assert sorted(f.status for f in proxy.forwarded(REAL_PATCH)) == [200, 409]


def test_the_proxy_is_transparent(sim, pool, tmp_path):
    # what the tests below observe through the proxy is what the API server answered: status, Warning, body
    h = pool.take("autoscaled")
    t = deployment_target(h)
    with Proxy(sim.url) as proxy:
        direct, proxied = Cluster(sim.kubeconfig), Cluster(proxy.kubeconfig(tmp_path / "proxy-kubeconfig"))
        try:
            obj = proxied.read(t)
            assert obj == direct.read(t)
            body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    "spec": {"replicas": obj["spec"]["replicas"] + 1}}
            a, b = (c.patch(t, body, MERGE, dry_run=True) for c in (direct, proxied))
            assert a.obj == b.obj and a.warnings == b.warnings
            assert any("HorizontalPodAutoscaler" in w for w in b.warnings)  # the HPA owns replicas: a Warning
            for c in (direct, proxied):
                with pytest.raises(NotFound, match="no-such-thing"):
                    c.read(Target(cluster="sim", namespace=h.namespace, kind="Deployment", name="no-such-thing"))
        finally:
            direct.close()
            proxied.close()
        sent = proxy.forwarded(DRY_RUN_PATCH)
    assert len(sent) == 1 and sent[0].status == 200 and sent[0].request.json() == body
    assert sim.deployment(h)["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]  # a dry run


def test_two_recommendations_race_for_one_deployment_python_api(sim, pool, make_actuator, kubectl, tmp_path):
    w = pool.take()
    _scale(kubectl, w, BEFORE)
    with Proxy(sim.url) as proxy:
        kc = proxy.kubeconfig(tmp_path / "proxy-kubeconfig")
        a, b = (make_actuator(kubeconfig=kc, data_dir=tmp_path / "data", guardrails=GUARDRAILS) for _ in range(2))
        low, _ = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=LOW)))
        high, _ = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=HIGH)))
        barrier = proxy.intercept(REAL_PATCH, "barrier", count=2, timeout_s=60)

        results = _together(lambda: a.apply(low.id), lambda: b.apply(high.id))

        _same_version_then_one_wins(proxy, barrier)
    by_id = dict(zip((low.id, high.id), results))
    won = [i for i, r in by_id.items() if not isinstance(r, Exception)]
    lost = [i for i, r in by_id.items() if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1, f"expected one applied and one conflict, got {results}"
    (winner,), (loser,) = won, lost
    value = {low.id: LOW, high.id: HIGH}
    assert by_id[winner].outcome == "applied" and by_id[winner].after == {"replicas": value[winner]}
    assert "someone changed" in str(by_id[loser]) and "nothing was overwritten" in str(by_id[loser])
    assert _replicas(kubectl, w) == value[winner]

    store = a.store
    assert store.get(winner).state.value == "applied" and store.get(loser).state.value == "pending"
    records = store.audit_records()
    assert _outcomes(records, winner) == ["proposed", "applying", "applied"]
    assert _outcomes(records, loser) == ["proposed", "applying", "conflict"]
    conflict = next(r for r in records if r["outcome"] == "conflict")
    assert conflict["before"] == {"replicas": value[winner]}  # what the loser found when it read again
    assert store.verify().ok

    # nothing was lost: the loser is open again and, applied now (directly, no proxy), moves on from the winner
    again = make_actuator(data_dir=tmp_path / "data", guardrails=GUARDRAILS).apply(loser)
    assert again.outcome == "applied" and again.before == {"replicas": value[winner]}
    assert _replicas(kubectl, w) == value[loser]
    assert store.verify().ok


def test_two_recommendations_race_for_one_deployment_cli(sim, pool, cli, kubectl, make_actuator, tmp_path):
    w = pool.take()
    _scale(kubectl, w, BEFORE)
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump([proposal(deployment_target(w), ReplicasChange(replicas=n)).model_dump(mode="json")
                                 for n in (LOW, HIGH)], sort_keys=False))
    assert cli("propose", "-f", str(f)).returncode == 0
    with Proxy(sim.url) as proxy:
        env = {"AIOPS_KUBECONFIG": str(proxy.kubeconfig(tmp_path / "proxy-kubeconfig")),
               "AIOPS_ACTUATOR__GUARDRAILS": json.dumps(GUARDRAILS)}
        barrier = proxy.intercept(REAL_PATCH, "barrier", count=2, timeout_s=90)

        p1, p2 = _together(lambda: cli("apply", "1", "-o", "json", env=env),
                           lambda: cli("apply", "2", "-o", "json", env=env))

        _same_version_then_one_wins(proxy, barrier)
    codes = {1: p1.returncode, 2: p2.returncode}
    assert sorted(codes.values()) == [0, 5], (p1.stderr, p2.stderr)
    winner = next(i for i, c in codes.items() if c == 0)
    loser = 3 - winner
    value = {1: LOW, 2: HIGH}
    out = json.loads((p1 if winner == 1 else p2).stdout)
    assert out["state"] == "applied" and out["after"] == {"replicas": value[winner]}
    assert "conflict: someone changed" in (p2 if winner == 1 else p1).stderr
    assert _replicas(kubectl, w) == value[winner]

    listed = json.loads(cli("suggestions", "-A", "-o", "json").stdout)
    assert {r["id"]: r["state"] for r in listed} == {winner: "applied", loser: "pending"}
    audit = make_actuator().store.audit_records()  # the same store the two processes wrote
    assert _outcomes(audit, winner) == ["proposed", "applying", "applied"]
    assert _outcomes(audit, loser) == ["proposed", "applying", "conflict"]
    v = cli("audit", "--verify")
    assert v.returncode == 0 and "audit chain OK: 6 records" in v.stdout


def test_one_recommendation_applied_twice_at_once_changes_the_object_once(sim, pool, make_actuator, kubectl,
                                                                          tmp_path):
    w = pool.take()
    _scale(kubectl, w, BEFORE)
    generation = sim.deployment(w)["metadata"]["generation"]
    with Proxy(sim.url) as proxy:
        kc = proxy.kubeconfig(tmp_path / "proxy-kubeconfig")
        a, b = (make_actuator(kubeconfig=kc, data_dir=tmp_path / "data", guardrails=GUARDRAILS) for _ in range(2))
        rec, _ = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=LOW)))
        # both pass every check and dry-run before either moves the recommendation on: the store decides
        barrier = proxy.intercept(DRY_RUN_PATCH, "barrier", count=2, timeout_s=60)

        results = _together(lambda: a.apply(rec.id), lambda: b.apply(rec.id))

        barrier.wait_arrived(2, timeout_s=1)
        real = proxy.forwarded(REAL_PATCH)
    applied = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, (Conflict, Blocked))]
    assert len(applied) == 1 and len(refused) == 1, f"expected one applied and one refused, got {results}"
    assert applied[0].outcome == "applied" and applied[0].after == {"replicas": LOW}
    assert [f.status for f in real] == [200], "the object must be written exactly once"
    assert _replicas(kubectl, w) == LOW
    assert sim.deployment(w)["metadata"]["generation"] == generation + 1
    outcomes = _outcomes(a.store.audit_records(), rec.id)
    assert outcomes.count("applying") == 1 and outcomes.count("applied") == 1
    assert a.store.get(rec.id).state.value == "applied" and a.store.verify().ok
