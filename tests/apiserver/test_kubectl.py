"""The real kubectl against the simulated cluster: plain commands, no special flags."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration


def _rows(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def test_get_pods_all_namespaces(kubectl, cluster):
    out = kubectl("get", "pods", "-A").stdout
    rows = _rows(out)
    assert rows[0][:6] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    snap = cluster.live.snapshot()
    assert len(rows) - 1 == len(snap.pods)
    names = {r[1] for r in rows[1:]}
    assert {p.name for p in snap.pods} == names
    assert all(re.fullmatch(r"\d+/\d+", r[2]) for r in rows[1:])


def test_get_deployments_wide(kubectl, cluster):
    ns = cluster.live.spec.namespaces[0]
    rows = _rows(kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    expected = {w.name: w for w in cluster.live.snapshot().workloads if w.namespace == ns}
    assert {r[0] for r in rows[1:]} == set(expected)
    for r in rows[1:]:
        w = expected[r[0]]
        assert r[1] == f"{sum(p.ready for p in cluster.live.snapshot().pods if p.workload == w.name and p.namespace == ns)}/{w.spec_replicas}"
        assert r[5] == w.container and r[6] == w.image and r[7] == f"app={w.name}"


def test_get_nodes(kubectl, cluster):
    rows = _rows(kubectl("get", "nodes").stdout)
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert {r[0] for r in rows[1:]} == {n.name for n in cluster.live.snapshot().nodes}
    assert all(r[1] in ("Ready", "NotReady") and r[4].startswith("v1.") for r in rows[1:])


def test_get_hpa_all_namespaces(kubectl, cluster):
    rows = _rows(kubectl("get", "hpa", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert len(rows) > 1
    for r in rows[1:]:
        assert r[2].startswith("Deployment/")
        assert re.fullmatch(r"cpu: (\d+%|<unknown>)/\d+%", r[3]), r[3]


def test_get_all(kubectl):
    out = kubectl("get", "all", "-A").stdout
    assert "pod/" in out and "deployment.apps/" in out and "replicaset.apps/" in out
    assert "horizontalpodautoscaler.autoscaling/" in out
    assert "error" not in out.lower()


def test_describe_deployment(kubectl, plain):
    ns, name = plain[0]
    out = kubectl("describe", "deployment", name, "-n", ns).stdout
    assert re.search(rf"^Name:\s+{name}$", out, re.M)
    assert re.search(r"^Selector:\s+app=" + name, out, re.M)
    assert re.search(r"^NewReplicaSet:\s+" + name + r"-\w+ \(\d+/\d+ replicas created\)", out, re.M)
    assert "Requests:" in out and "Conditions:" in out


def test_describe_pod_shows_events(kubectl, apps, core, cluster):
    # make something happen: scale a deployment up, so new pods get Scheduled/Pulled/Started events
    ns, name = next((w.namespace, w.name) for w in cluster.live.spec.workloads if w.hpa is None)
    current = apps.read_namespaced_deployment_scale(name, ns).spec.replicas
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": current + 1}})
    cluster.live.advance(2)
    pods = core.list_namespaced_pod(ns, label_selector=f"app={name}").items
    newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
    out = kubectl("describe", "pod", newest.metadata.name, "-n", ns).stdout
    assert re.search(rf"^Name:\s+{newest.metadata.name}$", out, re.M)
    assert f"Controlled By:  ReplicaSet/{newest.metadata.owner_references[0].name}" in out
    events = out.split("\nEvents:", 1)[1]
    assert "Scheduled" in events and "default-scheduler" in events, events


def test_scale_then_simulation_follows(kubectl, apps, plain, cluster):
    ns, name = plain[0]
    out = kubectl("scale", "deployment", name, "-n", ns, "--replicas=5").stdout
    assert f"deployment.apps/{name} scaled" in out
    assert apps.read_namespaced_deployment(name, ns).spec.replicas == 5
    cluster.live.advance(3)
    d = apps.read_namespaced_deployment(name, ns)
    assert d.status.ready_replicas == 5 and d.status.available_replicas == 5
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.ready_replicas == 5
    jp = kubectl("get", "deploy", name, "-n", ns, "-o", "jsonpath={.spec.replicas}/{.status.readyReplicas}").stdout
    assert jp == "5/5"


def test_patch_dry_run_server(kubectl, apps, plain):
    ns, name = plain[1]
    before = apps.read_namespaced_deployment(name, ns)
    ctr = before.spec.template.spec.containers[0].name
    patch = {"spec": {"template": {"spec": {"containers": [{"name": ctr, "image": "registry.local/new:9.9.9"}]}}}}
    out = json.loads(kubectl("patch", "deployment", name, "-n", ns, "-p", json.dumps(patch), "--dry-run=server",
                             "-o", "json").stdout)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/new:9.9.9"
    assert out["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]  # merged, not replaced
    after = apps.read_namespaced_deployment(name, ns)
    assert after.spec.template.spec.containers[0].image == before.spec.template.spec.containers[0].image
    assert after.metadata.resource_version == before.metadata.resource_version
    bad = kubectl("patch", "deployment", name, "-n", ns, "-p", '{"spec":{"replicas":-1}}', "--dry-run=server",
                  check=False)
    assert bad.returncode != 0 and "spec.replicas: Invalid value: -1" in bad.stderr


def test_get_jsonpath_and_yaml(kubectl, plain, apps):
    ns, name = plain[2]
    d = apps.read_namespaced_deployment(name, ns)
    out = kubectl("get", "deploy", name, "-n", ns, "-o",
                  "jsonpath={.metadata.uid} {.spec.template.spec.containers[0].image}").stdout
    assert out == f"{d.metadata.uid} {d.spec.template.spec.containers[0].image}"
    y = kubectl("get", "deploy", name, "-n", ns, "-o", "yaml").stdout
    assert "kind: Deployment" in y and f"name: {name}" in y


def test_get_events_and_errors(kubectl):
    out = kubectl("get", "events", "-A").stdout
    assert _rows(out)[0][:6] == ["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    missing = kubectl("get", "deploy", "no-such-thing", "-n", "shop", check=False)
    assert missing.returncode != 0
    assert 'deployments.apps "no-such-thing" not found' in missing.stderr
    unknown = kubectl("get", "widgets", check=False)
    assert unknown.returncode != 0 and "widgets" in unknown.stderr


def test_raw_metrics(kubectl):
    out = kubectl("get", "--raw", "/metrics").stdout
    assert "# TYPE container_cpu_usage_seconds_total counter" in out
    assert "kube_deployment_spec_replicas{" in out


def test_api_resources_and_version(kubectl):
    out = kubectl("api-resources").stdout
    for line in ("deployments", "horizontalpodautoscalers", "pods", "nodes"):
        assert re.search(rf"^{line}\s", out, re.M), line
    assert "Server Version: v1.32" in kubectl("version").stdout


def test_top_uses_the_metrics_api(kubectl, cluster):
    ns = cluster.live.spec.namespaces[0]
    rows = _rows(kubectl("top", "pods", "-n", ns).stdout)
    assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len(rows) > 1 and all(re.fullmatch(r"\d+m", r[1]) and re.fullmatch(r"\d+Mi", r[2]) for r in rows[1:])
    nodes = _rows(kubectl("top", "nodes").stdout)
    assert nodes[0][:3] == ["NAME", "CPU(cores)", "CPU(%)"] and len(nodes) - 1 == len(cluster.live.snapshot().nodes)


def test_auth_can_i(kubectl):
    assert kubectl("auth", "can-i", "patch", "deployments", "--subresource=scale").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "get", "pods", "-A").stdout.strip() == "yes"
    denied = kubectl("auth", "can-i", "delete", "pods", check=False)
    assert denied.returncode == 1 and denied.stdout.startswith("no")


def test_set_image_autoscale_and_delete_hpa(kubectl, apps, hpa2, plain, cluster):
    ns, name = plain[3]
    kubectl("set", "image", f"deployment/{name}", "-n", ns, "app=registry.local/rolled:2.0")
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.image == "registry.local/rolled:2.0" and w.revision >= 2
    out = kubectl("autoscale", "deployment", name, "-n", ns, "--min=2", "--max=6", "--cpu-percent=70").stdout
    assert f"horizontalpodautoscaler.autoscaling/{name} autoscaled" in out
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa is not None and (w.hpa.min_replicas, w.hpa.max_replicas) == (2, 6)
    assert w.hpa.target_cpu_utilization == pytest.approx(0.7)
    assert "cpu: " in kubectl("get", "hpa", name, "-n", ns).stdout
    kubectl("delete", "hpa", name, "-n", ns)
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa is None


def test_unserved_paths_fail_cleanly(kubectl, plain):
    ns, name = plain[0]
    missing = kubectl("get", "--raw", "/openapi/v2", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    denied = kubectl("delete", "deployment", name, "-n", ns, check=False)
    assert denied.returncode != 0 and "MethodNotAllowed" in denied.stderr
    watched = kubectl("get", "deploy", name, "-n", ns, "--watch", "--request-timeout=2s", check=False)
    assert name in watched.stdout
