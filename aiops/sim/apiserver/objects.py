"""Snapshot values → Kubernetes JSON objects, as a real apiserver would return them.

Pure functions: the store (`store.py`) decides uids, creation times, resourceVersions, generations and condition
transition times, and passes them in. Names, labels, reasons and field layout follow what kube-controller-manager,
the kubelet and the scheduler write, so tools written for real clusters read these unchanged.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from aiops.sim.exposition import KERNEL_VERSION, KUBELET_VERSION, OS_IMAGE, RUNTIME_VERSION
from aiops.sim.spec import Resources
from aiops.sim.state import NodeState, PodState, SimEvent
from aiops.sim.apiserver.units import cpu_quantity, digest, ip_for, memory_quantity, stable_uid, ts

Obj = dict[str, Any]

POOL_LABEL = "eks.amazonaws.com/nodegroup"  # the node pool label (the same one the /metrics exposition uses)
PRICE_ANNOTATION = "aiops.io/price-per-hour"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REGION = "sim-1"
ZONES = ("sim-1a", "sim-1b", "sim-1c")
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def pod_uid(namespace: str, name: str) -> str:
    """The pod uid; the same as the `uid` label of the /metrics exposition (kube-state-metrics) series."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aiops-sim/{namespace}/{name}"))


def object_uid(cluster: str, kind: str, namespace: str, name: str, incarnation: int = 0) -> str:
    return stable_uid(cluster, kind, namespace, name, incarnation)


_IP_NAME = re.compile(r"^ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(\.|$)")


def node_ip(name: str) -> str:
    """The node's InternalIP: the one its EC2-style name spells (`ip-10-0-1-7...`), else a stable made-up one."""
    m = _IP_NAME.match(name)
    return ".".join(m.groups()[:4]) if m else ip_for("10.0", "node", name)


def zone_of(node: NodeState) -> str:
    return ZONES[int(digest(node.name, n=6), 16) % len(ZONES)]


def template_hash(workload: str, replicaset: str) -> str:
    """The `pod-template-hash` of a ReplicaSet named `<deployment>-<hash>`."""
    prefix = workload + "-"
    return replicaset[len(prefix):] if replicaset.startswith(prefix) else replicaset.rsplit("-", 1)[-1]


def object_meta(name: str, namespace: str | None, uid: str, created: datetime, **extra: Any) -> Obj:
    m: Obj = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    m["uid"] = uid
    m["resourceVersion"] = "0"  # set by the store
    m["creationTimestamp"] = ts(created)
    m.update({k: v for k, v in extra.items() if v is not None})
    return m


def condition(ctype: str, status: bool | str, reason: str | None, message: str | None, now: datetime,
          since: datetime | None = None, **times: bool) -> Obj:
    """A condition; the store keeps `lastTransitionTime` (and friends) stable while the status does not change.

    `since` is the transition time to assume when the store has not seen the condition before (default `now`).
    """
    c: Obj = {"type": ctype, "status": status if isinstance(status, str) else ("True" if status else "False")}
    for key in times:
        c[key] = ts(since or now) if key == "lastUpdateTime" else ts(now)
    c["lastTransitionTime"] = ts(since or now)
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def resources_json(r: Resources) -> Obj:
    out: Obj = {"requests": {"cpu": cpu_quantity(r.cpu_request), "memory": memory_quantity(r.memory_request)}}
    limits: Obj = {}
    if r.cpu_limit is not None:
        limits["cpu"] = cpu_quantity(r.cpu_limit)
    if r.memory_limit is not None:
        limits["memory"] = memory_quantity(r.memory_limit)
    if limits:
        out = {"limits": limits, **out}
    return out


