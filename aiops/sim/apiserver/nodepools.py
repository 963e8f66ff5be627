"""Node pools as Cluster API MachineDeployments (`cluster.x-k8s.io/v1beta1`): how they look, and how writes apply.

One MachineDeployment per node pool of the simulated cluster, named after the pool, in namespace `default`.
Cluster API objects live in the namespace of their management cluster where the Cluster object is (here the
simulated cluster manages itself, and `default` is where `clusterctl generate cluster` puts them unless told
otherwise); not `kube-system`, which belongs to the workload cluster's own components.

The pool's cluster-autoscaler bounds are the annotations of the autoscaler's Cluster API provider,
`cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size` and `...-max-size` (strings of integers). Writing
them (merge or JSON patch, or update) sets the simulated autoscaler's bounds (`LiveCluster.set_pool_bounds`),
which it enforces from the next step: the pool grows to the minimum at once (nodes Ready after the pool's
provisioning delay) and shrinks to the maximum. They are required: the simulated pools are always autoscaled.

`spec.replicas` belongs to the autoscaler: it is the pool's node count moved into the bounds (so right after a
write that raises the minimum it already shows the size being scaled up to, and `status.phase` says
`ScalingUp`). A written replica count is accepted with a `Warning` header and not applied, as for a Deployment
under an HPA. The rest of the spec (cluster, Kubernetes version, instance type, selector, strategy) is fixed by
the simulation: changing it is refused with 422, naming the field. As on a real apiserver for any custom
resource, strategic merge patch is refused with 415 and an update (PUT) must carry `metadata.resourceVersion`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiops.sim.apiserver import objects as o
from aiops.sim.apiserver.errors import ApiError, bad_request, invalid
from aiops.sim.apiserver.store import Overlay
from aiops.sim.apiserver.units import parse_ts
from aiops.sim.apiserver.writes import Causes, Obj, Plan, as_int, check_identity, restore_system_meta, str_map
from aiops.sim.exposition import KUBELET_VERSION
from aiops.sim.spec import NodePoolSpec

GROUP = "cluster.x-k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MachineDeployment"
BACKEND = "machinedeployments"  # the store collection
NAMESPACE = "default"
MIN_SIZE_ANNOTATION = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
MAX_SIZE_ANNOTATION = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
# what a real apiserver accepts for custom resources (no strategic merge patch: CRDs declare no patch strategies)
CRD_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_BOUND_ANNOTATIONS = (MIN_SIZE_ANNOTATION, MAX_SIZE_ANNOTATION)


# --- reading --------------------------------------------------------------------------------------------------


def desired_replicas(nodes: int, bounds: tuple[int, int]) -> int:
    """The size the autoscaler drives a pool of `nodes` nodes to under `bounds` (min, max)."""
    return min(max(nodes, bounds[0]), bounds[1])


def _condition(ctype: str, ok: bool, message: str | None, now: datetime, since: datetime) -> Obj:
    # Cluster API v1beta1 conditions: a False one carries a severity
    c = o.condition(ctype, ok, None if ok else "WaitingForAvailableMachines", message, now, since if ok else None)
    if not ok:
        c["severity"] = "Warning"
    return c


def machine_deployment(pool: NodePoolSpec, *, cluster: str, bounds: tuple[int, int], nodes: int, ready: int,
                       uid: str, created: datetime, now: datetime, labels: dict[str, str] | None = None,
                       annotations: dict[str, str] | None = None) -> Obj:
    """The MachineDeployment of `pool`: `nodes` alive (provisioning ones included), `ready` of them Ready.

    `labels`/`annotations` are what the API wrote (the store's overlay); the cluster-name label and the autoscaler
    bounds (from the engine) are always set over them.
    """
    desired = desired_replicas(nodes, bounds)
    sel = {CLUSTER_NAME_LABEL: cluster, DEPLOYMENT_NAME_LABEL: pool.name}
    meta = o.object_meta(pool.name, NAMESPACE, uid, created, generation=1,
                         labels={**(labels or {}), CLUSTER_NAME_LABEL: cluster},
                         annotations={**(annotations or {}), MIN_SIZE_ANNOTATION: str(bounds[0]),
                                      MAX_SIZE_ANNOTATION: str(bounds[1])})
    spec = {
        "clusterName": cluster,
        "replicas": desired,
        "selector": {"matchLabels": dict(sel)},
        "template": {
            "metadata": {"labels": {**sel, INSTANCE_TYPE_LABEL: pool.instance_type}},
            "spec": {
                "clusterName": cluster,
                "version": KUBELET_VERSION,
                "bootstrap": {"configRef": {"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2",
                                            "kind": "EKSConfigTemplate", "name": pool.name, "namespace": NAMESPACE}},
                "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
                                      "kind": "AWSMachineTemplate", "name": pool.instance_type,
                                      "namespace": NAMESPACE},
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "minReadySeconds": 0,
        "revisionHistoryLimit": 1,
        "progressDeadlineSeconds": 600,
    }
    # Cluster API's phase: more machines than desired → ScalingDown; fewer Ready → ScalingUp
    phase = "ScalingDown" if nodes > desired else "ScalingUp" if ready < desired else "Running"
    available = ready >= desired  # maxUnavailable 0
    why = None if available else f"Minimum availability requires {desired} replicas, current {ready} available"
    status = {
        "observedGeneration": 1,
        "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items())),
        "replicas": nodes,
        "updatedReplicas": nodes,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(desired - ready, 0),
        "phase": phase,
        "conditions": [_condition("Ready", available, why, now, created),
                       _condition("Available", available, why, now, created)],
    }
    return {"kind": KIND, "apiVersion": API_VERSION, "metadata": meta, "spec": spec, "status": status}


# --- writes ---------------------------------------------------------------------------------------------------


def check_patch_type(content_type: str) -> None:
    """415 for patch types a real apiserver refuses on custom resources (strategic merge patch), with its message."""
    if content_type in CRD_PATCH_TYPES[:2]:
        return
    msg = ("the body of the request was in an unknown format - accepted media types include: "
           + ", ".join(CRD_PATCH_TYPES))
    if content_type.startswith("application/apply-patch"):
        msg += " (server-side apply is not supported by the simulated cluster: send a merge patch)"
    raise ApiError(415, "UnsupportedMediaType", msg, {})


def _bounds(annotations: dict[str, str], pool: NodePoolSpec, causes: Causes) -> tuple[int, int]:
    parsed: dict[str, int] = {}
    for key in _BOUND_ANNOTATIONS:
        path, raw = f"metadata.annotations[{key}]", annotations.get(key)
        if raw is None:
            causes.append((path, "Required value: the simulated node pools are always scaled by the cluster "
                                 "autoscaler: set both the min-size and max-size annotations (equal values pin the "
                                 "pool's size)"))
        elif not re.fullmatch(r"[+-]?[0-9]{1,9}", raw):
            causes.append((path, f'Invalid value: "{raw}": must be a whole number of nodes, e.g. "3"'))
        elif int(raw) < 0:
            causes.append((path, f'Invalid value: "{raw}": must be greater than or equal to 0'))
        else:
            parsed[key] = int(raw)
    lo, hi = parsed.get(MIN_SIZE_ANNOTATION), parsed.get(MAX_SIZE_ANNOTATION)
    if hi is not None and hi > pool.max_nodes:
        causes.append((f"metadata.annotations[{MAX_SIZE_ANNOTATION}]",
                       f'Invalid value: "{annotations[MAX_SIZE_ANNOTATION]}": must be less than or equal to '
                       f'{pool.max_nodes}, the slot capacity of the simulated node pool "{pool.name}" (max_nodes in '
                       "the cluster spec); raise max_nodes there to allow more nodes"))
    if lo is not None and hi is not None and lo > hi:
        causes.append((f"metadata.annotations[{MIN_SIZE_ANNOTATION}]",
                       f'Invalid value: "{annotations[MIN_SIZE_ANNOTATION]}": must be less than or equal to the '
                       f"max-size annotation ({hi})"))
    return (lo or 0, hi or 0)


def _field(path: str, key: str) -> str:
    return f"{path}[{key}]" if ("/" in key or "." in key) else f"{path}.{key}"


def _changes(cur: Any, new: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Leaf paths where `new` differs from `cur`; keys `new` leaves out keep their current value (defaulting)."""
    if isinstance(cur, dict) and isinstance(new, dict):
        for k, v in new.items():
            if path == "spec" and k == "replicas":
                continue
            yield from _changes(cur.get(k), v, _field(path, k))
    elif cur != new:
        yield path, new


def _fixed(path: str, value: Any, pool: NodePoolSpec) -> str:
    got = json.dumps(value)
    if path in ("spec.clusterName", "spec.template.spec.clusterName"):
        return f"Invalid value: {got}: field is immutable"
    if path == "spec.template.spec.version":
        return (f"Forbidden: the simulated cluster does not upgrade nodes: its node pools run Kubernetes "
                f"{KUBELET_VERSION}")
    if path.startswith("spec.template.spec.infrastructureRef") or path.endswith(f"[{INSTANCE_TYPE_LABEL}]"):
        return (f'Forbidden: node pool "{pool.name}" runs {pool.instance_type} nodes and the simulated cluster cannot '
                "change a pool's instance type; add a pool with another instance type to the cluster spec instead")
    return (f"Forbidden: {got}: the simulated cluster fixes this field; what can change is the autoscaler bounds "
            f"(annotations {MIN_SIZE_ANNOTATION} and {MAX_SIZE_ANNOTATION}) and other labels and annotations")


def _pool(store: Any, name: str) -> NodePoolSpec:
    return next(p for p in store.live.spec.node_pools if p.name == name)


def _replicas_warning(name: str, asked: int, desired: int) -> str:
    return (f"MachineDeployment {NAMESPACE}/{name} is scaled by the cluster autoscaler (annotations "
            f"{MIN_SIZE_ANNOTATION} and {MAX_SIZE_ANNOTATION}): the autoscaler owns spec.replicas, so this replica "
            f"count ({asked}) is not applied and the pool is driven to {desired} nodes; change the min-size/max-size "
            "annotations instead")


_JSON_TYPES = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


def _check_string_values(meta: Obj) -> None:
    # the apiserver's decoding error, with the fix: an actuator writing `min-size: 3` gets told to quote it
    for field in ("labels", "annotations"):
        values = meta.get(field)
        bad = [v for v in values.values() if not isinstance(v, str)] if isinstance(values, dict) else []
        if bad:
            raise bad_request(f'{KIND} in version "{VERSION}" cannot be handled as a {KIND}: json: cannot unmarshal '
                              f"{_JSON_TYPES.get(type(bad[0]), 'null')} into Go struct field "
                              f'ObjectMeta.metadata.{field} of type string (values are strings: write "3", not 3)')


def plan_machinedeployment(store: Any, view: Any, name: str, cur: Obj, new: Obj, *, update: bool) -> Plan:
    """Validate a patched (`update` False) or replacing (`update` True) MachineDeployment and plan its effect."""
    check_identity(new, name, NAMESPACE, KIND, API_VERSION)
    meta = new["metadata"]
    if update and not meta.get("resourceVersion"):
        raise invalid(KIND, GROUP, name, [("metadata.resourceVersion",
                                           "Invalid value: 0x0: must be specified for an update")])
    _check_string_values(meta)
    labels = str_map(meta.get("labels"), "metadata.labels", KIND) or {}
    annotations = str_map(meta.get("annotations"), "metadata.annotations", KIND) or {}
    spec = new.get("spec")
    if not isinstance(spec, dict):
        raise invalid(KIND, GROUP, name, [("spec", "Required value")])
    pool = _pool(store, name)
    causes: Causes = []
    bounds = _bounds(annotations, pool, causes)
    raw = spec.get("replicas")
    asked = None if raw is None else as_int(raw, "MachineDeploymentSpec.spec.replicas", KIND)
    if asked is not None and asked < 0:
        causes.append(("spec.replicas", f"Invalid value: {asked}: must be greater than or equal to 0"))
    for key in ("clusterName", "selector", "template"):
        if spec.get(key) is None:
            causes.append((f"spec.{key}", "Required value"))
    causes += [(path, _fixed(path, value, pool)) for path, value in _changes(cur["spec"], spec, "spec")
               if value is not None]
    if causes:
        raise invalid(KIND, GROUP, name, causes)
    st = cur["status"]
    own = {k: v for k, v in annotations.items() if k not in _BOUND_ANNOTATIONS}
    projected = machine_deployment(pool, cluster=cur["spec"]["clusterName"], bounds=bounds, nodes=st["replicas"],
                                   ready=st["readyReplicas"], uid=cur["metadata"]["uid"],
                                   created=parse_ts(cur["metadata"]["creationTimestamp"]) or view.now, now=view.now,
                                   labels=labels, annotations=own)
    old = {c["type"]: c for c in st.get("conditions", [])}
    projected["status"]["conditions"] = [  # unchanged conditions keep their transition times
        old[c["type"]] if c["type"] in old and old[c["type"]]["status"] == c["status"] else c
        for c in projected["status"]["conditions"]]
    restore_system_meta(projected, cur, generation_bump=projected["spec"] != cur["spec"])
    plan = Plan(projected)
    if asked is not None and asked != cur["spec"]["replicas"]:
        plan.warnings.append(_replicas_warning(name, asked, projected["spec"]["replicas"]))
    live = store.live
    if bounds != live.pool_bounds()[name]:
        plan.actions.append(lambda: live.set_pool_bounds(name, *bounds))
    plan.overlay = ((BACKEND, NAMESPACE, name), Overlay(labels=labels, annotations=own))
    return plan


def plan_scale(name: str, cur_scale: Obj, new: Obj) -> Plan:
    """A write to `machinedeployments/<name>/scale`: validated, never applied (the autoscaler owns replicas)."""
    check_identity(new, name, NAMESPACE, "Scale", "autoscaling/v1")
    raw = (new.get("spec") or {}).get("replicas", 0)
    asked = 0 if raw is None else as_int(raw, "ScaleSpec.spec.replicas", "Scale")
    if asked < 0:
        raise invalid("Scale", "autoscaling", name,
                      [("spec.replicas", f"Invalid value: {asked}: must be greater than or equal to 0")])
    plan = Plan(copy.deepcopy(cur_scale))
    if asked != cur_scale["spec"]["replicas"]:
        plan.warnings.append(_replicas_warning(name, asked, cur_scale["spec"]["replicas"]))
    return plan
