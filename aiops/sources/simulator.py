"""Metrics from the simulated cluster, computed in process.

The cluster is `build_cluster(settings.sim, cluster_name=settings.cluster_name)`, simulated from
`settings.sim.resolved_start()` with `settings.sim.step_seconds` and `settings.sim.seed`. The engine runs forward
lazily, always in the same fixed chunks of whole days from the start, and the results are kept for the life of
the source; so a window's values depend only on the settings, not on which windows were asked before or in which
process (bit-identical). Rows are on the simulation's own grid (`start + k * step`); a value at `ts` describes
the step `[ts, ts + step)` (see `aiops.sources.base`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from aiops.errors import SourceError
from aiops.series import conform, empty_frame
from aiops.sources.base import check_request, utc

CHUNK_S = 86_400  # the engine advances in whole days of steps (a fixed call pattern keeps results identical)
CACHED_CHUNKS = 3  # days of results kept (in-order ingest needs the day in flight and the next); older ones are dropped


class SimulatorSource:
    """The simulated cluster as a metric source; also its incident labels and Kubernetes events."""

    name = "simulator"

    def __init__(self, settings, *, spec=None):
        """`spec`: simulate this ClusterSpec instead of the one `settings.sim` generates (tests, benchmarks)."""
        self.settings = settings
        self.cluster = settings.cluster_name
        if spec is None:
            from aiops.sim.generate import build_cluster

            spec = build_cluster(settings.sim, cluster_name=settings.cluster_name)
        self.spec = spec
        self.start = settings.sim.resolved_start()
        self.step_s = int(settings.sim.step_seconds)
        self._chunk_steps = max(1, math.ceil(CHUNK_S / self.step_s))
        self._lock = threading.RLock()  # task runners may fetch from several threads
        self._engine = self._new_engine()
        self._parts: list = []  # SimResult per chunk, in order; None once dropped from the cache
        self._events: list[list] = []  # events per chunk, kept for every chunk (small next to the arrays)
        self._result = None  # the concatenation of _parts, rebuilt when a chunk is added
        self.glitches = plan_glitches(spec, self.start, settings.sim)

    def _new_engine(self):
        from aiops.sim.engine import Engine  # lazy: the engine pulls numpy-heavy modules

        return Engine(self.spec, start=self.start, step_s=self.step_s, seed=self.settings.sim.seed)

    def __repr__(self) -> str:
        return f"SimulatorSource(cluster={self.cluster!r}, start={self.start.isoformat()}, step={self.step_s}s)"

    # --- the simulation, extended on demand ---------------------------------------------------------------

    @property
    def simulated_until(self) -> datetime:
        """End (exclusive) of the span simulated so far."""
        return self.start + timedelta(seconds=len(self._parts) * self._chunk_steps * self.step_s)

    def result(self, end: datetime | None = None):
        """The SimResult from the start up to at least `end` (default: what is simulated already)."""
        with self._lock:
            if end is not None:
                self._extend(utc(end, name="end"))
            if self._result is None and self._parts:
                if any(p is None for p in self._parts):
                    self._resimulate()
                self._result = _concat(self.spec.name, self._parts)
            return self._result

    def _extend(self, end: datetime, *, keep: int = CACHED_CHUNKS) -> None:
        while self.simulated_until < end:
            try:
                self._parts.append(self._engine.run(self._chunk_steps))
            except Exception as exc:  # the engine's failure is this source's failure
                raise SourceError(f"simulator (cluster {self.cluster!r}, seed {self.settings.sim.seed}): "
                                  f"simulating from {self.simulated_until.isoformat()} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
            if len(self._events) < len(self._parts):
                self._events.append(self._parts[-1].events)
            if len(self._parts) > keep:
                self._parts[-keep - 1] = None
            self._result = None

    def _resimulate(self, first: int = 0) -> None:
        """Simulate again from the start (same engine calls, so identical results), keeping chunks from `first` on."""
        n = len(self._parts)
        self._engine, self._parts, self._result = self._new_engine(), [], None
        while len(self._parts) < n:
            self._extend(self.simulated_until + timedelta(seconds=1), keep=max(CACHED_CHUNKS, n - first))
            if len(self._parts) - 1 < first:
                self._parts[-1] = None

    # --- MetricSource ---------------------------------------------------------------------------------------

    def fetch(self, start: datetime, end: datetime, metrics: Sequence[str], step_s: int) -> pd.DataFrame:
        from aiops.sim.frames import result_to_frame

        start, end, names = check_request(start, end, metrics, step_s)
        if step_s != self.step_s:
            raise SourceError(
                f"simulator: asked for a {step_s} s step but the simulation steps {self.step_s} s; set "
                f"AIOPS_INGEST__STEP_SECONDS={self.step_s} or AIOPS_SIM__STEP_SECONDS={step_s}")
        if not names or end <= self.start or end <= start:
            return empty_frame()
        frames = [result_to_frame(part, metrics=names, start=start, end=end)
                  for part in self._parts_between(start, end)]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        frame["cluster"] = self.cluster
        frame = conform(frame, name="simulator")
        hits = [g for g in self.glitches if start <= g.ts < end and g.metric in names]
        return _apply_glitches(frame, hits) if hits else frame

    def _parts_between(self, start: datetime, end: datetime) -> list:
        """The chunks (SimResults) that overlap `[start, end)`, simulating up to `end` first."""
        with self._lock:
            self._extend(end)
            span = timedelta(seconds=self._chunk_steps * self.step_s)
            first = max(0, int((start - self.start) // span))
            last = int(-(-(end - self.start) // span))
            if any(p is None for p in self._parts[first:last]):  # asked again for a day dropped from the cache
                self._resimulate(first)
            return self._parts[first:last]

    def close(self) -> None:
        """Drop the cached simulation (a later fetch simulates again, with identical results)."""
        with self._lock:
            self._engine = self._new_engine()
            self._parts = []
            self._events = []
            self._result = None

    # --- context: ground truth and events --------------------------------------------------------------------

    def labels(self) -> pd.DataFrame:
        """Ground truth: the incidents injected over the configured span (`sim.days` from the start)."""
        from aiops.sim.frames import labels_to_frame

        return labels_to_frame(list(self._engine.labels))

    def events(self, start: datetime, end: datetime) -> pd.DataFrame:
        """The Kubernetes events the simulated controllers emitted in `[start, end)`."""
        from aiops.sim.frames import events_to_frame
        from aiops.sources.kube_events import events_frame

        start, end = utc(start, name="start"), utc(end, name="end")
        events = []
        if end > self.start and end > start:
            with self._lock:
                self._extend(end)
                events = [e for chunk in self._events for e in chunk if start <= utc(e.time) < end]
        frame = events_to_frame(events, self.cluster).rename(columns={"time": "ts"})
        return events_frame(frame.to_dict("records"))


@dataclass(frozen=True)
class Glitch:
    """An exporter fault: `samples` consecutive samples of one series from `ts` on arrive twice."""

    ts: datetime
    namespace: str
    workload: str
    metric: str
    samples: int = 5


GLITCH_METRICS = ("cpu_usage", "memory_working_set", "request_rate")


def plan_glitches(spec, start: datetime, sim) -> list[Glitch]:
    """Where the configured exporter glitches fall: deterministic for the seed, inside the simulated span."""
    if not sim.scrape_glitches or not spec.workloads:
        return []
    rng = np.random.default_rng([sim.seed, 0x61C7])  # its own stream: glitches never move the simulation
    steps = int(sim.days * 86_400 // sim.step_seconds)
    out = []
    for _ in range(sim.scrape_glitches):
        w = spec.workloads[int(rng.integers(len(spec.workloads)))]
        at = start + timedelta(seconds=int(rng.integers(steps // 10, max(steps - 10, steps // 10 + 1))) * sim.step_seconds)
        out.append(Glitch(at, w.namespace, w.name, GLITCH_METRICS[int(rng.integers(len(GLITCH_METRICS)))]))
    return out


def _apply_glitches(frame: pd.DataFrame, glitches: list[Glitch]) -> pd.DataFrame:
    extra = []
    for g in glitches:
        rows = frame[(frame["namespace"] == g.namespace) & (frame["workload"] == g.workload)
                     & (frame["metric"] == g.metric) & (frame["ts"] >= pd.Timestamp(g.ts))].head(g.samples)
        extra.append(rows.assign(value=rows["value"] * 1.02))  # a retried scrape: same times, slightly later values
    if not extra:
        return frame
    # appended after the window's rows, as a late duplicate delivery would be
    return pd.concat([frame, *extra], ignore_index=True)


def _concat(cluster: str, parts: list):
    """One SimResult from consecutive ones."""
    from aiops.sim.state import SimResult

    first = parts[0]
    if len(parts) == 1:
        return first
    cost = [p.cost_per_hour for p in parts]
    slo = [p.slo_violation for p in parts]
    seen: set = set()
    labels = []
    for p in parts:
        for lb in p.labels:
            if lb.id not in seen:
                seen.add(lb.id)
                labels.append(lb)
    return SimResult(
        cluster=cluster,
        times=np.concatenate([p.times for p in parts]),
        namespaces=first.namespaces, workloads=first.workloads, containers=first.containers,
        arrays={m: np.concatenate([p.arrays[m] for p in parts]) for m in first.arrays},
        node_counts={k: np.concatenate([p.node_counts[k] for p in parts]) for k in first.node_counts},
        cost_per_hour=None if any(c is None for c in cost) else np.concatenate(cost),
        slo_violation=None if any(s is None for s in slo) else np.concatenate(slo),
        labels=labels,
        events=[e for p in parts for e in p.events],
    )