def container_json(name: str, image: str, resources: Resources) -> Obj:
    return {
        "name": name,
        "image": image,
        "resources": resources_json(resources),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_template(labels: dict[str, str], container: Obj) -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


# --- namespaces and nodes ---------------------------------------------------------------------------------------


def namespace(name: str, uid: str, created: datetime) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": object_meta(name, None, uid, created, labels={"kubernetes.io/metadata.name": name}),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node(n: NodeState, uid: str, now: datetime) -> Obj:
    zone = zone_of(n)
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": n.instance_type,
        "beta.kubernetes.io/os": "linux",
        POOL_LABEL: n.pool,
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": n.instance_type,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": zone,
    }
    annotations = {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        PRICE_ANNOTATION: f"{n.price_per_hour:g}",
    }
    disk = bool(n.conditions.get("DiskPressure", False))
    mem = bool(n.conditions.get("MemoryPressure", False))
    pid = bool(n.conditions.get("PIDPressure", False))
    taints = []
    if disk:
        taints.append({"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": ts(now)})
    if mem:
        taints.append({"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule", "timeAdded": ts(now)})
    if not n.ready:
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule", "timeAdded": ts(now)})
    resources = {
        "cpu": cpu_quantity(n.cpu_cores),
        "ephemeral-storage": "104845292Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory_quantity(n.memory_bytes),
        "pods": "110",
    }
    hb = {"lastHeartbeatTime": True}
    conditions = [
        condition("MemoryPressure", mem, "KubeletHasMemoryPressure" if mem else "KubeletHasSufficientMemory",
              "kubelet has memory pressure" if mem else "kubelet has sufficient memory available", now, n.created, **hb),
        condition("DiskPressure", disk, "KubeletHasDiskPressure" if disk else "KubeletHasNoDiskPressure",
              "kubelet has disk pressure" if disk else "kubelet has no disk pressure", now, n.created, **hb),
        condition("PIDPressure", pid, "KubeletHasInsufficientPID" if pid else "KubeletHasSufficientPID",
              "kubelet has insufficient PID available" if pid else "kubelet has sufficient PID available", now, n.created, **hb),
        condition("Ready", n.ready, "KubeletReady" if n.ready else "KubeletNotReady",
              "kubelet is posting ready status" if n.ready else "container runtime network not ready", now, n.created, **hb),
    ]
    spec: Obj = {"providerID": f"aws:///sim/{n.name}"}
    if taints:
        spec["taints"] = taints
    ip = node_ip(n.name)
    boot = hashlib.sha256(n.name.encode()).hexdigest()
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": object_meta(n.name, None, uid, n.created, labels=labels, annotations=annotations),
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": dict(resources),  # the simulator schedules against the whole node
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": boot[:32],
                "systemUUID": str(uuid.UUID(boot[32:64])),
                "bootID": str(uuid.UUID(boot[:32])),
                "kernelVersion": KERNEL_VERSION,
                "osImage": OS_IMAGE,
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


# --- pods ---------------------------------------------------------------------------------------------------


def _qos(r: Resources) -> str:
    if r.cpu_limit is not None and r.memory_limit is not None and r.cpu_limit == r.cpu_request \
            and r.memory_limit == r.memory_request:
        return "Guaranteed"
    return "Burstable"


_EXIT_CODES = {"OOMKilled": 137, "Error": 1, "Evicted": 137, "Completed": 0}


