"""Deployments, ReplicaSets, their Scale, and HorizontalPodAutoscalers as the apiserver returns them.

Pure functions like `objects.py`: the store passes in uids, creation times and pod lists, and sets
resourceVersions, generations and condition times afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiops.sim.apiserver.objects import REVISION_ANNOTATION, condition, object_meta, template_hash
from aiops.sim.apiserver.units import cpu_quantity
from aiops.sim.spec import HPAScalingRules, HPASpec
from aiops.sim.state import PodState, WorkloadState

Obj = dict[str, Any]


# --- deployments and replicasets ------------------------------------------------------------------------------


def deployment(w: WorkloadState, *, uid: str, created: datetime, template: Obj, pods: list[PodState],
               now: datetime) -> Obj:
    """`template` is the current pod template (labels `app=<name>`, the workload's container)."""
    current = [p for p in pods if p.replicaset == w.replicaset]
    ready = sum(p.ready for p in pods)
    updated = len(current)
    total = len(pods)
    max_unavailable = int(w.spec_replicas * 0.25)  # RollingUpdate maxUnavailable 25%, rounded down
    available_ok = ready >= w.spec_replicas - max_unavailable
    complete = updated == w.spec_replicas and total == w.spec_replicas and ready >= w.spec_replicas
    status: Obj = {
        "observedGeneration": 0,  # set by the store
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    if total - ready > 0 or w.spec_replicas - ready > 0:
        status["unavailableReplicas"] = max(total - ready, w.spec_replicas - ready, 0)
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "replicas")}
    lu = {"lastUpdateTime": True}
    status["conditions"] = [
        condition("Available", available_ok, "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
              "Deployment has minimum availability." if available_ok else
              "Deployment does not have minimum availability.", now, created, **lu),
        condition("Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
              f'ReplicaSet "{w.replicaset}" has successfully progressed.' if complete else
              f'ReplicaSet "{w.replicaset}" is progressing.', now, created, **lu),
    ]
    selector = {"app": w.name}
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": object_meta(
            w.name, w.namespace, uid, created, generation=1,
            labels={"app": w.name, **w.labels},
            annotations={**w.annotations, REVISION_ANNOTATION: str(w.revision)},
        ),
        "spec": {
            "replicas": w.spec_replicas,
            "selector": {"matchLabels": selector},
            "template": template,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": status,
    }


def replicaset(w: WorkloadState, name: str, *, uid: str, deploy_uid: str, created: datetime, revision: int,
               template: Obj, replicas: int, pods: list[PodState]) -> Obj:
    h = template_hash(w.name, name)
    tmpl = {**template, "metadata": {**template.get("metadata", {}),
                                      "labels": {**template.get("metadata", {}).get("labels", {}),
                                                 "pod-template-hash": h}}}
    labels = tmpl["metadata"]["labels"]
    ready = sum(p.ready for p in pods)
    status: Obj = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                   "availableReplicas": ready, "observedGeneration": 0}
    status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
    max_replicas = replicas + (int(-(-replicas * 0.25 // 1)) if replicas else 0)
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": object_meta(
            name, w.namespace, uid, created, generation=1,
            labels=dict(labels),
            annotations={"deployment.kubernetes.io/desired-replicas": str(w.spec_replicas),
                         "deployment.kubernetes.io/max-replicas": str(max(max_replicas, w.spec_replicas)),
                         REVISION_ANNOTATION: str(revision)},
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name, "uid": deploy_uid,
                              "controller": True, "blockOwnerDeletion": True}],
        ),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": w.name, "pod-template-hash": h}},
                 "template": tmpl},
        "status": status,
    }


def scale(deploy: Obj) -> Obj:
    """The autoscaling/v1 Scale of a Deployment (its `/scale` subresource)."""
    sel = deploy["spec"]["selector"]["matchLabels"]
    m = deploy["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": deploy["spec"]["replicas"]},
        "status": {"replicas": deploy["status"].get("replicas", 0),
                   "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items()))},
    }


