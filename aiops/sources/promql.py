"""The PromQL that reads each catalogue metric from cAdvisor, kube-state-metrics and Istio series.

Every query returns one series per (namespace, workload, container), with exactly those three labels, values in
the catalogue's units. `workload` is the Deployment that owns the pod, found as kube-state-metrics says it:
pod -> ReplicaSet (`kube_pod_owner`) -> Deployment (`kube_replicaset_owner`), joined with
`* on (namespace, pod) group_left (workload)` (the join robusta-dev/krr uses). Pods not owned through a
ReplicaSet by a Deployment (StatefulSets, DaemonSets, Jobs, bare pods) are left out.

Time convention (the same as the simulator's, see `aiops.sources.base`): the row at grid instant `t` describes
the step `[t, t + S)` (S = the step). PrometheusSource evaluates the query at `t + S` (the step's end) and
labels the answer `t`, so:

- counter rates use `rate(x[W])` with W = S + 1 ms: evaluated at t + S, the window (t - 1 ms, t + S] holds the
  samples at the step's two ends. When samples sit exactly on the grid (backfilled history, or a scrape interval
  equal to the step) `rate` is then exactly `(x(t+S) - x(t)) / S`, the step's mean: Prometheus extrapolates the
  1 ms gap to the window's start, which cancels against the window length. (With W = S the window would hold
  both ends only on Prometheus 2.x, whose range selectors are closed on the left; 3.x made them left-open.)
  With a faster scrape interval it is the usual extrapolated rate over the last S seconds.
- counts per step (`restarts`, `oom_kills`) are `rate(x[W]) * S` = the increase over the step, without the
  `increase()` extrapolation factor (S + 1 ms) / S.
- gauges (memory, requests, limits, replicas) are the instant value at `t + S` (the last sample at or before
  it): the state the cluster was in during the step. For the simulator's exposition that is exactly the state
  recorded for step t.

Measured against the simulator over backfilled history (tests/sources/test_prometheus_integration.py): every
metric but latency agrees on every row, pod start-ups and restarts included, within |v| x 0.001/S (Prometheus's
zero clamp on a counter's first sample) plus 2^-20/S (request counters kept on a 2^-20 grid); `latency_p99` is
histogram_quantile's linear interpolation inside a bucket
(median 1.06x the exact quantile, within the bucket that holds it). Backfilled blocks carry no staleness
markers, so query them with `--query.lookback-delta` below the step, or a deleted pod's last sample keeps
counting in gauges for 5 minutes; a scraping Prometheus writes the markers itself.

The container of a workload-level series (`replicas`, `request_rate`, `latency_p99`) is the workload's
application container(s) from `kube_pod_container_info` (not `istio-proxy`); a workload with several application
containers gets the value once per container, and a workload with no pods at that instant gets no row.
"""

from __future__ import annotations

from collections.abc import Callable

# pod -> workload (Deployment), one series per (namespace, pod) with value 1
POD_WORKLOAD = (
    'max by (namespace, pod, workload) ('
    'label_replace(max by (namespace, pod, owner_name) (kube_pod_owner{owner_kind="ReplicaSet"}), '
    '"replicaset", "$1", "owner_name", "(.+)")'
    ' * on (namespace, replicaset) group_left (workload) '
    'label_replace(max by (namespace, replicaset, owner_name) (kube_replicaset_owner{owner_kind="Deployment"}), '
    '"workload", "$1", "owner_name", "(.+)"))'
)

# pods that count for requests/limits: Pending or Running (kube-prometheus's recording rules do the same, so
# finished and evicted pods that linger until garbage collection do not inflate requests)
ACTIVE_PODS = 'max by (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1)'

# (namespace, workload, container) -> 1 for the application containers of each workload's current pods
WORKLOAD_CONTAINERS = (
    'group by (namespace, workload, container) ('
    'kube_pod_container_info{container!="", container!="POD", container!="istio-proxy"}'
    f' * on (namespace, pod) group_left (workload) {POD_WORKLOAD})'
)

CONTAINER_SELECTOR = 'container!="", container!="POD"'
KEEP = "namespace, workload, container"


def rate_window(step_s: int) -> str:
    """The range of `rate()` for a step: S + 1 ms (see the module docstring)."""
    return f"{int(step_s) * 1000 + 1}ms"


def _per_pod(expr: str) -> str:
    """Sum a per-pod expression over each workload's pods."""
    return f"sum by ({KEEP}) ({expr} * on (namespace, pod) group_left (workload) {POD_WORKLOAD})"


def _istio(expr: str) -> str:
    """Relabel Istio's destination labels to namespace/workload."""
    return (f'label_replace(label_replace({expr}, "namespace", "$1", "destination_workload_namespace", "(.+)"), '
            '"workload", "$1", "destination_workload", "(.+)")')


