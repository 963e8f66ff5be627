"""Server-side printing: meta.k8s.io/v1 `Table` objects with the columns kubectl shows for real clusters.

Column names, priorities (1 = only with `-o wide`) and cell formats follow k8s.io/kubernetes
pkg/printers/internalversion. Ages are measured against the simulated clock, which is what "now" is for the
cluster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from aiops.sim.apiserver.units import age, parse_ts

Obj = dict[str, Any]
Column = tuple[str, str, int, str]  # name, type, priority, description


def _age(obj: Obj, now: datetime) -> str:
    created = parse_ts(obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if created is None else age((now - created).total_seconds())


def _since(s: str | None, now: datetime) -> str:
    t = parse_ts(s)
    return "<unknown>" if t is None else age((now - t).total_seconds())


def _selector(sel: Obj | None) -> str:
    ml = (sel or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(ml.items())) or "<none>"


def _containers(tmpl: Obj) -> tuple[str, str]:
    cs = (tmpl.get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


# --- per kind -------------------------------------------------------------------------------------------------


def _pod_cells(p: Obj, now: datetime) -> list[Any]:
    st = p.get("status", {})
    cs = st.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    total = len((p.get("spec") or {}).get("containers") or [])
    restarts = sum(c.get("restartCount", 0) for c in cs)
    reason = st.get("reason") or st.get("phase", "Unknown")
    for c in cs:
        state = c.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts_cell: Any = restarts
    last = [c.get("lastState", {}).get("terminated", {}).get("finishedAt") for c in cs]
    last = [t for t in last if t]
    if restarts and last:
        restarts_cell = f"{restarts} ({_since(max(last), now)} ago)"
    return [p["metadata"]["name"], f"{ready}/{total}", reason, restarts_cell, _age(p, now),
            st.get("podIP") or "<none>", (p.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _deploy_cells(d: Obj, now: datetime) -> list[Any]:
    st, spec = d.get("status", {}), d["spec"]
    ctrs, images = _containers(spec.get("template", {}))
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(d, now), ctrs, images,
            _selector(spec.get("selector"))]


def _rs_cells(r: Obj, now: datetime) -> list[Any]:
    st, spec = r.get("status", {}), r["spec"]
    ctrs, images = _containers(spec.get("template", {}))
    return [r["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(r, now), ctrs, images, _selector(spec.get("selector"))]


def _node_cells(n: Obj, now: datetime) -> list[Any]:
    st = n.get("status", {})
    ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), None)
    status = "Ready" if ready and ready["status"] == "True" else "NotReady" if ready else "Unknown"
    if (n.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in n["metadata"].get("labels", {})
                   if k.startswith("node-role.kubernetes.io/"))
    info = st.get("nodeInfo", {})
    ip = next((a["address"] for a in st.get("addresses", []) if a["type"] == "InternalIP"), "<none>")
    ext = next((a["address"] for a in st.get("addresses", []) if a["type"] == "ExternalIP"), "<none>")
    return [n["metadata"]["name"], status, ",".join(roles) or "<none>", _age(n, now), info.get("kubeletVersion", ""),
            ip, ext, info.get("osImage", ""), info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _ns_cells(n: Obj, now: datetime) -> list[Any]:
    return [n["metadata"]["name"], n.get("status", {}).get("phase", "Active"), _age(n, now)]


def _hpa_targets(h: Obj) -> str:
    spec, st = h["spec"], h.get("status", {})
    if "targetCPUUtilizationPercentage" in spec or h.get("apiVersion") == "autoscaling/v1":
        cur = st.get("currentCPUUtilizationPercentage")
        tgt = spec.get("targetCPUUtilizationPercentage", 80)
        return f"cpu: {'<unknown>' if cur is None else str(cur) + '%'}/{tgt}%"
    parts = []
    currents = {m["resource"]["name"]: m["resource"]["current"] for m in st.get("currentMetrics") or []
                if m.get("type") == "Resource"}
    for m in spec.get("metrics") or []:
        if m.get("type") != "Resource":
            parts.append("<unknown>")
            continue
        rname, tgt = m["resource"]["name"], m["resource"]["target"]
        cur = currents.get(rname, {})
        if tgt.get("type") == "Utilization":
            cu = cur.get("averageUtilization")
            parts.append(f"{rname}: {'<unknown>' if cu is None else str(cu) + '%'}/{tgt.get('averageUtilization')}%")
        else:
            parts.append(f"{rname}: {cur.get('averageValue', '<unknown>')}/{tgt.get('averageValue')}")
    return ", ".join(parts) or "<none>"


def _hpa_cells(h: Obj, now: datetime) -> list[Any]:
    spec, st = h["spec"], h.get("status", {})
    ref = spec["scaleTargetRef"]
    return [h["metadata"]["name"], f"{ref['kind']}/{ref['name']}", _hpa_targets(h), spec.get("minReplicas", 1),
            spec["maxReplicas"], st.get("currentReplicas", 0), _age(h, now)]


def _event_cells(e: Obj, now: datetime) -> list[Any]:
    inv = e.get("involvedObject", {})
    src = e.get("source", {})
    source = src.get("component", "") + (", " + src["host"] if src.get("host") else "")
    return [_since(e.get("lastTimestamp"), now), e.get("type", ""), e.get("reason", ""),
            f"{inv.get('kind', '').lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""), source,
            e.get("message", ""), _since(e.get("firstTimestamp"), now), e.get("count", 1), e["metadata"]["name"]]


def _md_cells(m: Obj, now: datetime) -> list[Any]:
    spec, st = m["spec"], m.get("status", {})
    return [m["metadata"]["name"], spec.get("clusterName"), spec.get("replicas"), st.get("replicas"),
            st.get("readyReplicas"), st.get("updatedReplicas"), st.get("unavailableReplicas"), st.get("phase"),
            _age(m, now), (spec.get("template", {}).get("spec") or {}).get("version")]


def _name_age(o: Obj, now: datetime) -> list[Any]:
    return [o["metadata"]["name"], _age(o, now)]


_P: dict[str, tuple[list[Column], Callable[[Obj, datetime], list[Any]]]] = {
    "pods": ([("Name", "string", 0, "name"), ("Ready", "string", 0, "The aggregate readiness state of this pod "
              "for accepting traffic."), ("Status", "string", 0, "The aggregate status of the containers in this "
              "pod."), ("Restarts", "string", 0, "The number of times the containers in this pod have been "
              "restarted and when the last container in this pod has restarted."), ("Age", "string", 0,
              "CreationTimestamp"), ("IP", "string", 1, "IP address allocated to the pod."), ("Node", "string", 1,
              "Name of the node the pod is assigned to."), ("Nominated Node", "string", 1, "nominatedNodeName"),
              ("Readiness Gates", "string", 1, "readinessGates")], _pod_cells),
    "deployments": ([("Name", "string", 0, "name"), ("Ready", "string", 0, "Number of the pod with ready state"),
                     ("Up-to-date", "string", 0, "Total number of non-terminated pods targeted by this deployment "
                      "that have the desired template spec."), ("Available", "string", 0, "Total number of "
                      "available pods (ready for at least minReadySeconds) targeted by this deployment."),
                     ("Age", "string", 0, "CreationTimestamp"), ("Containers", "string", 1, "Names of each "
                      "container in the template."), ("Images", "string", 1, "Images referenced by each container "
                      "in the template."), ("Selector", "string", 1, "Label selector for pods.")], _deploy_cells),
    "replicasets": ([("Name", "string", 0, "name"), ("Desired", "integer", 0, "Number of desired pods."),
                     ("Current", "integer", 0, "Number of actual replicas."), ("Ready", "integer", 0,
                      "The number of ready replicas for this replica set."), ("Age", "string", 0,
                      "CreationTimestamp"), ("Containers", "string", 1, "Names of each container in the "
                      "template."), ("Images", "string", 1, "Images referenced by each container in the "
                      "template."), ("Selector", "string", 1, "Label selector for pods.")], _rs_cells),
    "nodes": ([("Name", "string", 0, "name"), ("Status", "string", 0, "The status of the node"), ("Roles", "string",
               0, "The roles of the node"), ("Age", "string", 0, "CreationTimestamp"), ("Version", "string", 0,
               "Kubelet Version reported by the node."), ("Internal-IP", "string", 1, "List of internal IPs for the "
               "node."), ("External-IP", "string", 1, "List of external IPs for the node."), ("OS-Image", "string",
               1, "OS image reported by the node."), ("Kernel-Version", "string", 1, "Kernel version reported by "
               "the node."), ("Container-Runtime", "string", 1, "Container runtime reported by the node.")],
              _node_cells),
    "namespaces": ([("Name", "string", 0, "name"), ("Status", "string", 0, "The status of the namespace"),
                    ("Age", "string", 0, "CreationTimestamp")], _ns_cells),
    "hpa": ([("Name", "string", 0, "name"), ("Reference", "string", 0, "Reference to target resource"),
             ("Targets", "string", 0, "Current and target metrics"), ("MinPods", "string", 0, "Minimum number of "
             "replicas"), ("MaxPods", "string", 0, "Maximum number of replicas"), ("Replicas", "string", 0,
             "Current number of replicas"), ("Age", "string", 0, "CreationTimestamp")], _hpa_cells),
    "events": ([("Last Seen", "string", 0, "lastTimestamp"), ("Type", "string", 0, "type"), ("Reason", "string", 0,
                "reason"), ("Object", "string", 0, "involvedObject"), ("Subobject", "string", 1,
                "involvedObject.fieldPath"), ("Source", "string", 1, "source"), ("Message", "string", 0, "message"),
                ("First Seen", "string", 1, "firstTimestamp"), ("Count", "string", 1, "count"), ("Name", "string", 1,
                "name")], _event_cells),
    # Cluster API's additionalPrinterColumns (a CRD's: Age is a "date", Desired has priority 10)
    "machinedeployments": ([("Name", "string", 0, "Name must be unique within a namespace."), ("Cluster", "string",
                            0, "Cluster"), ("Desired", "integer", 10, "Total number of machines desired by this "
                            "MachineDeployment"), ("Replicas", "integer", 0, "Total number of non-terminated "
                            "machines targeted by this MachineDeployment"), ("Ready", "integer", 0, "Total number of "
                            "ready machines targeted by this MachineDeployment"), ("Updated", "integer", 0, "Total "
                            "number of non-terminated machines targeted by this deployment that have the desired "
                            "template spec"), ("Unavailable", "integer", 0, "Total number of unavailable machines "
                            "targeted by this MachineDeployment"), ("Phase", "string", 0, "MachineDeployment status "
                            "such as ScalingUp/ScalingDown/Running/Failed/Unknown"), ("Age", "date", 0, "Time "
                            "duration since creation of MachineDeployment"), ("Version", "string", 0, "Kubernetes "
                            "version associated with this MachineDeployment")], _md_cells),
}

# columns of the kinds that always list empty (so kubectl prints the right header if it ever needs one)
_EMPTY_COLUMNS: dict[str, list[str]] = {
    "services": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
    "statefulsets": ["Name", "Ready", "Age"],
    "daemonsets": ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"],
    "jobs": ["Name", "Status", "Completions", "Duration", "Age"],
    "cronjobs": ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
    "replicationcontrollers": ["Name", "Desired", "Current", "Ready", "Age"],
    "configmaps": ["Name", "Data", "Age"],
    "persistentvolumeclaims": ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "Age"],
}


def _column_defs(cols: list[Column]) -> list[Obj]:
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d, "priority": p}
            for n, t, p, d in cols]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(key: str, plural: str, items: list[Obj], now: datetime, *, resource_version: str,
          include_object: str = "Metadata", api_version: str = "meta.k8s.io/v1", continue_token: str = "") -> Obj:
    """A Table of `items`; `key` is the store backend ("pods", "hpa", ...) or "" for the always-empty kinds."""
    if key in _P:
        cols, cells = _P[key]
    else:
        names = _EMPTY_COLUMNS.get(plural, ["Name", "Age"])
        cols, cells = [(n, "string", 0, n) for n in names], _name_age
    rows = []
    for obj in items:
        row: Obj = {"cells": cells(obj, now)}
        ro = _row_object(obj, include_object)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    meta: Obj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {"kind": "Table", "apiVersion": api_version, "metadata": meta, "columnDefinitions": _column_defs(cols),
            "rows": rows}