# --- horizontal pod autoscalers -------------------------------------------------------------------------------


def _rules_json(r: HPAScalingRules) -> Obj:
    return {
        "stabilizationWindowSeconds": r.stabilization_window_s,
        "selectPolicy": r.select_policy,
        "policies": [{"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in r.policies],
    }


def hpa_spec_json(h: HPASpec, target: str) -> Obj:
    return {
        "scaleTargetRef": {"kind": "Deployment", "name": target, "apiVersion": "apps/v1"},
        "minReplicas": h.min_replicas,
        "maxReplicas": h.max_replicas,
        "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": round(h.target_cpu_utilization * 100)}}}],
        "behavior": {"scaleUp": _rules_json(h.scale_up), "scaleDown": _rules_json(h.scale_down)},
    }


def hpa(w: WorkloadState, name: str, *, uid: str, created: datetime, pods: list[PodState], now: datetime) -> Obj:
    """The autoscaling/v2 HorizontalPodAutoscaler of a workload (which must have `w.hpa`)."""
    h = w.hpa
    assert h is not None
    desired = w.hpa_desired_replicas if w.hpa_desired_replicas is not None else w.spec_replicas
    status: Obj = {"observedGeneration": 0, "currentReplicas": len(pods), "desiredReplicas": desired}
    util = w.hpa_current_utilization
    if util is not None:
        avg_cores = util * w.resources.cpu_request
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageValue": cpu_quantity(avg_cores), "averageUtilization": round(util * 100)}}}]
    limited_hi = desired >= h.max_replicas and (util is None or util > h.target_cpu_utilization)
    limited_lo = desired <= h.min_replicas and (util is None or util < h.target_cpu_utilization)
    status["conditions"] = [
        condition("AbleToScale", True, "ReadyForNewScale", "recommended size matches current size", now, created),
        condition("ScalingActive", util is not None, "ValidMetricFound" if util is not None else "FailedGetResourceMetric",
              "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage "
              "of request)" if util is not None else "the HPA was unable to compute the replica count: no metrics "
              "returned from resource metrics API", now, created),
        condition("ScalingLimited", limited_hi or limited_lo,
              "TooManyReplicas" if limited_hi else "TooFewReplicas" if limited_lo else "DesiredWithinRange",
              "the desired replica count is more than the maximum replica count" if limited_hi else
              "the desired replica count is less than the minimum replica count" if limited_lo else
              "the desired count is within the acceptable range", now, created),
    ]
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": object_meta(name, w.namespace, uid, created, generation=1),
        "spec": hpa_spec_json(h, w.name),
        "status": status,
    }


def hpa_to_v1(o: Obj) -> Obj:
    """autoscaling/v2 → autoscaling/v1 (what the apiserver's conversion does, minus the alpha annotations)."""
    spec, st = o["spec"], o.get("status", {})
    cpu = next((m["resource"]["target"].get("averageUtilization") for m in spec.get("metrics", [])
                if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"), None)
    v1spec: Obj = {"scaleTargetRef": spec["scaleTargetRef"], "minReplicas": spec.get("minReplicas", 1),
                   "maxReplicas": spec["maxReplicas"]}
    if cpu is not None:
        v1spec["targetCPUUtilizationPercentage"] = cpu
    v1st: Obj = {k: st[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                 if k in st}
    v1st.setdefault("currentReplicas", 0)
    v1st.setdefault("desiredReplicas", 0)
    for m in st.get("currentMetrics", []) or []:
        if m.get("type") == "Resource" and m["resource"].get("name") == "cpu":
            u = m["resource"]["current"].get("averageUtilization")
            if u is not None:
                v1st["currentCPUUtilizationPercentage"] = u
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1", "metadata": o["metadata"],
            "spec": v1spec, "status": v1st}
