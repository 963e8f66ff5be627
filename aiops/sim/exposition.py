"""The simulated cluster as Prometheus sees a real one: cAdvisor, kube-state-metrics and Istio series.

`render_metrics(snapshot, cluster)` is the body of the simulated cluster's `GET /metrics` (text format 0.0.4,
current values, no timestamps), so a real Prometheus can scrape it. `render_openmetrics_history(snapshots)`
writes the same series for many instants, with timestamps, as OpenMetrics text for
`promtool tsdb create-blocks-from openmetrics` (backfill); `engine_snapshots(engine, steps)` drives an engine step
by step to feed it, so per-pod counters are the engine's own, exact at every step. A snapshot at
`start + (t + 1) * step` describes the engine's step t (see `aiops.sim.engine`), so PromQL over the backfilled
history gives the series the engine recorded.

Names and labels are those real exporters use, so `aiops.sources.promql` reads both the same way:

- cAdvisor (kubelet), one series per pod with a scheduled container: `container_cpu_usage_seconds_total`,
  `container_memory_working_set_bytes`, `container_cpu_cfs_periods_total`,
  `container_cpu_cfs_throttled_periods_total` (the two CFS counters only when the container has a CPU limit, as
  cAdvisor only has them under a CFS quota); labels namespace, pod, container, image, name, id, node. Counter
  values are the container instance's, as cAdvisor's: 0 at the container's start, reset to 0 when it restarts
  (`rate()` reads the reset as one). Deviation: a real runtime gives a restarted container a new id, hence new
  `id`/`name` labels and a new series; here they are stable per pod, so `rate()` over a step-sampled history
  stays exact across a restart (a new series would lose its first step). For the same reason
  `render_openmetrics_history` writes a new container's counters once more at its start, with value 0, as a
  scrape at that instant would see them.
- kube-state-metrics: pod requests/limits, owners, phase, restarts, last terminated and waiting reasons;
  deployments' spec/available replicas; replicaset owners; nodes' info, labels, capacity and conditions; HPAs.
- Istio, per workload (reporter="destination"): `istio_requests_total` and the
  `istio_request_duration_milliseconds` histogram (buckets `LATENCY_BUCKETS_S` × 1000 and +Inf), each with
  `response_code="200"` (served) and `"504"` (cut at the timeout: their duration is the timeout, so they sit in
  the buckets at and above it). Both codes are written from the start, even at 0 (real Istio creates the 504
  series at the first timeout; a series appearing mid-history would lose its first step in `rate()`). Real
  Istio has one series per destination pod; the snapshot counts per workload, so there is one series per
  workload and code (no `pod`).

No series carries a `cluster` label by default: on a real cluster Prometheus adds it (external labels or
relabelling); pass `cluster_label=True` to add `cluster="<name>"` to every series.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from aiops.sim.demand import TIMEOUT_S
from aiops.sim.state import LATENCY_BUCKETS_S, NodeState, PodState, Snapshot, WorkloadState

Labels = tuple[tuple[str, str], ...]

KUBELET_VERSION = "v1.30.4"
RUNTIME_VERSION = "containerd://1.7.20"
OS_IMAGE = "Ubuntu 22.04.4 LTS"
KERNEL_VERSION = "6.5.0-1024-aws"
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
ISTIO_LE_MS: tuple[float, ...] = tuple(round(b * 1000.0, 6) for b in LATENCY_BUCKETS_S)
TIMEOUT_MS = TIMEOUT_S * 1000.0


@dataclass
class _Family:
    name: str  # the family name: counters in OpenMetrics drop `_total`; see `_type_line`
    type: str  # "counter" | "gauge" | "histogram"
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)  # (sample name, labels, value)

    def add(self, labels: dict[str, str], value: float, *, suffix: str = "") -> None:
        sample = self.name + suffix if self.type == "histogram" else self.name
        self.samples.append((sample, tuple(labels.items()), float(value)))


def _families(snapshot: Snapshot, extra: dict[str, str]) -> list[_Family]:
    """Every family of one snapshot, in a fixed order (the same families at every step, possibly empty)."""
    fams = {
        f.name: f
        for f in (
            # cAdvisor
            _Family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds."),
            _Family("container_memory_working_set_bytes", "gauge", "Current working set in bytes."),
            _Family("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals."),
            _Family("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals."),
            # kube-state-metrics: pods
            _Family("kube_pod_owner", "gauge", "Information about the Pod's owner."),
            _Family("kube_pod_info", "gauge", "Information about pod."),
            _Family("kube_pod_container_info", "gauge", "Information about a container in a pod."),
            _Family("kube_pod_status_phase", "gauge", "The pods current phase."),
            _Family("kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests."),
            _Family("kube_pod_container_resource_requests", "gauge",
                    "The number of requested request resource by a container."),
            _Family("kube_pod_container_resource_limits", "gauge",
                    "The number of requested limit resource by a container."),
            _Family("kube_pod_container_status_restarts_total", "counter",
                    "The number of container restarts per container."),
            _Family("kube_pod_container_status_last_terminated_reason", "gauge",
                    "Describes the last reason the container was in terminated state."),
            _Family("kube_pod_container_status_waiting_reason", "gauge",
                    "Describes the reason the container is currently in waiting state."),
            # kube-state-metrics: workloads
            _Family("kube_deployment_spec_replicas", "gauge", "Number of desired pods for a deployment."),
            _Family("kube_deployment_status_replicas_available", "gauge",
                    "The number of available replicas per deployment."),
            _Family("kube_deployment_metadata_generation", "gauge",
                    "Sequence number representing a specific generation of the desired state."),
            _Family("kube_replicaset_owner", "gauge", "Information about the ReplicaSet's owner."),
            _Family("kube_horizontalpodautoscaler_spec_min_replicas", "gauge",
                    "Lower limit for the number of pods that can be set by the autoscaler, default 1."),
            _Family("kube_horizontalpodautoscaler_spec_max_replicas", "gauge",
                    "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller "
                    "than MinReplicas."),
            _Family("kube_horizontalpodautoscaler_spec_target_metric", "gauge",
                    "The metric specifications used by this autoscaler when calculating the desired replica count."),
            _Family("kube_horizontalpodautoscaler_status_desired_replicas", "gauge",
                    "Desired number of replicas of pods managed by this autoscaler."),
            # kube-state-metrics: nodes
            _Family("kube_node_info", "gauge", "Information about a cluster node."),
            _Family("kube_node_labels", "gauge", "Kubernetes labels converted to Prometheus labels."),
            _Family("kube_node_status_capacity", "gauge", "The capacity for different resources of a node."),
            _Family("kube_node_status_condition", "gauge", "The condition of a cluster node."),
            # OpenCost's node price, so cost can be read from Prometheus too
            _Family("node_total_hourly_cost", "gauge", "Total node cost per hour"),
            # Istio
            _Family("istio_requests_total", "counter", "Total requests."),
            _Family("istio_request_duration_milliseconds", "histogram", "Request duration in milliseconds."),
        )
    }
    images = {(w.namespace, w.name): w.image for w in snapshot.workloads}
    for pod in snapshot.pods:
        _pod_series(fams, pod, images.get((pod.namespace, pod.workload), ""), extra)
    for w in snapshot.workloads:
        _workload_series(fams, w, snapshot.pods, extra)
    for n in snapshot.nodes:
        _node_series(fams, n, extra)
    return list(fams.values())


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "aiops-sim/" + "/".join(parts)))


def _pod_series(fams: dict[str, _Family], p: PodState, image: str, extra: dict[str, str]) -> None:
    uid = _uid(p.namespace, p.name)
    node = p.node or ""
    base = {"namespace": p.namespace, "pod": p.name, "uid": uid}
    ctr = {**base, "container": p.container}
    res = p.resources
    cid = ""
    if p.node is not None:
        # a scheduled pod has a cgroup: cAdvisor reports it (counters from the pod's creation)
        cid = uuid.UUID(_uid(p.namespace, p.name, p.container)).hex + uuid.UUID(_uid(p.name)).hex
        cad = {
            "container": p.container, "id": f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope", "image": image,
            "name": cid, "namespace": p.namespace, "node": node, "pod": p.name, **extra,
        }
        fams["container_cpu_usage_seconds_total"].add(cad, p.cpu_usage_seconds_total)
        fams["container_memory_working_set_bytes"].add(cad, p.memory_working_set_bytes)
        if res.cpu_limit is not None:
            fams["container_cpu_cfs_periods_total"].add(cad, p.cfs_periods_total)
            fams["container_cpu_cfs_throttled_periods_total"].add(cad, p.cfs_throttled_periods_total)
    fams["kube_pod_owner"].add({**base, "owner_kind": "ReplicaSet", "owner_name": p.replicaset,
                                "owner_is_controller": "true", **extra}, 1)
    fams["kube_pod_container_info"].add({**ctr, "image": image, "image_spec": image,
                                         "container_id": f"containerd://{cid}" if cid else "", **extra}, 1)
    fams["kube_pod_info"].add({**base, "node": node, "created_by_kind": "ReplicaSet",
                               "created_by_name": p.replicaset, **extra}, 1)
    for phase in POD_PHASES:
        fams["kube_pod_status_phase"].add({**base, "phase": phase, **extra}, float(p.phase == phase))
    for cond in ("true", "false"):
        fams["kube_pod_status_ready"].add({**base, "condition": cond, **extra}, float(p.ready == (cond == "true")))
    for kind, fam in (("requests", "kube_pod_container_resource_requests"),
                      ("limits", "kube_pod_container_resource_limits")):
        cpu = res.cpu_request if kind == "requests" else res.cpu_limit
        mem = res.memory_request if kind == "requests" else res.memory_limit
        if cpu is not None:
            fams[fam].add({**ctr, "node": node, "resource": "cpu", "unit": "core", **extra}, cpu)
        if mem is not None:
            fams[fam].add({**ctr, "node": node, "resource": "memory", "unit": "byte", **extra}, mem)
    fams["kube_pod_container_status_restarts_total"].add({**ctr, **extra}, p.restarts)
    if p.last_terminated_reason:
        fams["kube_pod_container_status_last_terminated_reason"].add(
            {**ctr, "reason": p.last_terminated_reason, **extra}, 1)
    if p.waiting_reason:
        fams["kube_pod_container_status_waiting_reason"].add({**ctr, "reason": p.waiting_reason, **extra}, 1)


def _workload_series(fams: dict[str, _Family], w: WorkloadState, pods: tuple[PodState, ...],
                     extra: dict[str, str]) -> None:
    dep = {"namespace": w.namespace, "deployment": w.name, **extra}
    fams["kube_deployment_spec_replicas"].add(dep, w.spec_replicas)
    fams["kube_deployment_status_replicas_available"].add(dep, w.ready_replicas)
    fams["kube_deployment_metadata_generation"].add(dep, w.revision)
    # every ReplicaSet that still has pods, plus the current one
    replicasets = {w.replicaset} | {p.replicaset for p in pods if p.namespace == w.namespace and p.workload == w.name}
    for rs in sorted(replicasets):
        fams["kube_replicaset_owner"].add({"namespace": w.namespace, "replicaset": rs, "owner_kind": "Deployment",
                                           "owner_name": w.name, "owner_is_controller": "true", **extra}, 1)
    if w.hpa is not None:
        hpa = {"namespace": w.namespace, "horizontalpodautoscaler": w.name, **extra}
        fams["kube_horizontalpodautoscaler_spec_min_replicas"].add(hpa, w.hpa.min_replicas)
        fams["kube_horizontalpodautoscaler_spec_max_replicas"].add(hpa, w.hpa.max_replicas)
        fams["kube_horizontalpodautoscaler_spec_target_metric"].add(
            {**hpa, "metric_name": "cpu", "metric_target_type": "utilization"}, w.hpa.target_cpu_utilization * 100)
        desired = w.hpa_desired_replicas if w.hpa_desired_replicas is not None else w.spec_replicas
        fams["kube_horizontalpodautoscaler_status_desired_replicas"].add(hpa, desired)
    istio = {
        "reporter": "destination", "source_workload": "unknown", "source_workload_namespace": "unknown",
        "destination_workload": w.name, "destination_workload_namespace": w.namespace,
        "destination_service": f"{w.name}.{w.namespace}.svc.cluster.local", "destination_service_name": w.name,
        "destination_service_namespace": w.namespace, "request_protocol": "http", "response_code": "200",
        "response_flags": "-", **extra,
    }
    timeout = {**istio, "response_code": "504", "response_flags": "UT"}  # Envoy's upstream request timeout
    counts = w.latency_bucket_counts
    if len(counts) != len(LATENCY_BUCKETS_S) + 1:
        raise ValueError(
            f"workload {w.namespace}/{w.name}: latency_bucket_counts has {len(counts)} entries, expected "
            f"{len(LATENCY_BUCKETS_S) + 1} (one per LATENCY_BUCKETS_S, then +Inf)")
    t_out = min(max(w.requests_timed_out_total, 0.0), counts[-1])
    served = counts[-1] - t_out
    fams["istio_requests_total"].add(istio, served)
    fams["istio_requests_total"].add(timeout, t_out)
    hist = fams["istio_request_duration_milliseconds"]
    les = (*ISTIO_LE_MS, math.inf)
    for le, c in zip(les, counts):
        # timed-out requests last exactly the timeout: they are in every bucket at or above it, and only there
        hist.add({**istio, "le": _fmt_le(le)}, min(c, served) if le < TIMEOUT_MS else c - t_out, suffix="_bucket")
    hist.add(istio, max(w.latency_sum_s - t_out * TIMEOUT_S, 0.0) * 1000.0, suffix="_sum")
    hist.add(istio, served, suffix="_count")
    for le in les:
        hist.add({**timeout, "le": _fmt_le(le)}, t_out if le >= TIMEOUT_MS else 0.0, suffix="_bucket")
    hist.add(timeout, t_out * TIMEOUT_S * 1000.0, suffix="_sum")
    hist.add(timeout, t_out, suffix="_count")


def _node_series(fams: dict[str, _Family], n: NodeState, extra: dict[str, str]) -> None:
    node = {"node": n.name, **extra}
    fams["kube_node_info"].add({**node, "container_runtime_version": RUNTIME_VERSION, "kernel_version":
                                KERNEL_VERSION, "kubelet_version": KUBELET_VERSION, "os_image": OS_IMAGE,
                                "provider_id": f"aws:///sim/{n.name}"}, 1)
    fams["kube_node_labels"].add({**node, "label_node_kubernetes_io_instance_type": n.instance_type,
                                  "label_eks_amazonaws_com_nodegroup": n.pool,
                                  "label_kubernetes_io_hostname": n.name}, 1)
    fams["kube_node_status_capacity"].add({**node, "resource": "cpu", "unit": "core"}, n.cpu_cores)
    fams["kube_node_status_capacity"].add({**node, "resource": "memory", "unit": "byte"}, n.memory_bytes)
    conditions = {"Ready": n.ready, **n.conditions}
    for cond, on in conditions.items():
        for status in ("true", "false", "unknown"):
            fams["kube_node_status_condition"].add({**node, "condition": cond, "status": status},
                                                   float((status == "true") == bool(on) and status != "unknown"))
    fams["node_total_hourly_cost"].add({**node, "instance_type": n.instance_type}, n.price_per_hour)


# --- text rendering ---------------------------------------------------------------------------------------------


def escape_label_value(v: str) -> str:
    """Escape a label value for the text formats: backslash, double quote and line feed."""
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def _fmt_le(v: float) -> str:
    return "+Inf" if math.isinf(v) else _fmt(v)


def _fmt_ts(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError(f"snapshot time {t} has no time zone; expected UTC")
    ms = round(t.timestamp() * 1000)
    s, rem = divmod(ms, 1000)
    return f"{s}" if rem == 0 else f"{s}.{rem:03d}"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels) + "}"


def _extra(cluster: str, cluster_label: bool) -> dict[str, str]:
    return {"cluster": cluster} if cluster_label else {}


def render_metrics(snapshot: Snapshot, cluster: str, *, cluster_label: bool = False) -> str:
    """The snapshot as a `/metrics` body: Prometheus text format 0.0.4, HELP/TYPE lines, no timestamps."""
    out: list[str] = []
    for fam in _families(snapshot, _extra(cluster, cluster_label)):
        if not fam.samples:
            continue
        out.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        out.append(f"# TYPE {fam.name} {fam.type}")
        out.extend(f"{s}{_labels(lab)} {_fmt(v)}" for s, lab, v in fam.samples)
    return "\n".join(out) + "\n"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_openmetrics_history(snapshots: Iterable[Snapshot], cluster: str, *,
                               cluster_label: bool = False) -> Iterator[str]:
    """OpenMetrics text of many snapshots, each sample stamped with its snapshot's time (seconds), then `# EOF`.

    Yields chunks (one or more lines each, newline-terminated) to write to a file for
    `promtool tsdb create-blocks-from openmetrics`. Snapshots must come in increasing time. HELP/TYPE metadata
    is written once, before the first step's samples; later steps repeat the families' samples in the same
    order (promtool reads them as more samples of the same series; strict OpenMetrics would want each family's
    samples contiguous, which would mean holding the whole history in memory).

    A container's CPU/CFS counter series that was not in the previous snapshot also gets a sample 0 at the
    container's start (when that is at or after the previous snapshot): what a scrape at its start would have
    read, so that `rate()` over the step in which the container started sees that step's CPU.
    """
    last: datetime | None = None
    first = True
    prev_series: set[tuple[str, Labels]] = set()
    for snap in snapshots:
        if last is not None and snap.time <= last:
            raise ValueError(f"snapshots out of order: step {snap.step} at {snap.time} after {last}")
        ts = _fmt_ts(snap.time)
        started = {(p.namespace, p.name): p.started for p in snap.pods}
        series: set[tuple[str, Labels]] = set()
        lines: list[str] = []
        for fam in _families(snap, _extra(cluster, cluster_label)):
            if first:
                om_name = fam.name[: -len("_total")] if fam.type == "counter" else fam.name
                lines.append(f"# HELP {om_name} {_escape_help(fam.help)}")
                lines.append(f"# TYPE {om_name} {fam.type}")
            cadvisor_counter = fam.name in _CADVISOR_COUNTERS
            for s, lab, v in fam.samples:
                if cadvisor_counter:
                    series.add((s, lab))
                    if last is not None and (s, lab) not in prev_series:
                        labels = dict(lab)
                        t0 = started.get((labels["namespace"], labels["pod"]))
                        if t0 is not None and last <= t0 < snap.time:
                            lines.append(f"{s}{_labels(lab)} 0 {_fmt_ts(t0)}")
                lines.append(f"{s}{_labels(lab)} {_fmt(v)} {ts}")
        first = False
        last, prev_series = snap.time, series
        yield "\n".join(lines) + "\n" if lines else ""
    yield "# EOF\n"


_CADVISOR_COUNTERS = frozenset({"container_cpu_usage_seconds_total", "container_cpu_cfs_periods_total",
                                "container_cpu_cfs_throttled_periods_total"})


def engine_snapshots(engine, steps: int, *, include_initial: bool = True) -> Iterator[Snapshot]:
    """Drive `engine` one step at a time, yielding its snapshot at each step (first the current one, unless
    `include_initial` is false). The engine is advanced in place."""
    if include_initial:
        yield engine.snapshot()
    for _ in range(steps):
        engine.step(1)
        yield engine.snapshot()
