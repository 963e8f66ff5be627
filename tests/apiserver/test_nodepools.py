"""Node pools as Cluster API MachineDeployments: read and written through the official client and kubectl.

The session's cluster has two pools, `general` and `compute`. Tests that change a pool's bounds restore the
spec's bounds afterwards (`restore_bounds`); node counts they expect are computed from the cluster as they
find it, so the order of the tests does not matter.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from kubernetes import client

from aiops.errors import AiopsError
from aiops.sim.apiserver.nodepools import MAX_SIZE_ANNOTATION as MAX
from aiops.sim.apiserver.nodepools import MIN_SIZE_ANNOTATION as MIN

pytestmark = pytest.mark.integration

G, V, PLURAL, NS = "cluster.x-k8s.io", "v1beta1", "machinedeployments", "default"


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def restore_bounds(cluster):
    """Put every pool's autoscaler bounds back to the spec's after the test."""
    yield
    for p in cluster.live.spec.node_pools:
        cluster.live.set_pool_bounds(p.name, p.min_nodes, p.max_nodes)


def _pool(cluster, name: str):
    return next(p for p in cluster.live.spec.node_pools if p.name == name)


def _nodes(cluster, pool: str) -> tuple[int, int]:
    """(alive, ready) nodes of `pool` now."""
    nodes = [n for n in cluster.live.snapshot().nodes if n.pool == pool]
    return len(nodes), sum(n.ready for n in nodes)


def _get(custom, name: str) -> dict:
    return custom.get_namespaced_custom_object(G, V, NS, PLURAL, name)


def _bounds_patch(lo: str | None, hi: str | None) -> dict:
    return {"metadata": {"annotations": {MIN: lo, MAX: hi}}}


def _error(exc: client.ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def _rows(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


# --- reads ----------------------------------------------------------------------------------------------------


def test_one_machinedeployment_per_pool(custom, cluster):
    items = custom.list_cluster_custom_object(G, V, PLURAL)["items"]
    assert [m["metadata"]["name"] for m in items] == sorted(p.name for p in cluster.live.spec.node_pools)
    assert custom.list_namespaced_custom_object(G, V, NS, PLURAL)["items"] == items
    assert custom.list_namespaced_custom_object(G, V, "kube-system", PLURAL)["items"] == []
    bounds = cluster.live.pool_bounds()
    for pool in cluster.live.spec.node_pools:
        md = _get(custom, pool.name)
        assert md["kind"] == "MachineDeployment" and md["apiVersion"] == "cluster.x-k8s.io/v1beta1"
        assert md["metadata"]["namespace"] == NS
        ann, spec, st = md["metadata"]["annotations"], md["spec"], md["status"]
        assert (int(ann[MIN]), int(ann[MAX])) == bounds[pool.name]
        alive, ready = _nodes(cluster, pool.name)
        assert spec["clusterName"] == spec["template"]["spec"]["clusterName"] == "sim"
        assert spec["replicas"] == alive and st["replicas"] == alive and st["readyReplicas"] == ready
        assert spec["template"]["spec"]["infrastructureRef"]["name"] == pool.instance_type
        assert spec["template"]["metadata"]["labels"]["node.kubernetes.io/instance-type"] == pool.instance_type
        assert spec["template"]["spec"]["version"].startswith("v1.")
        assert spec["selector"]["matchLabels"]["cluster.x-k8s.io/deployment-name"] == pool.name
        assert st["phase"] == ("Running" if ready == alive else "ScalingUp")
        scale = custom.get_namespaced_custom_object_scale(G, V, NS, PLURAL, pool.name)
        assert scale["spec"]["replicas"] == alive and scale["status"]["selector"] == st["selector"]
    with pytest.raises(client.ApiException) as exc:
        _get(custom, "no-such-pool")
    assert exc.value.status == 404
    assert _error(exc.value)["message"] == 'machinedeployments.cluster.x-k8s.io "no-such-pool" not found'


def test_kubectl_lists_and_prints_yaml(kubectl, cluster):
    rows = _rows(kubectl("get", "md", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "CLUSTER", "REPLICAS", "READY", "UPDATED", "UNAVAILABLE", "PHASE", "AGE",
                       "VERSION"]
    assert [r[1] for r in rows[1:]] == sorted(p.name for p in cluster.live.spec.node_pools)
    for r in rows[1:]:
        alive, ready = _nodes(cluster, r[1])
        assert r[0] == NS and r[2] == "sim" and (int(r[3]), int(r[4])) == (alive, ready)
        assert r[7] in ("Running", "ScalingUp", "ScalingDown") and r[9].startswith("v1.")
    wide = _rows(kubectl("get", "md", "-n", NS, "-o", "wide").stdout)
    assert wide[0][:3] == ["NAME", "CLUSTER", "DESIRED"]
    doc = yaml.safe_load(kubectl("get", "machinedeployments.cluster.x-k8s.io", "-n", NS, "-o", "yaml").stdout)
    assert [m["metadata"]["name"] for m in doc["items"]] == [r[1] for r in rows[1:]]
    assert all(set(m["metadata"]["annotations"]) >= {MIN, MAX} for m in doc["items"])
    resources = kubectl("api-resources", "--api-group=cluster.x-k8s.io").stdout
    assert re.search(r"^machinedeployments\s+md\s+cluster\.x-k8s\.io/v1beta1\s+true\s+MachineDeployment", resources,
                     re.M)


# --- writes ---------------------------------------------------------------------------------------------------


def test_merge_patch_sets_bounds_and_kubectl_reads_them_back(custom, kubectl, cluster, restore_bounds):
    before = _get(custom, "general")
    alive, _ = _nodes(cluster, "general")
    hi = max(alive, _pool(cluster, "general").max_nodes - 1)
    out = custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", _bounds_patch("1", str(hi)))
    assert out["metadata"]["annotations"][MAX] == str(hi)
    assert int(out["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert cluster.live.pool_bounds()["general"] == (1, hi)
    got = kubectl("get", "md", "general", "-n", NS, "-o",
                  r"jsonpath={.metadata.annotations.cluster\.x-k8s\.io/cluster-api-autoscaler-node-group-max-size}")
    assert got.stdout == str(hi)
    cluster.live.advance(1)  # survives re-materialisation
    assert _get(custom, "general")["metadata"]["annotations"][MAX] == str(hi)


def test_dry_run_changes_nothing(custom, cluster, restore_bounds):
    before = _get(custom, "compute")
    bounds = cluster.live.pool_bounds()["compute"]
    alive, _ = _nodes(cluster, "compute")
    top = _pool(cluster, "compute").max_nodes
    out = custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "compute", _bounds_patch(str(top), str(top)),
                                                dry_run="All")
    assert out["metadata"]["annotations"][MIN] == str(top) and out["spec"]["replicas"] == top
    assert out["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert cluster.live.pool_bounds()["compute"] == bounds
    cluster.live.advance(1)
    assert _nodes(cluster, "compute")[0] == alive
    after = _get(custom, "compute")
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]


def test_stale_resource_version_is_a_conflict(custom, cluster, restore_bounds):
    old = _get(custom, "general")
    custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", {"metadata": {"labels": {"team": "infra"}}})
    fresh = _get(custom, "general")
    assert fresh["metadata"]["labels"]["team"] == "infra"
    assert fresh["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
    stale = {"metadata": {"resourceVersion": old["metadata"]["resourceVersion"], "annotations": {MIN: "2"}}}
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", stale)
    assert exc.value.status == 409 and _error(exc.value)["reason"] == "Conflict"
    with pytest.raises(client.ApiException) as exc:
        custom.replace_namespaced_custom_object(G, V, NS, PLURAL, "general", old)
    assert exc.value.status == 409
    assert cluster.live.pool_bounds()["general"] == (int(old["metadata"]["annotations"][MIN]),
                                                     int(old["metadata"]["annotations"][MAX]))
    # an update (PUT) of the current version applies; one without a resourceVersion is refused, as for any CRD
    fresh["metadata"]["annotations"][MAX] = str(_pool(cluster, "general").max_nodes)
    custom.replace_namespaced_custom_object(G, V, NS, PLURAL, "general", fresh)
    del fresh["metadata"]["resourceVersion"]
    with pytest.raises(client.ApiException) as exc:
        custom.replace_namespaced_custom_object(G, V, NS, PLURAL, "general", fresh)
    assert exc.value.status == 422 and _error(exc.value)["details"]["causes"][0]["field"] == "metadata.resourceVersion"


@pytest.mark.parametrize(("lo", "hi", "field", "words"), [
    ("two", "5", MIN, "whole number"),
    ("-1", "5", MIN, "greater than or equal to 0"),
    ("4", "3", MIN, "less than or equal to the max-size annotation (3)"),
    ("1", "99", MAX, "slot capacity"),
    (None, "5", MIN, "Required value"),
])
def test_invalid_bounds_are_422_naming_the_field(custom, cluster, lo, hi, field, words):
    before = cluster.live.pool_bounds()
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", _bounds_patch(lo, hi))
    body = _error(exc.value)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    causes = {c["field"]: c["message"] for c in body["details"]["causes"]}
    assert words in causes[f"metadata.annotations[{field}]"]
    if field == MAX:
        assert "max_nodes" in causes[f"metadata.annotations[{field}]"]
    assert cluster.live.pool_bounds() == before


def test_bounds_must_be_strings(custom, cluster):
    before = cluster.live.pool_bounds()
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", {"metadata": {"annotations": {MIN: 2}}})
    assert exc.value.status == 400 and 'write "3", not 3' in _error(exc.value)["message"]
    assert cluster.live.pool_bounds() == before


def test_fixed_spec_fields_are_422(custom):
    cases = [("spec.clusterName", {"clusterName": "other"}, "field is immutable"),
             ("spec.template.spec.version", {"template": {"spec": {"version": "v1.31.0"}}}, "does not upgrade"),
             ("spec.template.spec.infrastructureRef.name",
              {"template": {"spec": {"infrastructureRef": {"name": "m5.large"}}}}, "instance type"),
             ("spec.strategy.type", {"strategy": {"type": "OnDelete"}}, "fixes this field")]
    for field, spec, words in cases:
        with pytest.raises(client.ApiException) as exc:
            custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", {"spec": spec})
        causes = _error(exc.value)["details"]["causes"]
        assert exc.value.status == 422 and [c["field"] for c in causes] == [field]
        assert words in causes[0]["message"]


def test_strategic_merge_patch_is_refused_as_for_any_custom_resource(custom, kubectl):
    with pytest.raises(client.ApiException) as exc:
        custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", {"metadata": {"labels": {"x": "y"}}},
                                              _content_type="application/strategic-merge-patch+json")
    assert exc.value.status == 415 and _error(exc.value)["reason"] == "UnsupportedMediaType"
    proc = kubectl("patch", "md", "general", "-n", NS, "-p", '{"metadata":{"labels":{"x":"y"}}}', check=False)
    assert proc.returncode != 0
    assert "application/strategic-merge-patch+json is not supported by cluster.x-k8s.io/v1beta1, " \
           "Kind=MachineDeployment" in proc.stderr
    assert "x" not in (_get(custom, "general")["metadata"].get("labels") or {})


def test_replicas_belong_to_the_autoscaler(custom, kubectl, cluster):
    alive, _ = _nodes(cluster, "compute")
    bounds = cluster.live.pool_bounds()
    asked = alive + 2
    proc = kubectl("patch", "md", "compute", "-n", NS, "--type=merge", "-p", json.dumps({"spec": {"replicas": asked}}))
    assert "Warning:" in proc.stderr and "the autoscaler owns spec.replicas" in proc.stderr
    proc = kubectl("scale", "md", "compute", "-n", NS, f"--replicas={asked}")
    assert "not applied" in proc.stderr
    assert _get(custom, "compute")["spec"]["replicas"] == _nodes(cluster, "compute")[0] == alive
    assert cluster.live.pool_bounds() == bounds


def test_pool_grows_to_the_new_min_and_status_follows(custom, kubectl, cluster, restore_bounds):
    pool = _pool(cluster, "compute")
    alive, _ = _nodes(cluster, "compute")
    target = min(alive + 2, pool.max_nodes)
    out = custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "compute",
                                                _bounds_patch(str(target), str(pool.max_nodes)))
    assert out["spec"]["replicas"] == target and out["status"]["phase"] == "ScalingUp"
    assert _nodes(cluster, "compute")[0] == alive  # applied from the next step
    cluster.live.advance(1)
    assert _nodes(cluster, "compute") == (target, alive)  # the new nodes are provisioning
    md = _get(custom, "compute")
    assert (md["status"]["replicas"], md["status"]["readyReplicas"], md["status"]["phase"]) == \
        (target, alive, "ScalingUp")
    ready_cond = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert ready_cond["status"] == "False" and ready_cond["reason"] == "WaitingForAvailableMachines"
    cluster.live.advance(int(pool.provisioning_delay_s // cluster.live.step_s) + 1)
    assert _nodes(cluster, "compute") == (target, target)
    row = _rows(kubectl("get", "md", "compute", "-n", NS).stdout)[1]
    assert row[2:4] == [str(target), str(target)] and row[6] == "Running"
    events = client.CoreV1Api(custom.api_client).list_namespaced_event(NS).items
    assert any(e.reason == "ScaledUpGroup" and e.involved_object.kind == "MachineDeployment"
               and e.involved_object.uid == md["metadata"]["uid"] for e in events)


def test_lowering_max_drains_nodes(custom, cluster, restore_bounds):
    alive, _ = _nodes(cluster, "general")
    out = custom.patch_namespaced_custom_object(G, V, NS, PLURAL, "general", _bounds_patch("1", "1"))
    assert out["spec"]["replicas"] == 1
    assert out["status"]["phase"] == ("ScalingDown" if alive > 1 else "Running")
    cluster.live.advance(1)
    assert _nodes(cluster, "general")[0] == 1
    assert _get(custom, "general")["status"]["replicas"] == 1


def test_live_cluster_checks_bounds(cluster):
    with pytest.raises(AiopsError, match="no node pool 'gpu'; known"):
        cluster.live.set_pool_bounds("gpu", 1, 2)
    with pytest.raises(AiopsError, match="slot capacity"):
        cluster.live.set_pool_bounds("general", 1, _pool(cluster, "general").max_nodes + 1)
    with pytest.raises(AiopsError, match="min_nodes"):
        cluster.live.set_pool_bounds("general", 3, 2)
