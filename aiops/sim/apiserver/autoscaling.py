"""Validate a written HorizontalPodAutoscaler and turn it into `Engine.set_hpa` (autoscaling/v2 and v1).

The simulator's HPA scales on CPU utilisation of requests with the autoscaling/v2 behavior (stabilisation
windows, policies): exactly what `HPASpec` holds. Anything else a real HPA can say (other metrics, other target
kinds) is refused with 422 and a message saying what the simulated cluster supports.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from aiops.sim.apiserver import objects as o
from aiops.sim.apiserver import workloads as wl
from aiops.sim.apiserver.errors import invalid
from aiops.sim.apiserver.store import Overlay
from aiops.sim.apiserver.units import parse_quantity, ts
from aiops.sim.apiserver.writes import Causes, Obj, Plan, as_int, check_identity, restore_system_meta, str_map
from aiops.sim.spec import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPAScalingPolicy, HPAScalingRules, HPASpec


def _rules(raw: Any, path: str, default: HPAScalingRules, causes: Causes) -> HPAScalingRules:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        causes.append((path, "Invalid value: must be an object"))
        return default
    window = raw.get("stabilizationWindowSeconds", default.stabilization_window_s)
    if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 3600:
        causes.append((f"{path}.stabilizationWindowSeconds",
                       f"Invalid value: {window!r}: must be greater than or equal to 0 and less than or equal to 3600"))
        window = default.stabilization_window_s
    select = raw.get("selectPolicy") or "Max"
    if select not in ("Max", "Min", "Disabled"):
        causes.append((f"{path}.selectPolicy", f'Unsupported value: "{select}": supported values: "Disabled", '
                                               '"Max", "Min"'))
        select = "Max"
    raw_policies = raw.get("policies")
    policies: list[HPAScalingPolicy] = []
    if raw_policies is None:
        policies = list(default.policies)
    elif not isinstance(raw_policies, list) or not raw_policies:
        causes.append((f"{path}.policies", "Required value: must specify at least one Policy"))
    else:
        for i, p in enumerate(raw_policies):
            pp = f"{path}.policies[{i}]"
            ptype, value, period = (p or {}).get("type"), (p or {}).get("value"), (p or {}).get("periodSeconds")
            ok = True
            if ptype not in ("Pods", "Percent"):
                causes.append((f"{pp}.type", f'Unsupported value: "{ptype}": supported values: "Percent", "Pods"'))
                ok = False
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                causes.append((f"{pp}.value", f"Invalid value: {value!r}: must be greater than zero"))
                ok = False
            if not isinstance(period, int) or isinstance(period, bool) or not 0 < period <= 1800:
                causes.append((f"{pp}.periodSeconds",
                               f"Invalid value: {period!r}: must be greater than zero and less than or equal to 1800"))
                ok = False
            if ok:
                policies.append(HPAScalingPolicy(type=ptype, value=value, period_s=period))
    if causes or not policies:
        return default
    return HPAScalingRules(stabilization_window_s=window, policies=tuple(policies), select_policy=select)


def hpa_from_v2(obj: Obj, name: str, tolerance: float) -> tuple[str, HPASpec]:
    """(target deployment name, HPASpec) from an autoscaling/v2 object; 422 with causes if it cannot be simulated."""
    causes: Causes = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name, [("spec", "Required value")])
    ref = spec.get("scaleTargetRef") or {}
    target = ref.get("name")
    if not target:
        causes.append(("spec.scaleTargetRef.name", "Required value"))
    if ref.get("kind") != "Deployment":
        causes.append(("spec.scaleTargetRef.kind", f'Unsupported value: "{ref.get("kind") or ""}": the simulated '
                                                    'cluster autoscales Deployments only'))
    if ref.get("apiVersion") not in (None, "", "apps/v1"):
        causes.append(("spec.scaleTargetRef.apiVersion", f'Unsupported value: "{ref.get("apiVersion")}": '
                                                          'supported values: "apps/v1"'))
    mn = spec.get("minReplicas", 1)
    mn = 1 if mn is None else as_int(mn, "HorizontalPodAutoscalerSpec.spec.minReplicas", "HorizontalPodAutoscaler")
    mx = spec.get("maxReplicas")
    if mx is None:
        causes.append(("spec.maxReplicas", "Required value"))
        mx = max(mn, 1)
    mx = as_int(mx, "HorizontalPodAutoscalerSpec.spec.maxReplicas", "HorizontalPodAutoscaler")
    if mn < 1:
        causes.append(("spec.minReplicas", f"Invalid value: {mn}: must be greater than or equal to 1"))
    if mx < 1:
        causes.append(("spec.maxReplicas", f"Invalid value: {mx}: must be greater than 0"))
    elif mx < mn:
        causes.append(("spec.maxReplicas", f"Invalid value: {mx}: must be greater than or equal to `minReplicas`"))
    metrics = spec.get("metrics") or []
    util = 80
    if metrics:
        m = metrics[0] if isinstance(metrics, list) else None
        res = (m or {}).get("resource") or {}
        tgt = res.get("target") or {}
        if (not isinstance(metrics, list) or len(metrics) != 1 or (m or {}).get("type") != "Resource"
                or res.get("name") != "cpu" or tgt.get("type") != "Utilization"):
            causes.append(("spec.metrics", "Unsupported value: the simulated cluster scales on exactly one metric: "
                                           "type Resource, name cpu, target type Utilization"))
        else:
            u = tgt.get("averageUtilization")
            if not isinstance(u, int) or isinstance(u, bool) or u <= 0:
                causes.append(("spec.metrics[0].resource.target.averageUtilization",
                               f"Invalid value: {u!r}: must be greater than 0"))
            elif u > 500:
                causes.append(("spec.metrics[0].resource.target.averageUtilization",
                               f"Invalid value: {u}: the simulated cluster accepts at most 500"))
            else:
                util = u
    behavior = spec.get("behavior") or {}
    up = _rules(behavior.get("scaleUp"), "spec.behavior.scaleUp", DEFAULT_SCALE_UP, causes)
    down = _rules(behavior.get("scaleDown"), "spec.behavior.scaleDown", DEFAULT_SCALE_DOWN, causes)
    for side in ("scaleUp", "scaleDown"):  # k8s 1.33 per-direction tolerance; the simulator has one
        raw = (behavior.get(side) or {}).get("tolerance")
        if raw is not None:
            try:
                tolerance = parse_quantity(raw)
            except ValueError as exc:
                causes.append((f"spec.behavior.{side}.tolerance", f"Invalid value: {raw!r}: {exc}"))
    if causes:
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name, causes)
    try:
        return target, HPASpec(min_replicas=mn, max_replicas=mx, target_cpu_utilization=util / 100,
                               tolerance=tolerance, scale_up=up, scale_down=down)
    except ValidationError as exc:
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name,
                      [("spec", f"Invalid value: {e['msg']}") for e in exc.errors()]) from None


def hpa_v1_to_v2(v1: Obj, base: Obj | None) -> Obj:
    """An autoscaling/v1 body as autoscaling/v2, keeping `base`'s behavior (v1 has none)."""
    spec = v1.get("spec") or {}
    cpu = spec.get("targetCPUUtilizationPercentage")
    v2spec: Obj = {"scaleTargetRef": spec.get("scaleTargetRef"), "minReplicas": spec.get("minReplicas", 1),
                   "maxReplicas": spec.get("maxReplicas"),
                   "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                       "type": "Utilization", "averageUtilization": 80 if cpu is None else cpu}}}]}
    if base is not None and "behavior" in base.get("spec", {}):
        v2spec["behavior"] = copy.deepcopy(base["spec"]["behavior"])
    out = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
           "metadata": copy.deepcopy(v1.get("metadata") or {}), "spec": v2spec}
    if base is not None:
        out["status"] = copy.deepcopy(base.get("status", {}))
    return out


