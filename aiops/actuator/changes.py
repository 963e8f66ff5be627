"""What each kind of change reads from an object, the patch that makes it, and the change that undoes it.

The fields a change touches are read into a flat dict of plain numbers (`before`/`after` in the audit record,
what guardrails compare and what a rollback restores). Quantities are numbers here (cores, bytes) and strings
only in patches (`250m`, `512Mi`), so comparisons never depend on how a quantity was spelt.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from aiops.actuator.recommendation import (
    Change, HPAChange, NodePoolChange, ReplicasChange, ResourcesChange, Target,
)

Obj = dict[str, Any]
MiB = 2**20
CAPI_MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
CAPI_MAX = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def parse_quantity(q: Any) -> float:
    from kubernetes.utils import parse_quantity as _parse  # the client's own parser: same rules as the apiserver

    return float(_parse(q if isinstance(q, (str, int, float, Decimal)) else str(q)))


def cpu_quantity(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def memory_quantity(nbytes: float) -> str:
    n = int(round(nbytes))
    return f"{n // MiB}Mi" if n % MiB == 0 else str(n)


def _container(obj: Obj, name: str | None) -> Obj:
    ctrs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for c in ctrs:
        if c.get("name") == name:
            return c
    raise KeyError(f"container {name!r} not found; the object has {[c.get('name') for c in ctrs]}")


def _cpu_metric(spec: Obj) -> int | None:
    for m in spec.get("metrics") or []:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            return (m["resource"].get("target") or {}).get("averageUtilization")
    return None


def fields(change: Change, obj: Obj, target: Target) -> dict[str, float | int | None]:
    """The values, in `obj`, of the fields `change` sets (None where the object leaves one unset)."""
    spec = obj.get("spec") or {}
    if isinstance(change, ReplicasChange):
        return {"replicas": spec.get("replicas", 1)}
    if isinstance(change, ResourcesChange):
        res = _container(obj, target.container).get("resources") or {}
        out: dict[str, float | int | None] = {}
        for sect in ("requests", "limits"):
            for r in ("cpu", "memory"):
                raw = (res.get(sect) or {}).get(r)
                out[f"{r}_{sect[:-1]}"] = None if raw is None else parse_quantity(raw)
        return out
    if isinstance(change, HPAChange):
        beh = spec.get("behavior") or {}
        return {"min_replicas": spec.get("minReplicas", 1), "max_replicas": spec.get("maxReplicas"),
                "target_cpu_utilization": _cpu_metric(spec),
                "scale_up_stabilization_s": (beh.get("scaleUp") or {}).get("stabilizationWindowSeconds"),
                "scale_down_stabilization_s": (beh.get("scaleDown") or {}).get("stabilizationWindowSeconds")}
    if isinstance(change, NodePoolChange):
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        return {"min_nodes": _int_or_none(ann.get(CAPI_MIN)), "max_nodes": _int_or_none(ann.get(CAPI_MAX)),
                "nodes": spec.get("replicas")}
    raise TypeError(f"unknown change {type(change).__name__}")


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def wanted(change: Change) -> dict[str, float | int]:
    """The fields the change sets and their new values (unset fields of the change are left alone)."""
    return {k: v for k, v in change.model_dump().items() if k != "type" and v is not None}


def projected(change: Change, before: dict[str, Any]) -> dict[str, Any]:
    """`before` with the change's values: what the object's fields will be after the change."""
    return {**before, **wanted(change)}


def patch(change: Change, obj: Obj, target: Target) -> tuple[Obj, str]:
    """(body, content type) of the patch that makes the change, with the object's resourceVersion as precondition."""
    rv = obj["metadata"]["resourceVersion"]
    body: Obj = {"metadata": {"resourceVersion": rv}}
    w = wanted(change)
    if isinstance(change, ReplicasChange):
        body["spec"] = {"replicas": change.replicas}
        return body, MERGE
    if isinstance(change, ResourcesChange):
        res: Obj = {}
        for key, v in w.items():
            r, sect = key.split("_")
            q = cpu_quantity(v) if r == "cpu" else memory_quantity(v)
            res.setdefault(sect + "s", {})[r] = q
        # strategic merge: containers merge by name, so the other containers and fields stay untouched
        body["spec"] = {"template": {"spec": {"containers": [{"name": target.container, "resources": res}]}}}
        return body, STRATEGIC
    if isinstance(change, HPAChange):
        spec = obj.get("spec") or {}
        s: Obj = {}
        if change.min_replicas is not None:
            s["minReplicas"] = change.min_replicas
        if change.max_replicas is not None:
            s["maxReplicas"] = change.max_replicas
        if change.target_cpu_utilization is not None:
            metrics = copy.deepcopy(spec.get("metrics") or [])
            cpu = [m for m in metrics if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"]
            if cpu:
                cpu[0]["resource"]["target"] = {"type": "Utilization",
                                                "averageUtilization": change.target_cpu_utilization}
            else:
                metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": change.target_cpu_utilization}}})
            s["metrics"] = metrics  # a list: merge patch replaces it whole, so it carries the others along
        for side, key in (("scaleUp", "scale_up_stabilization_s"), ("scaleDown", "scale_down_stabilization_s")):
            if w.get(key) is not None:
                s.setdefault("behavior", {})[side] = {"stabilizationWindowSeconds": w[key]}
        body["spec"] = s
        return body, MERGE
    if isinstance(change, NodePoolChange):
        ann: Obj = {}
        if change.min_nodes is not None:
            ann[CAPI_MIN] = str(change.min_nodes)
        if change.max_nodes is not None:
            ann[CAPI_MAX] = str(change.max_nodes)
        body["metadata"]["annotations"] = ann
        return body, MERGE
    raise TypeError(f"unknown change {type(change).__name__}")


def inverse(change: Change, before: dict[str, Any]) -> Change:
    """The change that restores `before` (the audit record's values) for the fields `change` set."""
    back = {k: before.get(k) for k in wanted(change)}
    missing = [k for k, v in back.items() if v is None]
    if missing:
        raise ValueError(f"cannot roll back: the object had no value for {', '.join(missing)} before the change "
                         "(removing a field is not a change the actuator makes)")
    return type(change)(**back)


def significant(change: Change, before: dict[str, Any]) -> float:
    """The largest relative step among the fields the change sets (inf where a field was unset before)."""
    steps = []
    for k, v in wanted(change).items():
        old = before.get(k)
        if old is None:
            steps.append(float("inf"))
        elif old == 0:
            steps.append(0.0 if v == 0 else float("inf"))
        else:
            steps.append(abs(v / old - 1.0))
    return max(steps) if steps else 0.0


def normalise(change: Change) -> Change:
    """The change with the values its patch will really send (CPU in whole millicores, memory in whole bytes),
    so guardrails judge exactly what would be applied."""
    if not isinstance(change, ResourcesChange):
        return change
    vals = {k: (max(1, round(v * 1000)) / 1000 if k.startswith("cpu") else float(max(1, int(round(v)))))
            for k, v in wanted(change).items()}
    return ResourcesChange(**vals)
