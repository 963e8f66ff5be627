"""The SRE's path through the real `aiops` command: propose, list, dry-run, apply, refuse, roll back, audit.

Everything runs as subprocesses against the simulated cluster's API over HTTP, and what was applied is read back
with the real kubectl.
"""

from __future__ import annotations

import json
import sqlite3

import yaml

from aiops.actuator.recommendation import HPAChange, ReplicasChange, ResourcesChange
from tests.actuator.conftest import deployment_target, hpa_target, proposal


def _write(path, *proposals) -> str:
    path.write_text(yaml.safe_dump([p.model_dump(mode="json") for p in proposals], sort_keys=False))
    return str(path)


def _replicas(kubectl, w) -> int:
    return int(kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "jsonpath={.spec.replicas}"))


def test_operator_applies_and_rolls_back_viewer_is_refused(sim, pool, cli, kubectl, tmp_path):
    w = pool.take()
    before = _replicas(kubectl, w)
    f = _write(tmp_path / "p.yaml", proposal(deployment_target(w), ReplicasChange(replicas=before + 2),
                                             reason="traffic spike expected at 14:00"))
    # a viewer may not even propose; a developer may
    p = cli("propose", "-f", f, role="viewer")
    assert p.returncode == 3 and "forbidden" in p.stderr and "propose needs developer" in p.stderr
    p = cli("propose", "-f", f, role="developer")
    assert p.returncode == 0, p.stderr
    assert "recommendation 1 proposed" in p.stdout
    again = cli("propose", "-f", f, role="developer")
    assert again.returncode == 0 and "recommendation 1 already exists" in again.stdout

    listed = cli("suggestions", "-o", "json", role="viewer")
    assert listed.returncode == 0, listed.stderr
    recs = json.loads(listed.stdout)
    assert [(r["id"], r["state"], r["change"]) for r in recs] == [(1, "pending", {"type": "replicas",
                                                                                  "replicas": before + 2})]
    assert recs[0]["evidence"]["model"] == "forecast-request_rate"
    table = cli("suggestions", role="viewer")
    assert "traffic spike expected at 14:00" in table.stdout and f"deployment/{w.name}" in table.stdout

    # viewer: refused, nothing changes
    v = cli("apply", "1", role="viewer")
    assert v.returncode == 3 and "apply needs operator" in v.stderr
    assert _replicas(kubectl, w) == before
    # operator in the default dry-run mode: blocked, with the way out in the message
    d = cli("apply", "1", mode=None)
    assert d.returncode == 4 and "AIOPS_ACTUATOR__MODE=apply" in d.stderr
    # developer dry-run: the diff, and the cluster unchanged
    dr = cli("apply", "1", "--dry-run", role="developer", mode=None)
    assert dr.returncode == 0, dr.stderr
    assert f"-  replicas: {before}" in dr.stdout and f"+  replicas: {before + 2}" in dr.stdout
    assert _replicas(kubectl, w) == before
    # operator in apply mode: applied, read back with kubectl
    a = cli("apply", "1", "-o", "json")
    assert a.returncode == 0, a.stderr
    out = json.loads(a.stdout)
    assert out["state"] == "applied" and out["before"] == {"replicas": before} and out["after"] == {
        "replicas": before + 2}
    assert _replicas(kubectl, w) == before + 2
    # applying twice is refused as blocked (not silently repeated)
    assert cli("apply", "1").returncode == 4

    r = cli("rollback", "1", role="viewer")
    assert r.returncode == 3
    r = cli("rollback", "1")
    assert r.returncode == 0, r.stderr
    assert "rolled-back" in r.stdout
    assert _replicas(kubectl, w) == before

    audit = json.loads(cli("audit", "-o", "json", role="viewer").stdout)
    outcomes = [(x["action"], x["outcome"], x["role"]) for x in audit]
    assert outcomes == [
        ("propose", "denied", "viewer"), ("propose", "proposed", "developer"), ("apply", "denied", "viewer"),
        ("apply", "blocked", "operator"), ("dry-run", "dry-run-ok", "developer"), ("apply", "applying", "operator"),
        ("apply", "applied", "operator"), ("apply", "blocked", "operator"), ("rollback", "denied", "viewer"),
        ("rollback", "applying", "operator"), ("rollback", "rolled-back", "operator")]
    applied = audit[6]
    assert applied["before"] == {"replicas": before} and applied["after"] == {"replicas": before + 2}
    assert applied["actor"] == "aiops-sim" and f"+  replicas: {before + 2}" in applied["diff"]
    recent = json.loads(cli("audit", "--recent", "2", "-o", "json", role="viewer").stdout)
    assert [x["seq"] for x in recent] == [10, 11]
    v = cli("audit", "--verify", role="viewer")
    assert v.returncode == 0 and "audit chain OK: 11 records" in v.stdout