def plan_hpa(store: Any, view: Any, ns: str, name: str, cur: Obj | None, new: Obj) -> Plan:
    """Update (cur given) or create (cur None) an HPA from an autoscaling/v2 body."""
    check_identity(new, name, ns, "HorizontalPodAutoscaler", "autoscaling/v2")
    labels = str_map(new["metadata"].get("labels"), "metadata.labels", "HorizontalPodAutoscaler")
    annotations = str_map(new["metadata"].get("annotations"), "metadata.annotations", "HorizontalPodAutoscaler")
    old_target = view.hpa_target.get((ns, name)) if cur is not None else None
    w_old = view.workloads.get((ns, old_target)) if old_target else None
    tolerance = w_old.hpa.tolerance if (w_old is not None and w_old.hpa is not None) else 0.1
    target, hpa = hpa_from_v2(new, name, tolerance)
    w = view.workloads.get((ns, target))
    if w is None:
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name, [(
            "spec.scaleTargetRef.name", f'Invalid value: "{target}": no Deployment "{target}" in namespace "{ns}"; '
                                        "the simulated cluster attaches HPAs to its own deployments")])
    if old_target is not None and target != old_target:
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name, [(
            "spec.scaleTargetRef.name", f'Invalid value: "{target}": the simulated cluster cannot re-target an HPA '
                                        f'(it scales "{old_target}"); delete it and create a new one')])
    if cur is None and w.hpa is not None:
        other = store.hpa_name(ns, target)
        raise invalid("HorizontalPodAutoscaler", "autoscaling", name, [(
            "spec.scaleTargetRef.name", f'Invalid value: "{target}": Deployment "{target}" already has '
                                        f'HorizontalPodAutoscaler "{other}"; the simulated cluster runs one per '
                                        "deployment")])
    now = view.now
    if cur is not None:
        projected = copy.deepcopy(new)
        projected["spec"] = wl.hpa_spec_json(hpa, target)
        restore_system_meta(projected, cur, generation_bump=projected["spec"] != cur["spec"])
        projected["status"] = cur.get("status", {})
    else:
        projected = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
                     "metadata": {"name": name, "namespace": ns,
                                  "uid": o.object_uid(store.cluster, "HorizontalPodAutoscaler", ns, name,
                                                      store.hpa_incarnation(ns, name) + 1),
                                  "resourceVersion": "0", "generation": 1, "creationTimestamp": ts(now)},
                     "spec": wl.hpa_spec_json(hpa, target),
                     "status": {"currentReplicas": w.spec_replicas, "desiredReplicas": 0}}
    if labels:
        projected["metadata"]["labels"] = labels
    else:
        projected["metadata"].pop("labels", None)
    if annotations:
        projected["metadata"]["annotations"] = annotations
    else:
        projected["metadata"].pop("annotations", None)
    plan = Plan(projected)
    live = store.live
    if cur is None:
        plan.actions.append(lambda: store.note_hpa_created(ns, name, target, now))
    if cur is None or w.hpa != hpa:
        plan.actions.append(lambda: live.set_hpa(ns, target, hpa))
    plan.overlay = (("hpa", ns, name), Overlay(labels=labels or {}, annotations=annotations or {}))
    return plan
