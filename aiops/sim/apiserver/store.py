"""Object state of the simulated cluster: materialised views, resourceVersions, generations, and writes.

A `View` is every object of the cluster at one engine version, built from the engine's snapshot and events
and cached until the engine steps or is written. Between views the store keeps what a real apiserver keeps in
etcd and the simulator does not: a global resourceVersion counter (an object's resourceVersion moves only when
its content changes), generations (moved by spec changes), condition transition times, the ReplicaSets a
deployment has had, HPA names and incarnations, and labels/annotations/spec fields written through the API
that the engine does not model (`overlay`).

Writes (see `writes.py` for validation and the mapping to engine calls) run under the cluster lock: read the
current object, apply the patch or replacement, check the resourceVersion precondition, validate, then either
return the projected result (`dryRun=All`) or call the engine and return the re-materialised object.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops.sim.apiserver import objects as o
from aiops.sim.apiserver import workloads as wl
from aiops.sim.apiserver.discovery import ResourceType
from aiops.sim.apiserver.errors import already_exists, conflict, not_found
from aiops.sim.apiserver.units import digest, stable_uid
from aiops.sim.live import LiveCluster
from aiops.sim.state import PodState, SimEvent, Snapshot, WorkloadState

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
BACKENDS = ("namespaces", "nodes", "pods", "events", "deployments", "replicasets", "hpa", "machinedeployments")
METRICS_BACKENDS = ("nodemetrics", "podmetrics")  # no resourceVersions: the metrics API has none
_REVISION_HISTORY = 10


@dataclass
class View:
    """Every object at one engine version. Never mutated after it is built: copy before changing."""

    version: int
    resource_version: int
    now: datetime
    objects: dict[str, dict[Key, Obj]]
    workloads: dict[Key, WorkloadState]
    hpa_target: dict[Key, str]  # (ns, hpa name) → workload name

    def get(self, backend: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get(backend, {}).get((namespace, name))


@dataclass
class _RS:
    workload: str
    revision: int
    template: Obj
    created: datetime


@dataclass
class _HPAMeta:
    created: datetime
    incarnation: int = 0


@dataclass
class _EventAgg:
    first: SimEvent
    last_time: datetime
    count: int
    host: str | None
    container: str | None


@dataclass
class Overlay:
    """What the API wrote that the engine does not model; re-applied on every materialisation."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    spec: Obj | None = None


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Store:
    live: LiveCluster
    cluster: str = "sim"
    event_ttl: timedelta = timedelta(hours=1)
    _rv: int = 1
    _view: View | None = None
    _content: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    _gen: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    _conds: dict[tuple[str, str, str, str], Obj] = field(default_factory=dict)
    _rs: dict[Key, _RS] = field(default_factory=dict)
    hpa_names: dict[Key, str] = field(default_factory=dict)  # (ns, workload) → HPA name, when not the workload's
    _hpa_meta: dict[Key, _HPAMeta] = field(default_factory=dict)
    overlays: dict[tuple[str, str, str], Overlay] = field(default_factory=dict)
    _events: dict[tuple[Any, ...], _EventAgg] = field(default_factory=dict)
    _events_seen: int = 0
    _origin: datetime | None = None  # when the cluster's spec'd objects were created (before its first pods)

    @property
    def lock(self):  # noqa: ANN201 - the cluster's RLock
        return self.live.lock

    # --- reading ------------------------------------------------------------------------------------------------

    def view(self) -> View:
        """A consistent view of the cluster now (catching the clock up first); cached per engine version."""
        with self.live.lock:
            version, snap, new_events, total = self.live.read(self._events_seen)
            if self._view is None or self._view.version != version:
                self._view = self._build(version, snap, new_events, total)
            return self._view

    def hpa_name(self, namespace: str, workload: str) -> str:
        return self.hpa_names.get((namespace, workload), workload)

    def hpa_incarnation(self, namespace: str, name: str) -> int:
        meta = self._hpa_meta.get((namespace, name))
        return meta.incarnation if meta else 0

    def note_hpa_created(self, namespace: str, name: str, workload: str, now: datetime) -> None:
        old = self._hpa_meta.get((namespace, name))
        self._hpa_meta[(namespace, name)] = _HPAMeta(created=now, incarnation=(old.incarnation + 1) if old else 1)
        if name != workload:
            self.hpa_names[(namespace, workload)] = name
        else:
            self.hpa_names.pop((namespace, workload), None)

    def note_hpa_deleted(self, namespace: str, workload: str) -> None:
        self.hpa_names.pop((namespace, workload), None)

    def uid(self, kind: str, namespace: str, name: str) -> str:
        if kind == "Pod":
            return o.pod_uid(namespace, name)
        if kind == "Node":
            return o.object_uid(self.cluster, "Node", "", name)
        if kind == "HorizontalPodAutoscaler":
            return o.object_uid(self.cluster, kind, namespace, name, self.hpa_incarnation(namespace, name))
        return o.object_uid(self.cluster, kind, namespace, name)

    # --- materialisation ------------------------------------------------------------------------------------

    def _build(self, version: int, snap: Snapshot, new_events: list[SimEvent], total_events: int) -> View:
        first = self._view is None
        now = snap.time
        if self._origin is None:
            self._origin = min([self.live.start, *(p.created for p in snap.pods), *(n.created for n in snap.nodes)])
        start = self._origin
        objs: dict[str, dict[Key, Obj]] = {b: {} for b in BACKENDS}
        for ns in sorted(set(o.SYSTEM_NAMESPACES) | set(self.live.spec.namespaces)):
            objs["namespaces"][("", ns)] = o.namespace(ns, self.uid("Namespace", "", ns), start - timedelta(minutes=5))
        for n in snap.nodes:
            objs["nodes"][("", n.name)] = o.node(n, self.uid("Node", "", n.name), now)
        self._pool_objects(objs, snap, now)

        pods_by_wl: dict[Key, list[PodState]] = {}
        for p in snap.pods:
            pods_by_wl.setdefault((p.namespace, p.workload), []).append(p)
        workloads = {(w.namespace, w.name): w for w in snap.workloads}
        hpa_target: dict[Key, str] = {}
        for w in snap.workloads:
            pods = pods_by_wl.get((w.namespace, w.name), [])
            self._workload_objects(objs, w, pods, now, first)
            if w.hpa is not None:
                name = self.hpa_name(w.namespace, w.name)
                meta = self._hpa_meta.setdefault((w.namespace, name), _HPAMeta(created=start if first else now))
                h = wl.hpa(w, name, uid=self.uid("HorizontalPodAutoscaler", w.namespace, name), created=meta.created,
                          pods=pods, now=now)
                self._apply_overlay("hpa", w.namespace, name, h)
                objs["hpa"][(w.namespace, name)] = h
                hpa_target[(w.namespace, name)] = w.name
        pod_nodes = {(p.namespace, p.name): (p.node, p.container) for p in snap.pods}
        for p in snap.pods:
            rs = self._rs.get((p.namespace, p.replicaset))
            template = rs.template if rs else o.pod_template({"app": p.workload},
                                                              o.container_json(p.container, "", p.resources))
            objs["pods"][(p.namespace, p.name)] = o.pod(
                p, rs_uid=self.uid("ReplicaSet", p.namespace, p.replicaset), template=template, now=now)
        self._event_objects(objs, new_events, total_events, now, pod_nodes)

        self._finalise(objs, now)
        self._metric_objects(objs, snap)
        return View(version=version, resource_version=self._rv, now=now, objects=objs, workloads=workloads,
                    hpa_target=hpa_target)

    def _workload_objects(self, objs: dict[str, dict[Key, Obj]], w: WorkloadState, pods: list[PodState],
                          now: datetime, first: bool) -> None:
        ns = w.namespace
        main = o.container_json(w.container, w.image, w.resources)
        template = o.pod_template({**w.labels, "app": w.name}, main)
        ov = self.overlays.get(("deployments", ns, w.name))
        if ov is not None and ov.spec is not None:
            template = copy.deepcopy(ov.spec.get("template", template))
            ctrs = template.setdefault("spec", {}).setdefault("containers", [])
            for i, c in enumerate(ctrs):
                if c.get("name") == w.container:
                    ctrs[i] = {**c, "image": w.image, "resources": main["resources"]}
        duid = self.uid("Deployment", ns, w.name)
        d = wl.deployment(w, uid=duid, created=self._origin or self.live.start, template=template, pods=pods, now=now)
        if ov is not None and ov.spec is not None:
            d["spec"] = {**copy.deepcopy(ov.spec), "replicas": w.spec_replicas, "template": template,
                         "selector": d["spec"]["selector"]}
        self._apply_overlay("deployments", ns, w.name, d)
        d["metadata"].setdefault("annotations", {})[o.REVISION_ANNOTATION] = str(w.revision)
        objs["deployments"][(ns, w.name)] = d

        # ReplicaSets: the current one, the ones pods still belong to, and up to 10 old ones (scaled to 0)
        by_rs: dict[str, list[PodState]] = {}
        for p in pods:
            by_rs.setdefault(p.replicaset, []).append(p)
        cur = self._rs.get((ns, w.replicaset))
        if cur is None:
            created = (self._origin or self.live.start) if (first and w.revision <= 1) else min(
                (p.created for p in by_rs.get(w.replicaset, [])), default=now)
            self._rs[(ns, w.replicaset)] = _RS(w.name, w.revision, copy.deepcopy(template), created)
        else:
            cur.template, cur.revision = copy.deepcopy(template), w.revision
        for rs_name, rs_pods in by_rs.items():
            if (ns, rs_name) not in self._rs:
                old_tmpl = copy.deepcopy(template)
                old_tmpl["spec"]["containers"] = [
                    {**c, "resources": o.resources_json(rs_pods[0].resources)} if c.get("name") == w.container else c
                    for c in old_tmpl["spec"]["containers"]]
                created = (self._origin or self.live.start) if first else min(p.created for p in rs_pods)
                self._rs[(ns, rs_name)] = _RS(w.name, max(1, w.revision - 1), old_tmpl, created)
        mine = sorted(((k, v) for k, v in self._rs.items() if k[0] == ns and v.workload == w.name),
                      key=lambda kv: kv[1].revision)
        old = [kv for kv in mine if kv[0][1] != w.replicaset and kv[0][1] not in by_rs]
        for k, _ in old[:-_REVISION_HISTORY] if len(old) > _REVISION_HISTORY else []:
            del self._rs[k]
        for (_, rs_name), info in ((k, v) for k, v in self._rs.items() if k[0] == ns and v.workload == w.name):
            rs_pods = by_rs.get(rs_name, [])
            replicas = w.spec_replicas if rs_name == w.replicaset else len(rs_pods)
            objs["replicasets"][(ns, rs_name)] = wl.replicaset(
                w, rs_name, uid=self.uid("ReplicaSet", ns, rs_name), deploy_uid=duid, created=info.created,
                revision=info.revision, template=info.template, replicas=replicas, pods=rs_pods)

    def _pool_objects(self, objs: dict[str, dict[Key, Obj]], snap: Snapshot, now: datetime) -> None:
        from aiops.sim.apiserver import nodepools as npl  # lazy: it imports the write helpers, which import us

        counts: dict[str, tuple[int, int]] = {}
        for n in snap.nodes:
            alive, ready = counts.get(n.pool, (0, 0))
            counts[n.pool] = (alive + 1, ready + n.ready)
        bounds = self.live.pool_bounds()
        for pool in self.live.spec.node_pools:
            ov = self.overlays.get((npl.BACKEND, npl.NAMESPACE, pool.name))
            alive, ready = counts.get(pool.name, (0, 0))
            objs[npl.BACKEND][(npl.NAMESPACE, pool.name)] = npl.machine_deployment(
                pool, cluster=self.cluster, bounds=bounds[pool.name], nodes=alive, ready=ready,
                uid=self.uid(npl.KIND, npl.NAMESPACE, pool.name), created=self._origin or self.live.start, now=now,
                labels=ov.labels if ov else None, annotations=ov.annotations if ov else None)

    def _apply_overlay(self, backend: str, ns: str, name: str, obj: Obj) -> None:
        ov = self.overlays.get((backend, ns, name))
        if ov is None:
            return
        if ov.labels is not None:
            obj["metadata"]["labels"] = dict(ov.labels)
        if ov.annotations is not None:
            obj["metadata"]["annotations"] = dict(ov.annotations)
        for k in ("labels", "annotations"):
            if k in obj["metadata"] and not obj["metadata"][k]:
                del obj["metadata"][k]

    def _event_objects(self, objs: dict[str, dict[Key, Obj]], new_events: list[SimEvent], total: int,
                       now: datetime, pod_nodes: dict[Key, tuple[str | None, str]]) -> None:
        if total < self._events_seen:  # the engine's list was reset: start over
            self._events.clear()
        for e in new_events:
            if e.kind == "HorizontalPodAutoscaler":  # the engine names HPAs after their workload
                e = dataclasses.replace(e, name=self.hpa_name(e.namespace, e.name))
            key = (e.namespace, e.kind, e.name, e.reason, e.message, e.type)
            agg = self._events.get(key)
            if agg is None:
                node, ctr = pod_nodes.get((e.namespace, e.name), (None, None)) if e.kind == "Pod" else (None, None)
                self._events[key] = _EventAgg(e, e.time, 1, node if e.kind == "Pod" else
                                              (e.name if e.kind == "Node" else None), ctr)
            else:
                agg.count += 1
                agg.last_time = max(agg.last_time, e.time)
        self._events_seen = total
        horizon = now - self.event_ttl
        for key in [k for k, a in self._events.items() if a.last_time < horizon]:
            del self._events[key]
        for key, a in self._events.items():
            e = a.first
            ns = e.namespace or "default"
            name = f"{e.name}.{digest(*key, n=16)}"
            involved_uid = e.name if e.kind == "Node" else self.uid(e.kind, e.namespace, e.name)
            objs["events"][(ns, name)] = o.event(
                e, name=name, uid=stable_uid(self.cluster, "Event", ns, name), involved_uid=involved_uid,
                count=a.count, first=e.time, last=a.last_time, host=a.host, container=a.container)

    @staticmethod
    def _metric_objects(objs: dict[str, dict[Key, Obj]], snap: Snapshot) -> None:
        from aiops.sim.apiserver import metrics_api as m

        running = [p for p in snap.pods if m.has_metrics(p)]
        objs["podmetrics"] = {
            (p.namespace, p.name): m.pod_metrics(p, objs["pods"][(p.namespace, p.name)]["metadata"].get("labels", {}),
                                                 snap.time)
            for p in running}
        by_node: dict[str, list[PodState]] = {}
        for p in running:
            by_node.setdefault(p.node or "", []).append(p)
        objs["nodemetrics"] = {
            ("", n.name): m.node_metrics(n, by_node.get(n.name, []), objs["nodes"][("", n.name)]["metadata"]["labels"],
                                         snap.time)
            for n in snap.nodes}

    def _finalise(self, objs: dict[str, dict[Key, Obj]], now: datetime) -> None:
        """Stable condition times, generations and resourceVersions; forget objects that are gone."""
        seen: set[tuple[str, str, str]] = set()
        for backend, items in objs.items():
            for (ns, name), obj in items.items():
                key = (backend, ns, name)
                seen.add(key)
                for c in obj.get("status", {}).get("conditions", []) or []:
                    ck = (backend, ns, name, c["type"])
                    prev = self._conds.get(ck)
                    if prev is not None and prev["status"] == c["status"]:
                        c["lastTransitionTime"] = prev["lastTransitionTime"]
                        if "lastUpdateTime" in c and prev.get("reason") == c.get("reason"):
                            c["lastUpdateTime"] = prev["lastUpdateTime"]
                        if "lastHeartbeatTime" in c and prev.get("lastHeartbeatTime"):
                            # the kubelet reports unchanged node status every 5 minutes
                            last = datetime.fromisoformat(prev["lastHeartbeatTime"].replace("Z", "+00:00"))
                            if now - last < timedelta(minutes=5):
                                c["lastHeartbeatTime"] = prev["lastHeartbeatTime"]
                    self._conds[ck] = {k: c.get(k) for k in
                                       ("status", "reason", "lastTransitionTime", "lastUpdateTime",
                                        "lastHeartbeatTime")}
                meta = obj["metadata"]
                if "generation" in meta:
                    spec_hash = _hash(obj.get("spec"))
                    prev_gen = self._gen.get(key)
                    gen = 1 if prev_gen is None else prev_gen[1] + (prev_gen[0] != spec_hash)
                    self._gen[key] = (spec_hash, gen)
                    meta["generation"] = gen
                    if "observedGeneration" in obj.get("status", {}):
                        obj["status"]["observedGeneration"] = gen
                meta["resourceVersion"] = "0"
                h = _hash(obj)
                prev = self._content.get(key)
                if prev is None or prev[0] != h:
                    self._rv += 1
                    prev = (h, self._rv)
                    self._content[key] = prev
                meta["resourceVersion"] = str(prev[1])
        for store in (self._content, self._gen):
            for k in [k for k in store if k not in seen]:
                del store[k]
        for k in [k for k in self._conds if k[:3] not in seen]:
            del self._conds[k]

    # --- helpers for writes -------------------------------------------------------------------------------------

    def current(self, rt: ResourceType, namespace: str, name: str) -> tuple[View, Obj]:
        """The view and a private copy of the object (404 Status when missing)."""
        view = self.view()
        obj = view.get(rt.backend, namespace if rt.namespaced else "", name) if rt.backend else None
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return view, copy.deepcopy(obj)

    def check_precondition(self, rt: ResourceType, name: str, current: Obj, new: Obj) -> None:
        meta = new.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != current["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        uid = meta.get("uid")
        if uid not in (None, "") and uid != current["metadata"]["uid"]:
            raise conflict(rt.plural, rt.group, name,
                           f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                           f"{current['metadata']['uid']}")

    def check_absent(self, rt: ResourceType, namespace: str, name: str) -> None:
        if self.view().get(rt.backend, namespace, name) is not None:
            raise already_exists(rt.plural, rt.group, name)
