"""Views of the engine for readers: canonical long frames of a SimResult, labels and events, and snapshots."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from aiops.errors import UnknownNameError
from aiops.metrics import METRICS
from aiops.series import COLUMNS
from aiops.sim.state import IncidentLabel, NodeState, PodState, SimEvent, SimResult, Snapshot, WorkloadState

if TYPE_CHECKING:
    from aiops.sim.engine import Engine


def _utc_ns(x: datetime) -> np.datetime64:
    if x.tzinfo is None:
        x = x.replace(tzinfo=timezone.utc)
    return np.datetime64(x.astimezone(timezone.utc).replace(tzinfo=None), "ns")


def _cat(codes: np.ndarray, cats: Sequence[str], categorical: bool) -> pd.Series | pd.Categorical:
    uniq, inv = np.unique(np.asarray(cats, dtype=object), return_inverse=True)
    c = pd.Categorical.from_codes(inv[codes].astype(np.int32), dtype=pd.CategoricalDtype(pd.Index(uniq, dtype="string")))
    return c if categorical else pd.array(np.asarray(c), dtype="string")


def result_to_frame(result: SimResult, metrics: Sequence[str] | None = None,
                    start: datetime | None = None, end: datetime | None = None, *,
                    categorical: bool = True) -> pd.DataFrame:
    """The canonical long frame (aiops.series.COLUMNS) of `result`, rows with `start <= ts < end`.

    Rows are ordered by metric, then time, then workload. For speed the five identity columns and `unit` are
    pandas Categoricals (categories of dtype "string"; values equal the canonical strings) unless
    `categorical=False`, which casts them to the exact "string" dtype (slow for tens of millions of rows).
    """
    names = list(METRICS) if metrics is None else list(metrics)
    for m in names:
        if m not in result.arrays:
            raise UnknownNameError("metric", m, list(result.arrays))
    times = result.times.astype("datetime64[ns]")
    lo = 0 if start is None else int(np.searchsorted(times, _utc_ns(start), side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, _utc_ns(end), side="left"))
    hi = max(hi, lo)
    nt, w, nm = hi - lo, len(result.workloads), len(names)
    per_metric = nt * w
    wcodes = np.tile(np.arange(w, dtype=np.int32), nt * nm)
    mcodes = np.repeat(np.arange(nm, dtype=np.int32), per_metric)
    units = [METRICS[m].unit if m in METRICS else "" for m in names]
    values = np.empty(per_metric * nm)
    for k, m in enumerate(names):
        values[k * per_metric : (k + 1) * per_metric] = result.arrays[m][lo:hi].ravel()
    ts = np.tile(np.repeat(times[lo:hi], w), nm)
    frame = pd.DataFrame({
        "cluster": _cat(np.zeros(len(values), np.int32), [result.cluster], categorical),
        "namespace": _cat(wcodes, result.namespaces, categorical),
        "workload": _cat(wcodes, result.workloads, categorical),
        "container": _cat(wcodes, result.containers, categorical),
        "metric": _cat(mcodes, names, categorical),
        "unit": _cat(mcodes, units, categorical),
        "ts": pd.DatetimeIndex(ts).tz_localize("UTC"),
        "value": values,
    })
    assert list(frame.columns) == list(COLUMNS)
    return frame


def labels_to_frame(labels: list[IncidentLabel]) -> pd.DataFrame:
    """One row per incident label: id, kind, namespace, workload, start, end (UTC), magnitude, description."""
    cols = {"id": "string", "kind": "string", "namespace": "string", "workload": "string",
            "start": "datetime64[ns, UTC]", "end": "datetime64[ns, UTC]", "magnitude": "float64", "description": "string"}
    rows = [{c: getattr(lb, c) for c in cols} for lb in labels]
    frame = pd.DataFrame(rows, columns=list(cols))
    return frame.astype({c: t for c, t in cols.items() if not t.startswith("datetime")}).assign(
        start=pd.to_datetime(frame["start"], utc=True).astype("datetime64[ns, UTC]"),
        end=pd.to_datetime(frame["end"], utc=True).astype("datetime64[ns, UTC]"))


def events_to_frame(events: list[SimEvent], cluster: str) -> pd.DataFrame:
    """One row per event: cluster, time (UTC), namespace, kind, name, reason, message, type."""
    cols = ["namespace", "kind", "name", "reason", "message", "type"]
    frame = pd.DataFrame({c: pd.array([getattr(e, c) for e in events], dtype="string") for c in cols})
    frame.insert(0, "time", pd.to_datetime([e.time for e in events], utc=True).astype("datetime64[ns, UTC]"))
    frame.insert(0, "cluster", pd.array([cluster] * len(events), dtype="string"))
    return frame


_REASON = {0: None, 1: "OOMKilled", 2: "Error"}


def build_snapshot(eng: "Engine") -> Snapshot:
    """The engine's cluster at `eng.now` as state objects (pods with names, nodes, counters).

    Pods show the state recorded for the last step run (`Engine.pod_view`): the exposition of this snapshot,
    read back through Prometheus, gives the series `run()` recorded for that step. Per-container counters
    reset when a container restarts (a new container instance, as cAdvisor's counters do).
    """
    from datetime import timedelta

    view = eng.pod_view()
    at = lambda s: eng.start + timedelta(seconds=float(s))  # noqa: E731
    last = eng._last
    spec = eng.spec
    counters = view["counters"]
    pods = []
    wi, si = np.nonzero(eng.p_alive)
    for w, s in zip(wi.tolist(), si.tolist()):
        ws = spec.workloads[w]
        node = int(eng.p_node[w, s])
        sched = node >= 0
        ready = bool(view["ready"][w, s])
        started = bool(view["started"][w, s])
        if sched and not started:
            waiting = "CrashLoopBackOff" if eng.p_waiting[w, s] == 2 else "ContainerCreating"
        else:
            waiting = None
        tpl = int(eng.p_tpl[w, s])
        _, res = eng._templates[w][tpl]
        cpu_now = float(last["cpu_pod"][w]) if ready else (float(last["cpu_idle"][w]) if started else 0.0)
        mem = float(last["mem_pod"][w] + eng.p_leaked[w, s]) if started else 0.0
        cpu_s, periods, throttled = (float(x) for x in counters[w, s])
        pods.append(PodState(
            name=eng.pod_name(w, s), namespace=ws.namespace, workload=ws.name, replicaset=eng.rs_name(w, tpl),
            container=ws.container, node=eng.nodes.name(node) if sched else None,
            phase="Running" if sched else "Pending", ready=ready, created=at(eng.p_created[w, s]),
            started=at(eng.p_started[w, s]) if started else None, restarts=int(eng.p_restarts[w, s]),
            waiting_reason=waiting, last_terminated_reason=_REASON[int(eng.p_reason[w, s])], resources=res,
            cpu_cores=cpu_now, cpu_usage_seconds_total=cpu_s, cfs_periods_total=periods,
            cfs_throttled_periods_total=throttled, memory_working_set_bytes=mem,
            labels={**ws.labels, "app": ws.name}))
    n_ready = view["ready"].sum(axis=1)
    workloads = []
    for w, ws in enumerate(spec.workloads):
        tpl = int(eng.cur_tpl[w])
        image, res = eng._templates[w][tpl]
        hpa = eng._hpas[w]
        util = eng.hpa.last_util[w]
        workloads.append(WorkloadState(
            namespace=ws.namespace, name=ws.name, container=ws.container, revision=int(eng.revision[w]),
            replicaset=eng.rs_name(w, tpl), spec_replicas=int(eng.replicas[w]), ready_replicas=int(n_ready[w]),
            resources=res, hpa=hpa, hpa_desired_replicas=int(eng.hpa.last_desired[w]) if hpa is not None else None,
            hpa_current_utilization=float(util) if hpa is not None and np.isfinite(util) else None,
            request_rate=float(last["request_rate"][w]), requests_total=float(eng._requests_total[w]),
            latency_p99_s=float(last["latency_p99"][w]),
            latency_bucket_counts=tuple(float(x) for x in eng._buckets[w]), latency_sum_s=float(eng._lat_sum[w]),
            labels=dict(ws.labels), annotations=dict(ws.annotations), image=image,
            requests_timed_out_total=float(eng._timed_out[w])))
    now_s = float(eng.t * eng.step_s)
    nb = eng.nodes
    nodes = [NodeState(name=nb.name(j), pool=spec.node_pools[int(nb.pool[j])].name,
                       instance_type=nb.type_name[int(nb.pool[j])], cpu_cores=float(nb.cpu_cap[j]),
                       memory_bytes=float(nb.mem_cap[j]), price_per_hour=float(nb.price[j]), created=at(nb.created[j]),
                       ready=bool(nb.ready_at[j] <= now_s),
                       conditions={"DiskPressure": bool(nb.disk_pressure[j]), "MemoryPressure": False})
             for j in np.flatnonzero(nb.alive).tolist()]
    return Snapshot(time=eng.now, step=eng.t, workloads=tuple(workloads), pods=tuple(pods), nodes=tuple(nodes))
