"""What each kind of change reads from an object, the patch that makes it, and the change that undoes it.

The fields a change touches are read into a flat dict of plain JSON values (`before`/`after` in the audit
record, what guardrails compare and what a rollback restores). Quantities are numbers here (cores, bytes) and
strings only in patches (`250m`, `512Mi`), so comparisons never depend on how a quantity was spelt. HPA scaling
policies are lists of `{"type", "value", "period_s"}` dicts: the same shape in a fresh read and in an audit record
read back from JSON, so the two compare equal.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from aiops.actuator.recommendation import (
    BEHAVIOR_FIELDS, Change, HPAChange, NodePoolChange, ReplicasChange, ResourcesChange, Target,
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


# What the API server fills in for a missing behavior side (autoscaling/v2 defaults, Kubernetes
# pkg/apis/autoscaling/v2/defaults.go): reading them for an HPA without behavior gives a rollback a definite
# state to restore instead of "unset", which a merge patch could not restore.
_PCT100 = {"type": "Percent", "value": 100, "period_s": 15}
DEFAULT_BEHAVIOR: dict[str, dict[str, Any]] = {
    "scaleUp": {"stabilization_s": 0, "select": "Max",
                "policies": [_PCT100, {"type": "Pods", "value": 4, "period_s": 15}]},
    "scaleDown": {"stabilization_s": 300, "select": "Max", "policies": [_PCT100]},
}
_SIDES = (("scaleUp", "scale_up"), ("scaleDown", "scale_down"))


def _policies(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, list) or not raw:
        return None
    ps = [p if isinstance(p, dict) else {} for p in raw]
    return [{"type": p.get("type"), "value": p.get("value"), "period_s": p.get("periodSeconds")} for p in ps]


def _behavior_fields(spec: Obj, with_policies: bool) -> dict[str, Any]:
    beh = spec.get("behavior") or {}
    out: dict[str, Any] = {}
    for side, key in _SIDES:
        rules, default = beh.get(side) or {}, DEFAULT_BEHAVIOR[side]
        window = rules.get("stabilizationWindowSeconds")
        out[f"{key}_stabilization_s"] = default["stabilization_s"] if window is None else window
        if with_policies:
            out[f"{key}_policies"] = _policies(rules.get("policies")) or copy.deepcopy(default["policies"])
            out[f"{key}_select"] = rules.get("selectPolicy") or default["select"]
    return out


def _cpu_metric(spec: Obj) -> int | None:
    for m in spec.get("metrics") or []:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            return (m["resource"].get("target") or {}).get("averageUtilization")
    return None


def fields(change: Change, obj: Obj, target: Target) -> dict[str, Any]:
    """The values, in `obj`, of the fields `change` sets (None where the object leaves one unset; for an HPA's
    behavior, the Kubernetes defaults the object runs with)."""
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
        # policies only for a change that sets some: the audit records of other HPA changes keep their shape
        with_policies = any(getattr(change, k) is not None for k in BEHAVIOR_FIELDS)
        return {"min_replicas": spec.get("minReplicas", 1), "max_replicas": spec.get("maxReplicas"),
                "target_cpu_utilization": _cpu_metric(spec), **_behavior_fields(spec, with_policies)}
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


def wanted(change: Change) -> dict[str, Any]:
    """The fields the change sets and their new values (unset fields of the change are left alone), in the shape
    `fields` reads them (JSON: policies as lists of dicts)."""
    return {k: v for k, v in change.model_dump(mode="json").items() if k != "type" and v is not None}


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
        # only the fields set: a merge patch merges objects key by key, so the side's other fields
        # (stabilizationWindowSeconds, tolerance, ...) stay, and replaces the `policies` list whole
        for side, key in _SIDES:
            rules: Obj = {}
            if f"{key}_stabilization_s" in w:
                rules["stabilizationWindowSeconds"] = w[f"{key}_stabilization_s"]
            if f"{key}_policies" in w:
                rules["policies"] = [{"type": p["type"], "value": p["value"], "periodSeconds": p["period_s"]}
                                     for p in w[f"{key}_policies"]]
            if f"{key}_select" in w:
                rules["selectPolicy"] = w[f"{key}_select"]
            if rules:
                s.setdefault("behavior", {})[side] = rules
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


def _same(a: Any, b: Any) -> bool:
    """Equal as the HPA sees them: the order of policies does not matter (each one limits on its own)."""
    if isinstance(a, list) and isinstance(b, list):
        key = lambda p: json.dumps(p, sort_keys=True)  # noqa: E731 - policies are dicts: no natural order
        return sorted(a, key=key) == sorted(b, key=key)
    return a == b


def significant(change: Change, before: dict[str, Any]) -> float:
    """The largest relative step among the fields the change sets (inf where a field was unset before, and where
    a non-numeric field such as a policy list or select policy differs; 0 where it is the same)."""
    steps = []
    for k, v in wanted(change).items():
        old = before.get(k)
        if old is None:
            steps.append(float("inf"))
        elif not _number(v) or not _number(old):
            steps.append(0.0 if _same(v, old) else float("inf"))
        elif old == 0:
            steps.append(0.0 if v == 0 else float("inf"))
        else:
            steps.append(abs(v / old - 1.0))
    return max(steps) if steps else 0.0


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def normalise(change: Change) -> Change:
    """The change with the values its patch will really send (CPU in whole millicores, memory in whole bytes),
    so guardrails judge exactly what would be applied."""
    if not isinstance(change, ResourcesChange):
        return change
    vals = {k: (max(1, round(v * 1000)) / 1000 if k.startswith("cpu") else float(max(1, int(round(v)))))
            for k, v in wanted(change).items()}
    return ResourcesChange(**vals)
