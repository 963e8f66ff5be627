"""The resources this server knows, and the discovery documents (`/api`, `/apis`, `/apis/<g>/<v>`) describing them.

Kinds the simulator has none of (statefulsets, daemonsets, jobs, ...) are registered and always list empty, so
`kubectl get all -A` and tools that walk every workload kind work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-aiops-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

READ = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for core
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    backend: str  # which store collection serves it; "" for kinds that always list empty
    verbs: tuple[str, ...] = READ
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: dict[str, tuple[str, str, str, tuple[str, ...]]] = field(default_factory=dict)
    # subresource → (kind, group, version, verbs)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


_ALL = ("all",)
_WRITE = ("get", "list", "watch", "patch", "update")
_HPA_VERBS = ("create", "delete", "get", "list", "watch", "patch", "update")
_HPA_SUBS = {"status": ("HorizontalPodAutoscaler", "autoscaling", "", ("get",))}

RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, "namespaces", short_names=("ns",),
                 subresources={"status": ("Namespace", "", "v1", ("get",))}),
    ResourceType("", "v1", "nodes", "node", "Node", False, "nodes", short_names=("no",),
                 subresources={"status": ("Node", "", "v1", ("get",))}),
    ResourceType("", "v1", "pods", "pod", "Pod", True, "pods", short_names=("po",), categories=_ALL,
                 subresources={"status": ("Pod", "", "v1", ("get",))}),
    ResourceType("", "v1", "events", "event", "Event", True, "events", short_names=("ev",)),
    ResourceType("", "v1", "services", "service", "Service", True, "", short_names=("svc",), categories=_ALL),
    ResourceType("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", True, "",
                 short_names=("rc",), categories=_ALL),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, "", short_names=("cm",)),
    ResourceType("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True, "",
                 short_names=("pvc",)),
    # apps/v1
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, "deployments", _WRITE,
                 short_names=("deploy",), categories=_ALL,
                 subresources={"scale": ("Scale", "autoscaling", "v1", ("get", "patch", "update")),
                               "status": ("Deployment", "apps", "v1", ("get",))}),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, "replicasets", short_names=("rs",),
                 categories=_ALL, subresources={"status": ("ReplicaSet", "apps", "v1", ("get",))}),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, "", short_names=("sts",),
                 categories=_ALL),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, "", short_names=("ds",),
                 categories=_ALL),
    # autoscaling: the same objects in two versions (v2 preferred, as on a real 1.32 apiserver)
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", True, "hpa", _HPA_VERBS, short_names=("hpa",), categories=_ALL,
                 subresources={"status": ("HorizontalPodAutoscaler", "autoscaling", "v2", ("get",))}),
    ResourceType("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", True, "hpa", _HPA_VERBS, short_names=("hpa",), categories=_ALL,
                 subresources={"status": ("HorizontalPodAutoscaler", "autoscaling", "v1", ("get",))}),
    # batch/v1
    ResourceType("batch", "v1", "jobs", "job", "Job", True, "", categories=_ALL),
    ResourceType("batch", "v1", "cronjobs", "cronjob", "CronJob", True, "", short_names=("cj",), categories=_ALL),
    # the resource metrics API (metrics-server), so `kubectl top` works
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "", "NodeMetrics", False, "nodemetrics", ("get", "list")),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "", "PodMetrics", True, "podmetrics", ("get", "list")),
    # the node pools as Cluster API MachineDeployments (a custom resource on a real cluster; see nodepools.py)
    ResourceType("cluster.x-k8s.io", "v1beta1", "machinedeployments", "machinedeployment", "MachineDeployment", True,
                 "machinedeployments", _WRITE, short_names=("md",), categories=("cluster-api",),
                 subresources={"scale": ("Scale", "autoscaling", "v1", ("get", "patch", "update")),
                               "status": ("MachineDeployment", "cluster.x-k8s.io", "v1beta1", ("get",))}),
    # access reviews, so `kubectl auth can-i` (and tools that ask before writing) get an answer
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "", "SelfSubjectAccessReview", False,
                 "accessreview", ("create",)),
)

# group → versions, preferred first
GROUPS: dict[str, tuple[str, ...]] = {"apps": ("v1",), "autoscaling": ("v2", "v1"), "batch": ("v1",),
                                      "metrics.k8s.io": ("v1beta1",), "authorization.k8s.io": ("v1",),
                                      "cluster.x-k8s.io": ("v1beta1",)}


def allowed(verb: str, group: str, resource: str, subresource: str = "") -> bool:
    """Whether the server serves `verb` on group/resource[/subresource] (in any version): the access review answer."""
    for r in RESOURCES:
        if r.group != group or r.plural != resource:
            continue
        if not subresource:
            return verb in r.verbs or (verb == "watch" and "list" in r.verbs)
        sub = r.subresources.get(subresource)
        if sub is not None and verb in sub[3]:
            return True
    return False


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def group_version_known(group: str, version: str) -> bool:
    return any(r.group == group and r.version == version for r in RESOURCES)


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def api_group(name: str) -> dict[str, Any]:
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def resource_list(group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub, (kind, sgroup, sversion, verbs) in r.subresources.items():
            s: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                 "kind": kind, "verbs": list(verbs)}
            if sgroup != group or (sversion and sversion != version):
                s["group"], s["version"] = sgroup, sversion or version
            resources.append(s)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
