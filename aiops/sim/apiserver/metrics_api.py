"""The resource metrics API (`metrics.k8s.io/v1beta1`, what metrics-server serves): `kubectl top` works.

Usage is the simulator's current per-pod CPU and working set; a node's usage is the sum over its pods (the
simulator does not model system daemons).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiops.sim.apiserver.units import ts
from aiops.sim.state import NodeState, PodState

Obj = dict[str, Any]
WINDOW = "1m0s"


def _usage(cpu_cores: float, memory_bytes: float) -> Obj:
    # metrics-server reports nanocores and KiB
    return {"cpu": f"{max(int(round(cpu_cores * 1e9)), 0)}n", "memory": f"{max(int(memory_bytes // 1024), 0)}Ki"}


def pod_metrics(p: PodState, labels: dict[str, str], now: datetime) -> Obj:
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": p.name, "namespace": p.namespace, "creationTimestamp": ts(now), "labels": labels},
        "timestamp": ts(now),
        "window": WINDOW,
        "containers": [{"name": p.container, "usage": _usage(p.cpu_cores, p.memory_working_set_bytes)}],
    }


def node_metrics(n: NodeState, pods: list[PodState], labels: dict[str, str], now: datetime) -> Obj:
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": n.name, "creationTimestamp": ts(now), "labels": labels},
        "timestamp": ts(now),
        "window": WINDOW,
        "usage": _usage(sum(p.cpu_cores for p in pods), sum(p.memory_working_set_bytes for p in pods)),
    }


def has_metrics(p: PodState) -> bool:
    """metrics-server reports pods whose container is running on a node."""
    return p.node is not None and p.phase == "Running" and p.started is not None and p.waiting_reason is None
