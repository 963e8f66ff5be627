"""What the cost optimizer reads: each selected container's per-pod usage from the stored series, and what runs now
(requests, limits, replicas, node pools) from the cluster's API.

Per-pod usage: the stored `cpu_usage` and `memory_working_set` are sums over a workload's pods (`aiops.metrics`);
divided by the ready pods (`replicas_available`) they are the mean pod's, which is what one request must fit
(Kubernetes gives all of a Deployment's pods the same request). Uneven load between pods is not visible in the
sums, so a pod busier than the mean exceeds its request more often than the estimate says; KRR reads each pod's
samples, which needs per-pod series stored. Steps without a ready pod are missing, not zero. The series are the
stored 5-minute means (`train.step_seconds`), the resolution of the Bitbrains traces the optimizer is measured on.

OOM kills are the stored `oom_kills` summed over the history. A workload's pool is where its pods run now: the
pool label (`cost.pool_label`) of their nodes, the most common one when they are spread.
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.actuator.recommendation import Target
from aiops.errors import SchemaError
from aiops.optimize.config import CostSettings
from aiops.optimize.prescale_inputs import latest_ts, load_metrics, selected

if TYPE_CHECKING:  # pragma: no cover
    from aiops.actuator.kube import Cluster
    from aiops.settings import Settings

METRICS = ("cpu_usage", "memory_working_set", "replicas_available", "oom_kills")
MIN_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
MAX_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


@dataclass
class Container:
    """One container of a Deployment as it runs now, and its pods over the history."""

    series: str
    namespace: str
    workload: str
    container: str
    cls: str = "default"
    cpu_request: float = math.nan  # cores; NaN: unset
    cpu_limit: float = math.nan
    memory_request: float = math.nan  # bytes
    memory_limit: float = math.nan
    hpa: str | None = None
    min_replicas: int = 0  # the HPA's bounds, or the Deployment's replicas for both
    max_replicas: int = 0
    pods_mean: float = math.nan
    pods_min: int = 0
    pods_max: int = 0
    ooms: int = 0
    pool: str | None = None

    @property
    def target(self) -> Target:
        return Target(cluster=self.series.split("/", 1)[0], namespace=self.namespace, kind="Deployment",
                      name=self.workload, container=self.container)


@dataclass
class Pool:
    """A node pool (a Cluster API MachineDeployment) with its autoscaler bounds and one node's allocatable."""

    name: str
    instance_type: str
    min_nodes: int
    max_nodes: int
    nodes: int
    cpu: float = math.nan  # allocatable cores of one node (from a node of the pool)
    memory: float = math.nan  # allocatable bytes


@dataclass
class CostInputs:
    """Per-pod usage of the selected containers (`series`, `ts`, `cpu`, `memory`), what runs now, and what was
    left out and why."""

    usage: pd.DataFrame
    containers: dict[str, Container]
    pools: dict[str, Pool]
    start: pd.Timestamp
    end: pd.Timestamp
    skipped: dict[str, str] = field(default_factory=dict)

    def current(self) -> pd.DataFrame:
        """The requests and limits running now, in the right-sizing baselines' `current` columns."""
        rows = [(s, c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit) for s, c in self.containers.items()]
        return pd.DataFrame(rows, columns=["series", "cpu_request", "cpu_limit", "memory_request", "memory_limit"])


def class_of(namespace: str, workload: str, classes: dict[str, str]) -> str:
    """The workload's class: the first `namespace/workload` glob pattern of `classes` that matches, else default."""
    name = f"{namespace}/{workload}"
    return next((c for p, c in classes.items() if fnmatch.fnmatchcase(name, p)), "default")


def per_pod_usage(panel: pd.DataFrame) -> pd.DataFrame:
    """Per-pod usage from workload sums: cpu and memory divided by the ready pods (no ready pod: missing)."""
    pods = panel["replicas_available"].where(panel["replicas_available"] >= 1)
    return pd.DataFrame({"series": panel["series"].to_numpy(), "ts": panel["ts"].to_numpy(),
                         "cpu": (panel["cpu_usage"] / pods).to_numpy(np.float64),
                         "memory": (panel["memory_working_set"] / pods).to_numpy(np.float64)})


