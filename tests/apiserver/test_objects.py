"""The object layer without HTTP: patches, selectors, quantities, and the store over hand-made snapshots."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from aiops.sim.apiserver.errors import ApiError
from aiops.sim.apiserver.patch import json_merge_patch, json_patch, strategic_merge_patch
from aiops.sim.apiserver.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from aiops.sim.apiserver.store import Store
from aiops.sim.apiserver.units import age, cpu_quantity, memory_quantity, parse_quantity
from aiops.sim.live import LiveCluster
from aiops.sim.spec import ClusterSpec, InstanceType, NodePoolSpec, Resources, WorkloadSpec
from aiops.sim.state import LATENCY_BUCKETS_S, NodeState, PodState, SimEvent, Snapshot, WorkloadState

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)

# --- patches ----------------------------------------------------------------------------------------------------

DEPLOY = {"spec": {"template": {"spec": {"containers": [
    {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
    {"name": "sidecar", "image": "s:1"}]}}}}


def _containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_strategic_merge_by_name_and_port():
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
         "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}]}]}}}}
    out = strategic_merge_patch(DEPLOY, patch)
    app, sidecar = _containers(out)
    assert app["image"] == "a:1" and sidecar == {"name": "sidecar", "image": "s:1"}
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 9090}]
    assert _containers(DEPLOY)[0]["env"][1]["value"] == "2"  # the input is not changed


def test_strategic_merge_directives():
    out = strategic_merge_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c["name"] for c in _containers(out)] == ["app"]
    out = strategic_merge_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}}})
    assert _containers(out) == [{"name": "only", "image": "o:1"}]
    out = strategic_merge_patch(DEPLOY, {"spec": {"template": {"spec": {"$patch": "replace", "containers": []}}}})
    assert out["spec"]["template"]["spec"] == {"containers": []}
    out = strategic_merge_patch({"metadata": {"labels": {"a": "1", "b": "2"}}}, {"metadata": {"labels": {"a": None}}})
    assert out == {"metadata": {"labels": {"b": "2"}}}
    with pytest.raises(ApiError) as exc:
        strategic_merge_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert exc.value.code == 400


def test_merge_patch_replaces_lists_and_deletes_nulls():
    out = json_merge_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}})
    assert _containers(out) == [{"name": "x"}]
    assert json_merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"c": None}, "d": 3}) == {"a": 1, "b": {}, "d": 3}


def test_json_patch_ops():
    doc = {"spec": {"replicas": 2, "list": [1, 2]}}
    out = json_patch(doc, [{"op": "replace", "path": "/spec/replicas", "value": 5},
                           {"op": "add", "path": "/spec/list/-", "value": 3},
                           {"op": "remove", "path": "/spec/list/0"},
                           {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
                           {"op": "test", "path": "/spec/copy", "value": 5}])
    assert out == {"spec": {"replicas": 5, "list": [2, 3], "copy": 5}} and doc["spec"]["replicas"] == 2
    with pytest.raises(ApiError) as exc:
        json_patch(doc, [{"op": "replace", "path": "/spec/missing", "value": 1}])
    assert exc.value.code == 422


# --- selectors and quantities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("selector, expected", [
    ("app=web", True), ("app==web", True), ("app!=web", False), ("tier in (a, b)", True),
    ("tier notin (a,b)", False), ("tier", True), ("!tier", False), ("missing!=x", True), ("!missing", True),
    ("app=web,tier in (b)", True), ("app=web,tier in (c)", False),
])
def test_label_selector(selector, expected):
    assert labels_match(parse_label_selector(selector), {"app": "web", "tier": "b"}) is expected


def test_field_selector():
    ev = {"metadata": {"name": "e1", "namespace": "ns"}, "involvedObject": {"kind": "Node", "name": "n1"},
          "source": {"component": "kubelet"}}
    assert fields_match(parse_field_selector("involvedObject.kind=Node,involvedObject.name=n1", "events"), ev)
    assert fields_match(parse_field_selector("involvedObject.namespace=", "events"), ev)
    assert fields_match(parse_field_selector("source=kubelet,metadata.name!=e2", "events"), ev)
    assert not fields_match(parse_field_selector("involvedObject.kind!=Node", "events"), ev)
    with pytest.raises(ApiError):
        parse_field_selector("spec.nodeName=x", "events")


def test_quantities():
    assert [parse_quantity(q) for q in ("250m", "1", "0.5", "1Gi", "128974848", "1e3", "1k", 2)] == \
        [0.25, 1.0, 0.5, 2**30, 128974848.0, 1000.0, 1000.0, 2.0]
    assert cpu_quantity(0.25) == "250m" and cpu_quantity(2.0) == "2"
    assert memory_quantity(256 * 2**20) == "256Mi" and memory_quantity(1e9) == "1G" and memory_quantity(1001) == "1001"
    with pytest.raises(ValueError):
        parse_quantity("12 cores")
    assert [age(s) for s in (5, 150, 3600 * 5 + 60 * 3, 86400 * 3)] == ["5s", "2m30s", "5h3m", "3d"]


# --- the store over hand-made snapshots -------------------------------------------------------------------------

RES = Resources(cpu_request=0.25, cpu_limit=0.5, memory_request=256 * 2**20, memory_limit=512 * 2**20)
SPEC = ClusterSpec(
    name="t", namespaces=("shop",),
    instance_types=(InstanceType(name="m5.large", cpu_cores=2, memory_bytes=8 * 2**30, price_per_hour=0.1),),
    node_pools=(NodePoolSpec(name="general", instance_type="m5.large", initial_nodes=1),),
    workloads=(WorkloadSpec(name="web", namespace="shop", node_pool="general", resources=RES),))


def _pod(name: str, rs: str, *, ready: bool = True, restarts: int = 0, last: str | None = None) -> PodState:
    return PodState(name=name, namespace="shop", workload="web", replicaset=rs, container="app", node="node-a",
                    phase="Running", ready=ready, created=T0 - timedelta(hours=1), started=T0 - timedelta(minutes=59),
                    restarts=restarts, waiting_reason=None, last_terminated_reason=last, resources=RES, cpu_cores=0.1,
                    cpu_usage_seconds_total=10.0, cfs_periods_total=0.0, cfs_throttled_periods_total=0.0,
                    memory_working_set_bytes=100e6, labels={"app": "web"})


def _workload(rs: str, revision: int, replicas: int, ready: int) -> WorkloadState:
    return WorkloadState(namespace="shop", name="web", container="app", revision=revision, replicaset=rs,
                         spec_replicas=replicas, ready_replicas=ready, resources=RES, hpa=None,
                         hpa_desired_replicas=None, hpa_current_utilization=None, request_rate=1.0, requests_total=1.0,
                         latency_p99_s=0.1, latency_bucket_counts=(0.0,) * (len(LATENCY_BUCKETS_S) + 1),
                         latency_sum_s=0.0, labels={}, annotations={}, image="registry.local/web:1")


NODE = NodeState(name="node-a", pool="general", instance_type="m5.large", cpu_cores=2, memory_bytes=8 * 2**30,
                 price_per_hour=0.1, created=T0 - timedelta(days=1), ready=True, conditions={"DiskPressure": False})


class FakeEngine:
    """Plays back hand-made snapshots, one per step."""

    def __init__(self, spec, *, start, step_s, seed):
        self.start, self.step_s, self.t = start, step_s, 0
        self.events: list[SimEvent] = []
        self.frames: list[Snapshot] = []

    @property
    def now(self):
        return self.start + timedelta(seconds=self.t * self.step_s)

    def step(self, n: int = 1) -> None:
        self.t += n

    def snapshot(self) -> Snapshot:
        return dataclasses.replace(self.frames[min(self.t, len(self.frames) - 1)], time=self.now, step=self.t)


def test_store_resource_versions_generations_and_replicasets():
    live = LiveCluster(SPEC, start=T0, speed=0, engine_factory=FakeEngine)
    eng = live.engine
    snap0 = Snapshot(T0, 0, (_workload("web-aaaa", 1, 2, 2),), (_pod("web-aaaa-1", "web-aaaa"),
                                                                 _pod("web-aaaa-2", "web-aaaa")), (NODE,))
    # step 1: nothing changes; step 2: a rollout to revision 2 (one new pod, one old left); step 3: done
    snap2 = dataclasses.replace(snap0, workloads=(_workload("web-bbbb", 2, 2, 2),),
                                pods=(_pod("web-aaaa-1", "web-aaaa"), _pod("web-bbbb-1", "web-bbbb")))
    snap3 = dataclasses.replace(snap0, workloads=(_workload("web-bbbb", 2, 2, 2),),
                                pods=(_pod("web-bbbb-1", "web-bbbb"), _pod("web-bbbb-2", "web-bbbb", restarts=1,
                                                                           last="OOMKilled")))
    eng.frames = [snap0, snap0, snap2, snap3]
    eng.events.append(SimEvent(T0, "shop", "Pod", "web-aaaa-1", "Pulled", "pulled", "Normal"))
    store = Store(live, cluster="t")
    v0 = store.view()
    d0 = v0.get("deployments", "shop", "web")
    assert d0["metadata"]["generation"] == 1 and d0["status"]["readyReplicas"] == 2
    assert v0.get("events", "shop", next(k[1] for k in v0.objects["events"]))["involvedObject"]["uid"] == \
        v0.get("pods", "shop", "web-aaaa-1")["metadata"]["uid"]
    live.advance(1)
    v1 = store.view()
    d1 = v1.get("deployments", "shop", "web")
    assert d1["metadata"]["resourceVersion"] == d0["metadata"]["resourceVersion"]  # unchanged content, same rv
    live.advance(1)
    v2 = store.view()
    d2 = v2.get("deployments", "shop", "web")
    assert int(d2["metadata"]["resourceVersion"]) > int(d0["metadata"]["resourceVersion"])
    assert d2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert set(k[1] for k in v2.objects["replicasets"]) == {"web-aaaa", "web-bbbb"}
    assert v2.get("replicasets", "shop", "web-aaaa")["spec"]["replicas"] == 1
    live.advance(1)
    v3 = store.view()
    old = v3.get("replicasets", "shop", "web-aaaa")
    assert old["spec"]["replicas"] == 0 and old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pod = v3.get("pods", "shop", "web-bbbb-2")
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert pod["metadata"]["ownerReferences"][0]["uid"] == v3.get("replicasets", "shop", "web-bbbb")["metadata"]["uid"]
    # condition times stay put while the status does not change
    ready0 = next(c for c in v0.get("nodes", "", "node-a")["status"]["conditions"] if c["type"] == "Ready")
    ready3 = next(c for c in v3.get("nodes", "", "node-a")["status"]["conditions"] if c["type"] == "Ready")
    assert ready0["lastTransitionTime"] == ready3["lastTransitionTime"]
    assert v3.objects["events"]  # still inside the 1 h event TTL
    assert v3.objects["podmetrics"][("shop", "web-bbbb-1")]["containers"][0]["usage"]["cpu"] == "100000000n"


def test_live_cluster_clock():
    wall = [1000.0]
    live = LiveCluster(SPEC, start=T0, step_s=60, speed=2, history=timedelta(minutes=10), clock=lambda: wall[0],
                       engine_factory=FakeEngine)
    assert live.engine.t == 10  # fast-forwarded the history
    wall[0] += 59  # 118 simulated seconds: one whole step
    assert live.catch_up() == 1 and live.now == T0 + timedelta(minutes=11)
    live.advance(5)  # by hand; the clock continues from the new time
    assert live.catch_up() == 0 and live.engine.t == 16
    wall[0] += 30
    assert live.catch_up() == 1
    frozen = LiveCluster(SPEC, start=T0, speed=0, clock=lambda: wall[0], engine_factory=FakeEngine)
    wall[0] += 10_000
    assert frozen.catch_up() == 0 and frozen.engine.t == 0
