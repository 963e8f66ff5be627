"""Driving the engine from outside: demand given as an array, and replica schedules applied step by step.

What-if evaluation (the tuner, the scaling benchmark) replays one recorded demand through many candidate
settings at once, one workload per candidate, and lets a planner (or an oracle) set replicas, or an HPA's
minReplicas, at given steps. Both act inside the engine's time loop, at the start of the step they belong to,
as a client's write landing just before that instant would.
"""

from __future__ import annotations

import numpy as np


class ExternalMixin:
    """Replay arrays and schedules for `Engine` (see `Engine.replay` and `Engine.schedule`)."""

    _replay: np.ndarray | None = None
    _sched: dict[str, np.ndarray] | None = None
    _sched_t0: int = 0

    def replay(self, demand: np.ndarray) -> None:
        """Use `demand` (requests/s, shape (steps, W), row k = step k from the simulation start) instead of the
        spec's demand model. Steps beyond its end have no demand."""
        demand = np.asarray(demand, dtype=np.float64)
        w = len(self.spec.workloads)
        if demand.ndim != 2 or demand.shape[1] != w:
            raise ValueError(f"replay demand: expected shape (steps, {w}) for {w} workloads, got {demand.shape}")
        if not np.isfinite(demand).all() or (demand < 0).any():
            raise ValueError("replay demand: expected finite requests/s >= 0; it has NaN, inf or negative values")
        self._replay = demand

    def _replayed(self, t0: int, n: int) -> np.ndarray:
        out = np.zeros((n, self._replay.shape[1]))
        k = max(0, min(n, len(self._replay) - t0))
        out[:k] = self._replay[t0 : t0 + k]
        return out

    def schedule(self, *, replicas: np.ndarray | None = None, hpa_min: np.ndarray | None = None) -> None:
        """From the next step on, row k of `replicas` sets spec.replicas of each workload at step now + k (as
        `scale` does: ignored while an HPA controls the workload), and row k of `hpa_min` the minReplicas of its
        HPA (bounded by maxReplicas; the HPA raises replicas below it at its next sync, as k8s does). -1 leaves a
        value as it is. Shapes (steps, W); replaces any earlier schedule."""
        w = len(self.spec.workloads)
        sched = {}
        for name, arr in (("replicas", replicas), ("hpa_min", hpa_min)):
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.ndim != 2 or arr.shape[1] != w:
                raise ValueError(f"schedule {name}: expected shape (steps, {w}), got {arr.shape}")
            sched[name] = arr.astype(np.int64)
        self._sched = sched or None
        self._sched_t0 = self.t
        if "replicas" in sched:
            self._ensure_slots(int(np.ceil(sched["replicas"].max(initial=0) * 1.25)) + 2)

    def _scheduled(self, T: int) -> None:
        k = T - self._sched_t0
        reps = self._sched.get("replicas")
        if reps is not None and k < len(reps):
            row = reps[k]
            idx = np.flatnonzero((row >= 0) & (row != self.replicas) & ~self.hpa.active)
            for i in idx:
                self._set_replicas(int(i), int(row[i]), source="scale")
        mins = self._sched.get("hpa_min")
        if mins is not None and k < len(mins):
            row = mins[k]
            hpa = self.hpa
            idx = np.flatnonzero((row >= 1) & hpa.active & (np.minimum(row, hpa.maxr) != hpa.minr))
            if idx.size:
                hpa.minr[idx] = np.minimum(row[idx], hpa.maxr[idx])
                hpa._check_clamp = True  # replicas below the new minimum are raised at the next sync