def load_inputs(settings: Settings, cluster: Cluster, cfg: CostSettings | None = None) -> CostInputs:
    """The stored usage of the selected containers of `settings.cluster_name` over the last `history_days`, and what
    the cluster runs now. Containers the cluster no longer has, or without usage, are skipped with the reason."""
    cfg = cfg or settings.cost
    end = latest_ts(settings, "cpu_usage")
    start = end - pd.Timedelta(days=cfg.history_days)
    panel = load_metrics(settings, METRICS, start)
    keep = panel["series"].map(lambda s: selected(s, settings.cluster_name, cfg.namespaces, cfg.workloads))
    panel = panel[keep.to_numpy(bool)]
    if panel.empty:
        raise SchemaError(f"no stored usage of cluster {settings.cluster_name!r} matches cost.namespaces "
                          f"{list(cfg.namespaces)} and cost.workloads {list(cfg.workloads)}")
    usage = per_pod_usage(panel)
    has_cpu = usage["cpu"].notna().groupby(usage["series"]).any()
    pool_of = _pool_of_workloads(cluster, cfg.pool_label)
    containers, skipped = {}, {}
    for series, rows in panel.groupby("series", sort=True):
        _, ns, wl, ctr = series.split("/", 3)
        pods = rows["replicas_available"].dropna()
        if not has_cpu.get(series, False):
            skipped[series] = "no step with a ready pod and CPU usage in the history"
            continue
        c = Container(series, ns, wl, ctr, cls=class_of(ns, wl, cfg.classes),
                      pods_mean=float(pods.mean()), pods_min=int(pods.min()), pods_max=int(pods.max()),
                      ooms=int(round(float(rows["oom_kills"].fillna(0).sum()))), pool=pool_of.get((ns, wl)))
        why = _read_running(cluster, c)
        if why:
            skipped[series] = why
            continue
        containers[series] = c
    usage = usage[usage["series"].isin(list(containers))].reset_index(drop=True)
    seen = usage.loc[usage["cpu"].notna(), "ts"]
    first = pd.Timestamp(seen.min()) if len(seen) else start  # the span the data covers, not the one asked for
    return CostInputs(usage, containers, _pools(cluster, cfg), max(start, first), end, skipped)


def _read_running(cluster: Cluster, c: Container) -> str:
    """Fill `c` with the Deployment's requests/limits and replica bounds; the reason it cannot be sized, or ''."""
    from aiops.actuator.changes import parse_quantity
    from aiops.errors import ActuatorError

    try:
        dep = cluster.read_deployment(c.namespace, c.workload)
    except ActuatorError as exc:
        return f"not readable in the cluster: {exc}"
    spec = next((x for x in dep["spec"]["template"]["spec"]["containers"] if x.get("name") == c.container), None)
    if spec is None:
        return f"the Deployment has no container {c.container!r} now"
    res = spec.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            q = (res.get(kind) or {}).get(r)
            setattr(c, f"{r}_{kind[:-1]}", parse_quantity(q) if q is not None else math.nan)
    c.hpa = cluster.hpa_for(c.namespace, c.workload)
    if c.hpa:
        h = cluster.read(Target(cluster=c.target.cluster, namespace=c.namespace, kind="HorizontalPodAutoscaler",
                                name=c.hpa))["spec"]
        c.min_replicas, c.max_replicas = int(h.get("minReplicas", 1)), int(h["maxReplicas"])
    else:
        c.min_replicas = c.max_replicas = int(dep["spec"].get("replicas", 1))
    return ""


def _pool_of_workloads(cluster: Cluster, label: str) -> dict[tuple[str, str], str]:
    """(namespace, workload) -> the pool most of its running pods are on (pods -> ReplicaSet -> Deployment)."""
    node_pool = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(label) for n in cluster.list_nodes()}
    votes: dict[tuple[str, str], Counter] = {}
    for p in cluster.list_pods():
        meta, node = p["metadata"], (p.get("spec") or {}).get("nodeName")
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), None)
        if owner is None or node_pool.get(node) is None:
            continue
        # a ReplicaSet of a Deployment is named <deployment>-<pod-template-hash>
        workload = owner["name"].rsplit("-", 1)[0]
        votes.setdefault((meta["namespace"], workload), Counter())[node_pool[node]] += 1
    return {k: v.most_common(1)[0][0] for k, v in votes.items()}


def _pools(cluster: Cluster, cfg: CostSettings) -> dict[str, Pool]:
    from aiops.actuator.changes import parse_quantity

    alloc: dict[str, tuple[float, float]] = {}
    for n in cluster.list_nodes():
        pool = (n["metadata"].get("labels") or {}).get(cfg.pool_label)
        a = (n.get("status") or {}).get("allocatable") or {}
        if pool and "cpu" in a and "memory" in a:
            alloc.setdefault(pool, (parse_quantity(a["cpu"]), parse_quantity(a["memory"])))
    out = {}
    for md in cluster.list_node_pools(cfg.pool_namespace):
        meta, spec = md["metadata"], md.get("spec") or {}
        ann = meta.get("annotations") or {}
        itype = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).get(INSTANCE_TYPE, "")
        cpu, mem = alloc.get(meta["name"], (math.nan, math.nan))
        out[meta["name"]] = Pool(meta["name"], itype, int(ann.get(MIN_SIZE, 0)), int(ann.get(MAX_SIZE, 0)),
                                 int(spec.get("replicas", 0)), cpu, mem)
    return out


def as_dict(c: Container | Pool) -> dict[str, Any]:
    """A JSON-friendly copy (NaN -> None)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in c.__dict__.items()}