def test_resources_and_hpa_changes_read_back_with_kubectl(sim, pool, cli, kubectl, tmp_path):
    w, h = pool.take(), pool.take("autoscaled")
    cpu = w.resources.cpu_request
    mem_limit = w.resources.memory_limit
    hpa = kubectl("get", "hpa", sim.hpa_name(h), "-n", h.namespace, "-o", "json")
    hmin = json.loads(hpa)["spec"]["minReplicas"]
    f = _write(tmp_path / "p.yaml",
               proposal(deployment_target(w, container=True),
                        ResourcesChange(cpu_request=cpu * 1.5, cpu_limit=max(cpu * 1.5, w.resources.cpu_limit or 0),
                                        memory_limit=mem_limit * 1.25)),
               proposal(hpa_target(sim, h), HPAChange(min_replicas=hmin + 1, target_cpu_utilization=65)))
    assert cli("propose", "-f", f).returncode == 0
    for rec in ("1", "2"):
        p = cli("apply", rec)
        assert p.returncode == 0, p.stderr
    res = json.loads(kubectl("get", "deploy", w.name, "-n", w.namespace, "-o",
                             "jsonpath={.spec.template.spec.containers[0].resources}"))
    assert res["requests"]["cpu"] == f"{round(cpu * 1500)}m"
    assert res["limits"]["memory"] == f"{int(mem_limit * 1.25) // 2**20}Mi"
    spec = json.loads(kubectl("get", "hpa", sim.hpa_name(h), "-n", h.namespace, "-o", "json"))["spec"]
    assert spec["minReplicas"] == hmin + 1
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 65


def test_guardrail_refusals_are_explained_and_audited(sim, pool, cli, kubectl, tmp_path):
    w, off, h = pool.take(), pool.take(opt_in=False), pool.take("autoscaled")
    n = _replicas(kubectl, w)
    f = _write(tmp_path / "p.yaml",
               proposal(deployment_target(w), ReplicasChange(replicas=n * 3)),  # above max_step_up
               proposal(deployment_target(off), ReplicasChange(replicas=off.replicas + 1)),  # not opted in
               proposal(deployment_target(h), ReplicasChange(replicas=9)),  # owned by an HPA
               proposal(deployment_target(w), ReplicasChange(replicas=n)))  # no change at all
    assert cli("propose", "-f", f).returncode == 0
    expect = {"1": "max-step", "2": "opt-in", "3": "owner", "4": "min-change"}
    for rec, guard in expect.items():
        p = cli("apply", rec)
        assert p.returncode == 4, (rec, p.stdout, p.stderr)
        assert f"{guard}:" in p.stderr, (rec, p.stderr)
    assert _replicas(kubectl, w) == n
    states = {r["id"]: r["state"] for r in json.loads(cli("suggestions", "-A", "-o", "json").stdout)}
    # a step too large is rejected for good; a missing opt-in only holds the recommendation until it is given
    assert states == {1: "rejected", 2: "pending", 3: "rejected", 4: "rejected"}
    sim.opt_in(off)
    assert cli("apply", "2").returncode == 0
    blocked = [x for x in json.loads(cli("audit", "-o", "json").stdout) if x["outcome"] == "blocked"]
    assert [x["details"]["blocked_by"][0]["guard"] for x in blocked] == list(expect.values())


def test_admin_freeze_blocks_every_change(sim, pool, cli, kubectl, tmp_path):
    w = pool.take()
    f = _write(tmp_path / "p.yaml", proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1)))
    assert cli("propose", "-f", f).returncode == 0
    assert cli("freeze", "-m", "incident 4711").returncode == 3  # operators cannot
    assert cli("freeze", "-m", "incident 4711", role="admin").returncode == 0
    p = cli("apply", "1")
    assert p.returncode == 4 and "frozen by an admin: incident 4711" in p.stderr
    st = json.loads(cli("status", "-o", "json").stdout)["actuator"]
    assert st["frozen"] == "incident 4711" and st["recommendations"]["pending"] == 1
    assert cli("freeze", "--off", role="admin").returncode == 0
    assert cli("apply", "1").returncode == 0


def test_status_reports_identity_cluster_and_counts(sim, cli):
    p = cli("status", "-o", "json", role=None, mode=None)
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)["actuator"]
    assert st["user"] == "aiops-sim" and st["role"] == "viewer" and st["role_from"] == "default"
    assert st["mode"] == "dry-run" and st["cluster"]["reachable"] is True and st["cluster"]["server"] == sim.url
    assert st["cluster"]["version"].startswith("v1.")
    bound = cli("status", "-o", "json", role=None,
                env={"AIOPS_ACTUATOR__ROLE_BINDINGS": json.dumps({"context:aiops-sim": "operator"})})
    assert json.loads(bound.stdout)["actuator"]["role"] == "operator"