def pod(p: PodState, *, rs_uid: str, template: Obj, now: datetime) -> Obj:
    """A pod of ReplicaSet `p.replicaset`; `template` is that ReplicaSet's pod template (for image and extras)."""
    tmpl_spec = template.get("spec", {})
    containers = [dict(c) for c in tmpl_spec.get("containers", [])] or [container_json(p.container, "", p.resources)]
    main = next((c for c in containers if c.get("name") == p.container), containers[0])
    main["resources"] = resources_json(p.resources)
    image = main.get("image", "")
    labels = {**template.get("metadata", {}).get("labels", {}), **p.labels,
              "pod-template-hash": template_hash(p.workload, p.replicaset)}
    spec: Obj = {
        **{k: v for k, v in tmpl_spec.items() if k != "containers"},
        "containers": containers,
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ],
    }
    if p.node is not None:
        spec["nodeName"] = p.node
    scheduled = p.node is not None
    running = p.phase == "Running" and p.waiting_reason is None and p.started is not None
    ready_since = (p.started or p.created) if p.ready else None
    sched_since = p.created if scheduled else None
    conditions = [
        condition("PodReadyToStartContainers", scheduled and p.waiting_reason != "ContainerCreating", None, None, now,
              sched_since),
        condition("Initialized", True, None, None, now, p.created),
        condition("Ready", p.ready, None if p.ready else "ContainersNotReady",
              None if p.ready else f"containers with unready status: [{p.container}]", now, ready_since),
        condition("ContainersReady", p.ready, None if p.ready else "ContainersNotReady",
              None if p.ready else f"containers with unready status: [{p.container}]", now, ready_since),
        condition("PodScheduled", scheduled, None if scheduled else "Unschedulable",
              None if scheduled else "0/0 nodes are available: Insufficient cpu. preemption: 0/0 nodes are "
              "available: No preemption victims found for incoming pod.", now, sched_since),
    ]
    for c in conditions:
        c["lastProbeTime"] = None
    status: Obj = {"phase": p.phase, "conditions": conditions, "qosClass": _qos(p.resources)}
    if scheduled:
        ip = ip_for("10.244", "pod", p.namespace, p.name)
        status.update({
            "hostIP": node_ip(p.node),
            "hostIPs": [{"ip": node_ip(p.node)}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": ts(p.created),
        })
        cid = hashlib.sha256(f"{p.namespace}/{p.name}/{p.restarts}".encode()).hexdigest()
        cs: Obj = {
            "name": p.container,
            "state": {},
            "lastState": {},
            "ready": p.ready,
            "restartCount": p.restarts,
            "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
            "started": running,
        }
        if running:
            cs["containerID"] = f"containerd://{cid}"
            cs["state"] = {"running": {"startedAt": ts(p.started)}}
        else:
            reason = p.waiting_reason or "ContainerCreating"
            waiting: Obj = {"reason": reason}
            if reason == "CrashLoopBackOff":
                waiting["message"] = f"back-off 5m0s restarting failed container={p.container} pod={p.name}_" \
                                     f"{p.namespace}({pod_uid(p.namespace, p.name)})"
            cs["state"] = {"waiting": waiting}
            if p.restarts:
                cs["containerID"] = f"containerd://{cid}"
        if p.last_terminated_reason:
            finished = p.started or p.created
            cs["lastState"] = {"terminated": {
                "exitCode": _EXIT_CODES.get(p.last_terminated_reason, 1),
                "reason": p.last_terminated_reason,
                "startedAt": ts(p.created),
                "finishedAt": ts(finished),
                "containerID": "containerd://" + hashlib.sha256(
                    f"{p.namespace}/{p.name}/{max(p.restarts - 1, 0)}".encode()).hexdigest(),
            }}
        status["containerStatuses"] = [cs]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": object_meta(
            p.name, p.namespace, pod_uid(p.namespace, p.name), p.created,
            generateName=p.replicaset + "-",
            labels=labels,
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": p.replicaset, "uid": rs_uid,
                              "controller": True, "blockOwnerDeletion": True}],
        ),
        "spec": spec,
        "status": status,
    }


# --- events ---------------------------------------------------------------------------------------------------

_API_VERSION = {"Pod": "v1", "Node": "v1", "Deployment": "apps/v1", "ReplicaSet": "apps/v1",
                "HorizontalPodAutoscaler": "autoscaling/v2", "MachineDeployment": "cluster.x-k8s.io/v1beta1"}
_COMPONENT = {"Pod": "kubelet", "Node": "kubelet", "Deployment": "deployment-controller",
              "ReplicaSet": "replicaset-controller", "HorizontalPodAutoscaler": "horizontal-pod-autoscaler"}
_COMPONENT_BY_REASON = {"Scheduled": "default-scheduler", "FailedScheduling": "default-scheduler",
                        "Preempted": "default-scheduler", "TriggeredScaleUp": "cluster-autoscaler",
                        "ScaleDown": "cluster-autoscaler", "NotTriggerScaleUp": "cluster-autoscaler",
                        "ScaledUpGroup": "cluster-autoscaler",
                        "RegisteredNode": "node-controller", "RemovingNode": "node-controller",
                        "NodeNotReady": "node-controller", "TaintManagerEviction": "taint-eviction-controller"}


def event(e: SimEvent, *, name: str, uid: str, involved_uid: str, count: int, first: datetime, last: datetime,
          host: str | None, container: str | None = None) -> Obj:
    namespace = e.namespace or "default"
    component = _COMPONENT_BY_REASON.get(e.reason, _COMPONENT.get(e.kind, "aiops-sim"))
    involved: Obj = {"kind": e.kind, "name": e.name, "uid": involved_uid, "apiVersion": _API_VERSION.get(e.kind, "v1")}
    if e.kind != "Node":
        involved["namespace"] = namespace
    if e.kind == "Pod" and component == "kubelet" and container:
        involved["fieldPath"] = "spec.containers{%s}" % container
    source: Obj = {"component": component}
    if host and component == "kubelet":
        source["host"] = host
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": object_meta(name, namespace, uid, first),
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.message,
        "source": source,
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
        "count": count,
        "type": e.type,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
