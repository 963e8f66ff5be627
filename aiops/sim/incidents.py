"""Injected incidents: when they act on the engine, and the ground-truth labels they leave.

An incident is active on steps [first, last) with first = ceil(start / step) and last = ceil(end / step),
so its effect never shows before its label's start. Continuous effects are dense (n, W) arrays the engine
reads row by row (only built for kinds present in the span); discrete ones are actions on a step:

- traffic_spike: demand x magnitude.
- memory_leak: each pod's working set grows `magnitude` bytes per hour while active; the leaked memory stays
  until the container restarts (a leak is not returned when the bad code path stops being hit), so pods whose
  working set passes the memory limit get OOMKilled.
- crash_loop: a `magnitude` fraction of the pods (fixed per pod slot) exit with an error shortly after each
  start while active -> restarts and CrashLoopBackOff delays 10 s, 20 s, 40 s ... 300 s.
- disk_pressure: at start the node hosting the workload's first pod gets DiskPressure (and its NoSchedule
  taint) and the kubelet evicts a `magnitude` fraction of that node's pods (all workloads); cleared at the end.
- noisy_neighbour: a `magnitude` fraction of the CPU of the workload's pods is stolen (lower effective CPU
  capacity -> throttling and latency).
- bad_deploy: at start a new revision (image tag `-bad`) rolls out whose pods answer `magnitude` x slower;
  at the end it is rolled back (k8s `rollout undo`: a new revision with the previous template).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from aiops.sim.spec import ClusterSpec, IncidentSpec
from aiops.sim.state import IncidentLabel

DENSE_KINDS = ("traffic_spike", "memory_leak", "crash_loop", "noisy_neighbour")
ACTION_KINDS = ("disk_pressure", "bad_deploy")


def _describe(inc: IncidentSpec) -> str:
    who = f"{inc.namespace}/{inc.workload}"
    m = inc.magnitude
    mins = inc.duration.total_seconds() / 60
    return {
        "traffic_spike": f"traffic spike on {who}: demand x{m:g} for {mins:.0f} min",
        "memory_leak": f"memory leak in {who}: +{m / 2**20:.0f} MiB per hour per pod for {mins:.0f} min (OOM kills)",
        "crash_loop": f"crash loop in {who}: {m:.0%} of pods exit with an error after start for {mins:.0f} min",
        "disk_pressure": f"disk pressure on the node hosting {who}: DiskPressure, {m:.0%} of its pods evicted",
        "noisy_neighbour": f"noisy neighbour on the nodes of {who}: {m:.0%} of CPU stolen for {mins:.0f} min",
        "bad_deploy": f"bad deploy of {who}: new revision {m:g}x slower, rolled back after {mins:.0f} min",
    }[inc.kind]


@dataclass(frozen=True)
class Active:
    """One incident resolved against the engine's clock: workload index and step window [first, last)."""

    index: int
    kind: str
    w: int
    first: int
    last: int
    magnitude: float


class IncidentPlan:
    """The spec's incidents against a start time and step."""

    def __init__(self, spec: ClusterSpec, *, start: datetime, step_s: int):
        self.w = len(spec.workloads)
        self.items: list[Active] = []
        self.labels: list[IncidentLabel] = []
        for k, inc in enumerate(spec.incidents):
            s0, s1 = inc.start.total_seconds(), (inc.start + inc.duration).total_seconds()
            first, last = math.ceil(s0 / step_s - 1e-9), math.ceil(s1 / step_s - 1e-9)
            w = spec.workload_index(inc.namespace, inc.workload)
            self.items.append(Active(k, inc.kind, w, first, max(last, first + 1), inc.magnitude))
            self.labels.append(IncidentLabel(
                id=f"inc-{k:03d}-{inc.kind}", kind=inc.kind, namespace=inc.namespace, workload=inc.workload,
                start=start + inc.start, end=start + inc.start + inc.duration, magnitude=inc.magnitude,
                description=_describe(inc)))
        self.actions: dict[int, list[tuple[str, Active]]] = {}
        for a in self.items:
            if a.kind in ACTION_KINDS:
                self.actions.setdefault(a.first, []).append(("start", a))
                self.actions.setdefault(a.last, []).append(("end", a))

    def dense(self, kind: str, t0: int, n: int) -> np.ndarray | None:
        """(n, W) array of `kind`'s effect on steps [t0, t0+n), or None when no such incident overlaps.

        traffic_spike: demand multiplier (1 = none); memory_leak: leak in bytes per second;
        crash_loop: fraction of pods crashing; noisy_neighbour: fraction of CPU stolen.
        """
        hits = [a for a in self.items if a.kind == kind and a.first < t0 + n and a.last > t0]
        if not hits:
            return None
        out = np.ones((n, self.w)) if kind == "traffic_spike" else np.zeros((n, self.w))
        for a in hits:
            lo, hi = max(a.first, t0) - t0, min(a.last, t0 + n) - t0
            if kind == "traffic_spike":
                out[lo:hi, a.w] *= a.magnitude
            elif kind == "memory_leak":
                out[lo:hi, a.w] += a.magnitude / 3600.0
            else:
                out[lo:hi, a.w] = np.minimum(out[lo:hi, a.w] + a.magnitude, 0.95 if kind == "noisy_neighbour" else 1.0)
        return out