def test_unknown_id_and_bad_files_are_usage_errors(cli, tmp_path):
    p = cli("apply", "42")
    assert p.returncode == 2 and "unknown recommendation '42'" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("- target: {cluster: sim, namespace: shop, kind: Deployment, name: x}\n"
                   "  change: {type: replicas, replicas: -1}\n  reason: r\n  evidence: {source: me}\n")
    p = cli("propose", "-f", str(bad))
    assert p.returncode == 2 and "replicas" in p.stderr and "greater than or equal to 0" in p.stderr
    assert cli("suggestions", "-o", "xml").returncode == 2


def _store(tmp_path):
    return sqlite3.connect(tmp_path / "data" / "state" / "actuator.db")


def _make_records(sim, pool, cli, tmp_path, n: int = 3) -> None:
    w = pool.take()
    props = [proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1 + i)) for i in range(n)]
    assert cli("propose", "-f", _write(tmp_path / "p.yaml", *props), role="developer").returncode == 0
    assert cli("audit", "--verify").returncode == 0


def test_verify_detects_an_edited_record(sim, pool, cli, tmp_path):
    _make_records(sim, pool, cli, tmp_path)
    with _store(tmp_path) as db:
        db.execute("UPDATE audit SET reason = 'nothing to see here' WHERE seq = 2")
    p = cli("audit", "--verify")
    assert p.returncode == 6 and "record 2 was modified" in p.stderr


def test_verify_detects_a_deleted_record_in_the_middle_and_at_the_end(sim, pool, cli, tmp_path):
    _make_records(sim, pool, cli, tmp_path)
    with _store(tmp_path) as db:
        db.execute("DELETE FROM audit WHERE seq = 3")
    p = cli("audit", "--verify", "-o", "json")
    assert p.returncode == 6
    problems = json.loads(p.stdout)["problems"]
    assert any("deleted" in x for x in problems) and any("recommendation 3 refers to audit record 3" in x
                                                         for x in problems)


def test_verify_detects_deleting_the_last_record_even_with_the_recommendation_gone(sim, pool, cli, tmp_path):
    _make_records(sim, pool, cli, tmp_path)
    with _store(tmp_path) as db:
        db.execute("DELETE FROM audit WHERE seq = 3")
        db.execute("DELETE FROM recommendations WHERE id = 3")
    p = cli("audit", "--verify")
    assert p.returncode == 6 and "the last 1 record(s) were deleted" in p.stderr


def test_verify_detects_reordered_records(sim, pool, cli, tmp_path):
    _make_records(sim, pool, cli, tmp_path)
    with _store(tmp_path) as db:  # swap records 1 and 2, keeping the sequence numbers in place
        db.execute("UPDATE audit SET seq = -1 WHERE seq = 1")
        db.execute("UPDATE audit SET seq = 1 WHERE seq = 2")
        db.execute("UPDATE audit SET seq = 2 WHERE seq = -1")
    p = cli("audit", "--verify")
    assert p.returncode == 6
    assert "record 1 does not follow" in p.stderr and "record 1 was modified" in p.stderr


def test_rollback_refuses_an_edited_apply_record(sim, pool, cli, kubectl, tmp_path):
    w = pool.take()
    f = _write(tmp_path / "p.yaml", proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1)))
    assert cli("propose", "-f", f).returncode == 0 and cli("apply", "1").returncode == 0
    with _store(tmp_path) as db:  # make the rollback "restore" 40 replicas
        db.execute("UPDATE audit SET before = '{\"replicas\": 40}' WHERE outcome = 'applied'")
    p = cli("rollback", "1")
    assert p.returncode == 6 and "was modified after it was written" in p.stderr
    assert _replicas(kubectl, w) == w.replicas + 1


def test_node_pool_bounds_through_the_actuator(sim, cli, kubectl, tmp_path):
    from aiops.actuator.recommendation import NodePoolChange, Target

    md = json.loads(kubectl("get", "machinedeployments.cluster.x-k8s.io", "compute", "-n", "default", "-o", "json"))
    ann = md["metadata"]["annotations"]
    lo = int(ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"])
    hi = int(ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"])
    target = Target(cluster="sim", namespace="default", kind="MachineDeployment", name="compute")
    f = _write(tmp_path / "p.yaml", proposal(target, NodePoolChange(min_nodes=lo + 1)))
    assert cli("propose", "-f", f).returncode == 0
    p = cli("apply", "1")
    assert p.returncode == 4 and "opt-in" in p.stderr  # node pools opt in like workloads
    kubectl("annotate", "md", "compute", "-n", "default", "aiops.dev/actuate=true")
    p = cli("apply", "1", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["after"]["min_nodes"] == lo + 1
    md = json.loads(kubectl("get", "md", "compute", "-n", "default", "-o", "json"))
    assert md["metadata"]["annotations"]["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] == str(lo + 1)
    assert sim.live.pool_bounds()["compute"] == (lo + 1, hi)
    assert cli("rollback", "1").returncode == 0
    assert sim.live.pool_bounds()["compute"] == (lo, hi)