def _with_container(expr: str) -> str:
    """Attach each workload's application container(s) to a (namespace, workload) expression."""
    return (f"max by ({KEEP}) ({expr} * on (namespace, workload) group_left (container) "
            f"{WORKLOAD_CONTAINERS})")


def _deployment(metric: str) -> str:
    return _with_container(f'label_replace({metric}, "workload", "$1", "deployment", "(.+)")')


def cpu_usage(step_s: int) -> str:
    w = rate_window(step_s)
    return _per_pod(f"rate(container_cpu_usage_seconds_total{{{CONTAINER_SELECTOR}}}[{w}])")


def cpu_throttled_ratio(step_s: int) -> str:
    """Throttled CFS periods / all CFS periods over the workload's pods. A container without a CPU limit has no
    CFS series (no quota, never throttled), and a step without CFS periods throttles nothing: both read 0 (for
    the workloads that have CPU usage series)."""
    w = rate_window(step_s)
    throttled = _per_pod(f"rate(container_cpu_cfs_throttled_periods_total{{{CONTAINER_SELECTOR}}}[{w}])")
    periods = _per_pod(f"rate(container_cpu_cfs_periods_total{{{CONTAINER_SELECTOR}}}[{w}])")
    return f"({throttled} / ({periods} > 0)) or on ({KEEP}) ({cpu_usage(step_s)} * 0)"


def memory_working_set(step_s: int) -> str:
    return _per_pod(f"container_memory_working_set_bytes{{{CONTAINER_SELECTOR}}}")


def _resource(kind: str, resource: str) -> str:
    """Sum of the active pods' requests (or limits). Limits: a container without one has no series and adds 0;
    a workload without any reads 0 (for the workloads that have request series)."""
    unit = "core" if resource == "cpu" else "byte"
    sel = f'kube_pod_container_resource_{kind}{{resource="{resource}", unit="{unit}"}}'
    out = _per_pod(f"({sel} * on (namespace, pod) group_left () {ACTIVE_PODS})")
    if kind == "limits":
        out = f"{out} or on ({KEEP}) ({_resource('requests', resource)} * 0)"
    return out


def restarts(step_s: int) -> str:
    w = rate_window(step_s)
    return f"{_per_pod(f'rate(kube_pod_container_status_restarts_total[{w}])')} * {int(step_s)}"


def oom_kills(step_s: int) -> str:
    """Restarts during the step of containers whose last termination (at the step's end) was OOMKilled;
    kube-state-metrics has no OOM counter. 0 for the workload's other containers."""
    w = rate_window(step_s)
    oom = ('max by (namespace, pod, container) '
           '(kube_pod_container_status_last_terminated_reason{reason="OOMKilled"})')
    per_pod = (f"rate(kube_pod_container_status_restarts_total[{w}]) * {int(step_s)}"
               f" * on (namespace, pod, container) group_left () {oom}")
    return f"{_per_pod(f'({per_pod})')} or on ({KEEP}) ({restarts(step_s)} * 0)"


def request_rate(step_s: int) -> str:
    w = rate_window(step_s)
    rate = _istio(f'rate(istio_requests_total{{reporter="destination"}}[{w}])')
    return _with_container(f"sum by (namespace, workload) ({rate})")


def latency_p99(step_s: int) -> str:
    """histogram_quantile over the step's bucket rates, ms -> s. No requests in the step -> NaN (kept)."""
    w = rate_window(step_s)
    buckets = _istio(f'rate(istio_request_duration_milliseconds_bucket{{reporter="destination"}}[{w}])')
    q = f"histogram_quantile(0.99, sum by (namespace, workload, le) ({buckets})) / 1000"
    return _with_container(q)


QUERIES: dict[str, Callable[[int], str]] = {
    "cpu_usage": cpu_usage,
    "cpu_request": lambda s: _resource("requests", "cpu"),
    "cpu_limit": lambda s: _resource("limits", "cpu"),
    "cpu_throttled_ratio": cpu_throttled_ratio,
    "memory_working_set": memory_working_set,
    "memory_request": lambda s: _resource("requests", "memory"),
    "memory_limit": lambda s: _resource("limits", "memory"),
    "replicas": lambda s: _deployment("kube_deployment_spec_replicas"),
    "replicas_available": lambda s: _deployment("kube_deployment_status_replicas_available"),
    "restarts": restarts,
    "oom_kills": oom_kills,
    "request_rate": request_rate,
    "latency_p99": latency_p99,
}


def query_for(metric: str, step_s: int) -> str:
    """The PromQL of catalogue metric `metric` at step `step_s`."""
    from aiops.metrics import get_metric

    get_metric(metric)
    return QUERIES[metric](step_s)
