"""The official `kubernetes` client against the simulated cluster, over real HTTP."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch


def _status(exc: client.ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


# --- reads ----------------------------------------------------------------------------------------------------


def test_lists_across_and_per_namespace(core, apps, cluster):
    spec = cluster.live.spec
    all_pods = core.list_pod_for_all_namespaces().items
    assert {p.metadata.namespace for p in all_pods} == set(spec.namespaces)
    shop = core.list_namespaced_pod("shop").items
    assert shop and all(p.metadata.namespace == "shop" for p in shop)
    assert len(shop) < len(all_pods)
    deploys = apps.list_deployment_for_all_namespaces().items
    assert sorted((d.metadata.namespace, d.metadata.name) for d in deploys) == \
        sorted((w.namespace, w.name) for w in spec.workloads)
    ns_names = {n.metadata.name for n in core.list_namespace().items}
    assert set(spec.namespaces) | {"default", "kube-system"} <= ns_names
    assert core.list_namespaced_pod("no-such-namespace").items == []
    # kinds the simulator has none of list empty (so `kubectl get all` works)
    assert apps.list_stateful_set_for_all_namespaces().items == []
    assert apps.list_daemon_set_for_all_namespaces().items == []
    assert client.BatchV1Api(core.api_client).list_job_for_all_namespaces().items == []


def test_list_pagination(core):
    everything = [p.metadata.name for p in core.list_pod_for_all_namespaces().items]
    pages, token = [], None
    while True:
        page = core.list_pod_for_all_namespaces(limit=7, _continue=token)
        pages.append([p.metadata.name for p in page.items])
        token = page.metadata.var_continue
        if not token:
            break
    assert len(pages) > 1 and all(len(p) <= 7 for p in pages)
    assert [n for p in pages for n in p] == everything


def test_nodes_look_real(core, cluster):
    nodes = core.list_node().items
    assert len(nodes) == len(cluster.live.snapshot().nodes)
    n = nodes[0]
    labels = n.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] in {t.name for t in cluster.live.spec.instance_types}
    assert labels["topology.kubernetes.io/zone"].startswith("sim-1")
    assert labels["eks.amazonaws.com/nodegroup"] in {p.name for p in cluster.live.spec.node_pools}
    conds = {c.type: c.status for c in n.status.conditions}
    assert conds["Ready"] == "True" and conds["DiskPressure"] in ("True", "False")
    assert n.status.capacity["cpu"] and n.status.allocatable["memory"].endswith("i")
    assert n.status.node_info.kubelet_version.startswith("v1.")


def test_label_selectors(core):
    pods = core.list_pod_for_all_namespaces().items
    apps_ = {p.metadata.labels["app"] for p in pods}
    one = sorted(apps_)[0]
    eq = core.list_pod_for_all_namespaces(label_selector=f"app={one}").items
    assert eq and {p.metadata.labels["app"] for p in eq} == {one}
    assert len(core.list_pod_for_all_namespaces(label_selector=f"app=={one}").items) == len(eq)
    neq = core.list_pod_for_all_namespaces(label_selector=f"app!={one}").items
    assert len(neq) + len(eq) == len(pods)
    two = sorted(apps_)[:2]
    inset = core.list_pod_for_all_namespaces(label_selector=f"app in ({two[0]}, {two[1]})").items
    assert {p.metadata.labels["app"] for p in inset} == set(two)
    notin = core.list_pod_for_all_namespaces(label_selector=f"app notin ({two[0]},{two[1]})").items
    assert len(notin) + len(inset) == len(pods)
    assert len(core.list_pod_for_all_namespaces(label_selector="pod-template-hash").items) == len(pods)
    assert core.list_pod_for_all_namespaces(label_selector="!pod-template-hash").items == []
    with pytest.raises(client.ApiException) as exc:
        core.list_pod_for_all_namespaces(label_selector="app in ()")
    assert exc.value.status == 400 and _status(exc.value)["reason"] == "BadRequest"


def test_field_selectors(core):
    pods = core.list_pod_for_all_namespaces().items
    p = pods[0]
    by_name = core.list_pod_for_all_namespaces(field_selector=f"metadata.name={p.metadata.name}").items
    assert [x.metadata.uid for x in by_name] == [p.metadata.uid]
    on_node = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={p.spec.node_name}").items
    assert on_node and all(x.spec.node_name == p.spec.node_name for x in on_node)
    running = core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
    assert all(x.status.phase == "Running" for x in running)
    not_running = core.list_pod_for_all_namespaces(field_selector="status.phase!=Running").items
    assert len(running) + len(not_running) == len(pods)
    with pytest.raises(client.ApiException) as exc:
        core.list_pod_for_all_namespaces(field_selector="spec.foo=bar")
    assert exc.value.status == 400 and "field label not supported: spec.foo" in _status(exc.value)["message"]


def test_owner_references_chain_matches_selectors(core, apps):
    deploys = {(d.metadata.namespace, d.metadata.name): d for d in apps.list_deployment_for_all_namespaces().items}
    rss = {(r.metadata.namespace, r.metadata.name): r for r in apps.list_replica_set_for_all_namespaces().items}
    pods = core.list_pod_for_all_namespaces().items
    assert pods
    for p in pods:
        (ref,) = p.metadata.owner_references
        assert ref.kind == "ReplicaSet" and ref.controller is True
        rs = rss[(p.metadata.namespace, ref.name)]
        assert ref.uid == rs.metadata.uid
        assert all(p.metadata.labels.get(k) == v for k, v in rs.spec.selector.match_labels.items())
        (dref,) = rs.metadata.owner_references
        assert dref.kind == "Deployment" and dref.controller is True
        d = deploys[(p.metadata.namespace, dref.name)]
        assert dref.uid == d.metadata.uid
        assert all(p.metadata.labels.get(k) == v for k, v in d.spec.selector.match_labels.items())
        assert int(rs.metadata.annotations["deployment.kubernetes.io/revision"]) <= \
            int(d.metadata.annotations["deployment.kubernetes.io/revision"])
    for d in deploys.values():
        assert d.status.observed_generation == d.metadata.generation
        mine = core.list_namespaced_pod(d.metadata.namespace, label_selector=f"app={d.metadata.name}").items
        assert len(mine) == d.status.replicas


def test_read_deployment_and_scale(apps, plain):
    ns, name = plain[0]
    d = apps.read_namespaced_deployment(name, ns)
    s = apps.read_namespaced_deployment_scale(name, ns)
    assert s.kind == "Scale" and s.spec.replicas == d.spec.replicas
    assert s.status.selector == f"app={name}"
    assert s.metadata.resource_version == d.metadata.resource_version and s.metadata.uid == d.metadata.uid
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert {c.type for c in d.status.conditions} == {"Available", "Progressing"}


def test_hpa_in_both_versions(hpa1, hpa2, autoscaled):
    ns, name = autoscaled[0]
    v2 = hpa2.read_namespaced_horizontal_pod_autoscaler(name, ns)
    v1 = hpa1.read_namespaced_horizontal_pod_autoscaler(name, ns)
    assert v2.spec.scale_target_ref.name == v1.spec.scale_target_ref.name == name
    assert v2.spec.metrics[0].resource.target.average_utilization == v1.spec.target_cpu_utilization_percentage
    assert v2.metadata.uid == v1.metadata.uid
    assert v2.spec.behavior.scale_down.stabilization_window_seconds == 300
    assert len(hpa2.list_horizontal_pod_autoscaler_for_all_namespaces().items) == \
        len(hpa1.list_horizontal_pod_autoscaler_for_all_namespaces().items) >= 4


# --- errors ---------------------------------------------------------------------------------------------------


def test_not_found_object_and_resource(core, apps, api_client):
    with pytest.raises(client.ApiException) as exc:
        apps.read_namespaced_deployment("no-such-deploy", "shop")
    body = _status(exc.value)
    assert exc.value.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "no-such-deploy" not found'
    assert body["details"] == {"name": "no-such-deploy", "group": "apps", "kind": "deployments"}
    custom = client.CustomObjectsApi(api_client)
    for group in ("apps", "example.com"):  # an unknown resource in a served group, and an unknown group
        with pytest.raises(client.ApiException) as exc:
            custom.list_namespaced_custom_object(group, "v1", "shop", "widgets")
        body = _status(exc.value)
        assert exc.value.status == 404 and body["reason"] == "NotFound"
        assert body["message"] == "the server could not find the requested resource"


def test_invalid_replicas_422(apps, plain):
    ns, name = plain[1]
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment(name, ns, {"spec": {"replicas": -3}})
    body = _status(exc.value)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    assert "must be greater than or equal to 0" in body["message"]


def test_conflict_on_stale_resource_version(apps, plain, cluster):
    ns, name = plain[1]
    stale = apps.read_namespaced_deployment(name, ns)
    cluster.live.advance(1)
    apps.patch_namespaced_deployment(name, ns, {"metadata": {"labels": {"touched": "yes"}}})
    fresh = apps.read_namespaced_deployment(name, ns)
    assert fresh.metadata.resource_version != stale.metadata.resource_version
    assert fresh.metadata.labels["touched"] == "yes"
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment(
            name, ns, {"metadata": {"resourceVersion": stale.metadata.resource_version}, "spec": {"replicas": 1}})
    body = _status(exc.value)
    assert exc.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    stale.spec.replicas = 1
    with pytest.raises(client.ApiException) as exc:
        apps.replace_namespaced_deployment(name, ns, stale)
    assert exc.value.status == 409
    # with the current resourceVersion the same write goes through
    fresh.spec.replicas = fresh.spec.replicas + 1
    out = apps.replace_namespaced_deployment(name, ns, fresh)
    assert out.spec.replicas == fresh.spec.replicas
    assert out.metadata.generation == fresh.metadata.generation + 1


def test_unsupported_media_type_and_method(api_client, plain):
    ns, name = plain[0]
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
    resp = api_client.call_api(*api_client.param_serialize(
        "PATCH", path, header_params={"Content-Type": "text/plain"}, body="{}"))
    resp.read()
    assert resp.status == 415 and json.loads(resp.data)["reason"] == "UnsupportedMediaType"
    resp = api_client.call_api(*api_client.param_serialize("DELETE", path))
    resp.read()
    assert resp.status == 405 and json.loads(resp.data)["reason"] == "MethodNotAllowed"


# --- writes reach the simulation --------------------------------------------------------------------------------


def test_patch_scale_merge_and_strategic(apps, plain, cluster):
    ns, name = plain[2]
    before = apps.read_namespaced_deployment(name, ns)
    out = apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 4}})  # strategic merge
    assert out.spec.replicas == 4
    out = apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 5}},
                                                 _content_type="application/merge-patch+json")
    assert out.spec.replicas == 5
    d = apps.read_namespaced_deployment(name, ns)
    assert d.spec.replicas == 5
    assert int(d.metadata.resource_version) > int(before.metadata.resource_version)
    assert d.metadata.generation > before.metadata.generation
    cluster.live.advance(3)
    d = apps.read_namespaced_deployment(name, ns)
    assert d.status.replicas == 5 and d.status.ready_replicas == 5
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.spec_replicas == 5 and w.ready_replicas == 5


def test_json_patch_scale(apps, plain):
    ns, name = plain[3]
    out = apps.patch_namespaced_deployment(name, ns, [{"op": "replace", "path": "/spec/replicas", "value": 1}])
    assert out.spec.replicas == 1
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment(name, ns, [{"op": "test", "path": "/spec/replicas", "value": 7}])
    assert exc.value.status == 422


def test_patch_resources_dry_run_changes_nothing(apps, plain, cluster):
    ns, name = plain[4]
    before = apps.read_namespaced_deployment(name, ns)
    ctr = before.spec.template.spec.containers[0]
    new_mem = "999Mi"
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": ctr.name, "resources": {"requests": {"memory": new_mem}, "limits": {"memory": "2Gi"}}}]}}}}
    out = apps.patch_namespaced_deployment(name, ns, patch, dry_run="All")
    assert out.spec.template.spec.containers[0].resources.requests["memory"] == new_mem
    assert out.spec.template.spec.containers[0].resources.limits["memory"] == "2Gi"
    assert out.spec.template.spec.containers[0].image == ctr.image  # strategic merge kept the rest
    after = apps.read_namespaced_deployment(name, ns)
    assert after.spec.template.spec.containers[0].resources.requests["memory"] == ctr.resources.requests["memory"]
    assert after.metadata.resource_version == before.metadata.resource_version
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.resources.memory_request != 999 * 2**20
    # for real: a new revision and ReplicaSet, rolled out by the simulation
    out = apps.patch_namespaced_deployment(name, ns, patch)
    assert out.spec.template.spec.containers[0].resources.requests["memory"] == new_mem
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.resources.memory_request == 999 * 2**20 and w.revision == 2
    cluster.live.advance(10)
    d = apps.read_namespaced_deployment(name, ns)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    rss = apps.list_namespaced_replica_set(ns, label_selector=f"app={name}").items
    assert len(rss) == 2
    assert {r.metadata.annotations["deployment.kubernetes.io/revision"] for r in rss} == {"1", "2"}


def test_patch_hpa_spec_reaches_engine(hpa2, hpa1, autoscaled, cluster):
    ns, name = autoscaled[1]
    out = hpa2.patch_namespaced_horizontal_pod_autoscaler(name, ns, {"spec": {"maxReplicas": 7, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 55}}}]}})
    assert out.spec.max_replicas == 7
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa.max_replicas == 7 and w.hpa.target_cpu_utilization == pytest.approx(0.55)
    v1 = hpa1.patch_namespaced_horizontal_pod_autoscaler(name, ns, {"spec": {"targetCPUUtilizationPercentage": 65}})
    assert v1.spec.target_cpu_utilization_percentage == 65 and v1.spec.max_replicas == 7
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa.target_cpu_utilization == pytest.approx(0.65)
    with pytest.raises(client.ApiException) as exc:
        hpa2.patch_namespaced_horizontal_pod_autoscaler(name, ns, {"spec": {"minReplicas": 9, "maxReplicas": 3}})
    assert exc.value.status == 422 and _status(exc.value)["details"]["causes"][0]["field"] == "spec.maxReplicas"


def test_hpa_delete_and_create(hpa2, autoscaled, cluster):
    ns, name = autoscaled[2]
    hpa2.delete_namespaced_horizontal_pod_autoscaler(name, ns)
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa is None
    with pytest.raises(client.ApiException) as exc:
        hpa2.read_namespaced_horizontal_pod_autoscaler(name, ns)
    assert exc.value.status == 404
    body = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"{name}-hpa"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 2, "maxReplicas": 5}}
    created = hpa2.create_namespaced_horizontal_pod_autoscaler(ns, body)
    assert created.metadata.name == f"{name}-hpa" and created.spec.metrics[0].resource.target.average_utilization == 80
    w = next(w for w in cluster.live.snapshot().workloads if (w.namespace, w.name) == (ns, name))
    assert w.hpa is not None and w.hpa.max_replicas == 5
    with pytest.raises(client.ApiException) as exc:
        hpa2.create_namespaced_horizontal_pod_autoscaler(ns, body)
    assert exc.value.status == 409 and _status(exc.value)["reason"] == "AlreadyExists"


def test_events_from_the_simulation(core, apps, plain, cluster):
    ns, name = plain[2]
    current = apps.read_namespaced_deployment_scale(name, ns).spec.replicas
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": current + 1}})
    cluster.live.advance(2)
    d = apps.read_namespaced_deployment(name, ns)
    evs = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Deployment,"
                                                        f"involvedObject.uid={d.metadata.uid}").items
    assert any(e.reason == "ScalingReplicaSet" for e in evs), [e.reason for e in evs]
    e = evs[0]
    assert e.involved_object.uid == d.metadata.uid and e.source.component == "deployment-controller"
    assert e.count >= 1 and e.first_timestamp <= e.last_timestamp
    pod = core.list_namespaced_pod(ns, label_selector=f"app={name}").items[0]
    pod_events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert all(x.involved_object.uid == pod.metadata.uid for x in pod_events)


def test_watch_streams_changes(core, plain, cluster, apps):
    ns, name = plain[3]
    w = watch.Watch()
    seen = []
    for ev in w.stream(apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}",
                       timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 1:
            apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 2}})
    assert seen[0] == ("ADDED", name)
    assert ("MODIFIED", name) in seen
