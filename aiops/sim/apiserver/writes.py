"""Validate a written object and turn it into engine calls: Deployment and its Scale (HPAs: `autoscaling.py`).

Each `plan_*` checks the new object the way the apiserver's validation does (same field paths and wording, 422
`Invalid` with causes), and returns a `Plan`: the engine calls to make, what to remember in the store's overlay,
and the object as it would be stored (what `dryRun=All` answers). Nothing here touches the engine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aiops.sim.apiserver import objects as o
from aiops.sim.apiserver.errors import bad_request, invalid
from aiops.sim.apiserver.selectors import Requirement, labels_match
from aiops.sim.apiserver.store import Overlay
from aiops.sim.apiserver.units import parse_quantity
from aiops.sim.spec import Resources
from aiops.sim.state import WorkloadState

Obj = dict[str, Any]
Causes = list[tuple[str, str]]


@dataclass
class Plan:
    projected: Obj
    actions: list[Callable[[], None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # sent as `Warning` headers
    overlay: tuple[tuple[str, str, str], Any] | None = None  # (store key, Overlay)


def as_int(value: Any, path: str, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: json: cannot unmarshal "
                          f"{type(value).__name__} into Go struct field {path} of type int32")
    return value


def str_map(value: Any, path: str, kind: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: json: cannot unmarshal "
                          f"{path} into Go value of type map[string]string")
    return dict(value)


def check_identity(new: Obj, name: str, namespace: str | None, kind: str, api_version: str | tuple[str, ...]) -> None:
    """Name/namespace/kind of a written body agree with the URL (400 BadRequest otherwise, as the apiserver)."""
    if not isinstance(new, dict):
        raise bad_request(f"the body of the request must be a JSON object ({kind})")
    meta = new.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    if meta.get("name") not in (None, "", name):
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    meta["name"] = name
    if namespace is not None:
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    if new.get("kind") not in (None, "", kind):
        raise bad_request(f"the kind of the object ({new.get('kind')}) does not match the kind served here ({kind})")
    versions = (api_version,) if isinstance(api_version, str) else api_version
    if new.get("apiVersion") not in (None, "", *versions):
        raise bad_request(f"the apiVersion of the object ({new.get('apiVersion')}) does not match the URL "
                          f"({versions[0]})")


def restore_system_meta(new: Obj, cur: Obj, *, generation_bump: bool) -> None:
    m, c = new["metadata"], cur["metadata"]
    for k in ("uid", "creationTimestamp", "resourceVersion", "generateName", "ownerReferences"):
        if k in c:
            m[k] = c[k]
        else:
            m.pop(k, None)
    m.pop("managedFields", None)
    if "generation" in c:
        m["generation"] = c["generation"] + (1 if generation_bump else 0)
    new["kind"], new["apiVersion"] = cur["kind"], cur["apiVersion"]


# --- deployments ----------------------------------------------------------------------------------------------


def _resources(ctr: Obj, path: str, causes: Causes) -> Resources | None:
    res = ctr.get("resources") or {}
    if not isinstance(res, dict):
        causes.append((f"{path}.resources", "Invalid value: must be an object"))
        return None
    parsed: dict[str, dict[str, float]] = {"requests": {}, "limits": {}}
    for section in ("requests", "limits"):
        values = res.get(section) or {}
        for rname, raw in values.items():
            if rname not in ("cpu", "memory"):
                causes.append((f"{path}.resources.{section}[{rname}]",
                               f"Unsupported value: {rname!r}: the simulated cluster models cpu and memory only"))
                continue
            try:
                v = parse_quantity(raw)
            except ValueError as exc:
                causes.append((f"{path}.resources.{section}[{rname}]", f"Invalid value: {raw!r}: {exc}"))
                continue
            if v < 0:
                causes.append((f"{path}.resources.{section}[{rname}]",
                               f"Invalid value: {raw!r}: must be greater than or equal to 0"))
                continue
            parsed[section][rname] = v
    for rname in ("cpu", "memory"):
        req, lim = parsed["requests"].get(rname), parsed["limits"].get(rname)
        if req is not None and lim is not None and req > lim:
            causes.append((f"{path}.resources.requests",
                           f'Invalid value: "{res["requests"][rname]}": must be less than or equal to {rname} '
                           f'limit of {res["limits"][rname]}'))
        if req is None and lim is None:
            causes.append((f"{path}.resources.requests[{rname}]",
                           f"Required value: the simulated cluster needs a {rname} request (or limit) per container"))
        elif (req if req is not None else lim) == 0:
            causes.append((f"{path}.resources.requests[{rname}]",
                           "Invalid value: 0: the simulated cluster needs a positive request"))
    if causes:
        return None
    req, lim = parsed["requests"], parsed["limits"]
    try:
        return Resources(cpu_request=req.get("cpu", lim.get("cpu")), cpu_limit=lim.get("cpu"),
                         memory_request=req.get("memory", lim.get("memory")), memory_limit=lim.get("memory"))
    except ValidationError as exc:
        causes.append((f"{path}.resources", f"Invalid value: {exc.errors()[0]['msg']}"))
        return None


def plan_deployment(store: Any, w: WorkloadState, cur: Obj, new: Obj) -> Plan:
    name, ns = w.name, w.namespace
    check_identity(new, name, ns, "Deployment", "apps/v1")
    causes: Causes = []
    meta = new["metadata"]
    labels = str_map(meta.get("labels"), "metadata.labels", "Deployment")
    annotations = str_map(meta.get("annotations"), "metadata.annotations", "Deployment")
    spec = new.get("spec")
    if not isinstance(spec, dict):
        raise invalid("Deployment", "apps", name, [("spec", "Required value")])
    replicas = spec.get("replicas", 1)
    replicas = 1 if replicas is None else as_int(replicas, "DeploymentSpec.spec.replicas", "Deployment")
    if replicas < 0:
        causes.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    if spec.get("selector") != cur["spec"]["selector"]:
        causes.append(("spec.selector", f"Invalid value: {spec.get('selector')!r}: field is immutable"))
    template = spec.get("template")
    if not isinstance(template, dict):
        raise invalid("Deployment", "apps", name, causes + [("spec.template", "Required value")])
    tlabels = (template.get("metadata") or {}).get("labels") or {}
    sel = (cur["spec"]["selector"].get("matchLabels") or {})
    if not labels_match([Requirement(k, "=", (v,)) for k, v in sel.items()], tlabels):
        causes.append(("spec.template.metadata.labels",
                       f"Invalid value: {tlabels!r}: `selector` does not match template `labels`"))
    ctrs = (template.get("spec") or {}).get("containers")
    resources, image = None, None
    if not isinstance(ctrs, list) or not ctrs:
        causes.append(("spec.template.spec.containers", "Required value"))
    else:
        idx = next((i for i, c in enumerate(ctrs) if isinstance(c, dict) and c.get("name") == w.container), None)
        if idx is None:
            causes.append(("spec.template.spec.containers",
                           f"Invalid value: the simulated workload's container {w.container!r} cannot be removed or "
                           "renamed"))
        elif len(ctrs) > 1:
            causes.append((f"spec.template.spec.containers[{1 if idx == 0 else 0}]",
                           "Forbidden: the simulated cluster runs one container per pod"))
        else:
            path = f"spec.template.spec.containers[{idx}]"
            image = ctrs[idx].get("image")
            if not isinstance(image, str) or not image.strip():
                causes.append((f"{path}.image", "Required value"))
            resources = _resources(ctrs[idx], path, causes)
    if causes:
        raise invalid("Deployment", "apps", name, causes)
    assert resources is not None and isinstance(image, str)
    projected = copy.deepcopy(new)
    pspec = projected["spec"]
    pspec["replicas"] = replicas
    pctr = next(c for c in pspec["template"]["spec"]["containers"] if c.get("name") == w.container)
    pctr["resources"] = o.resources_json(resources)
    spec_changed = pspec != cur["spec"]
    restore_system_meta(projected, cur, generation_bump=spec_changed)
    projected["status"] = cur.get("status", {})
    ann = dict(annotations or {})
    ann[o.REVISION_ANNOTATION] = cur["metadata"].get("annotations", {}).get(o.REVISION_ANNOTATION, "1")
    projected["metadata"]["annotations"] = ann
    plan = Plan(projected)
    live = store.live
    if replicas != w.spec_replicas:
        plan.actions.append(lambda: live.scale(ns, name, replicas))
        _hpa_warning(store, w, plan)
    if resources != w.resources:
        plan.actions.append(lambda: live.set_resources(ns, name, resources))
    if image != w.image:
        plan.actions.append(lambda: live.set_image(ns, name, image))
    ov_ann = {k: v for k, v in (annotations or {}).items() if k != o.REVISION_ANNOTATION}
    plan.overlay = (("deployments", ns, name), Overlay(labels=labels or {}, annotations=ov_ann,
                                                       spec=copy.deepcopy(pspec)))
    return plan


def plan_scale(store: Any, w: WorkloadState, cur_scale: Obj, new: Obj) -> Plan:
    check_identity(new, w.name, w.namespace, "Scale", "autoscaling/v1")
    spec = new.get("spec") or {}
    replicas = spec.get("replicas", 0)
    replicas = 0 if replicas is None else as_int(replicas, "ScaleSpec.spec.replicas", "Scale")
    if replicas < 0:
        raise invalid("Scale", "autoscaling", w.name,
                      [("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")])
    projected = copy.deepcopy(cur_scale)
    projected["spec"]["replicas"] = replicas
    plan = Plan(projected)
    if replicas != w.spec_replicas:
        live = store.live
        plan.actions.append(lambda: live.scale(w.namespace, w.name, replicas))
        _hpa_warning(store, w, plan)
    return plan


def _hpa_warning(store: Any, w: WorkloadState, plan: Plan) -> None:
    if w.hpa is not None:
        plan.warnings.append(
            f"deployment {w.namespace}/{w.name} is scaled by HorizontalPodAutoscaler "
            f"{store.hpa_name(w.namespace, w.name)}: the simulated HPA owns spec.replicas, so this replica count "
            "is not applied; change the HPA's minReplicas/maxReplicas instead")
