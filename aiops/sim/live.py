"""A simulated cluster that lives in real time: an `Engine` behind a lock, advanced by a clock.

The clock maps wall time to simulated time: `sim = anchor_sim + (wall - anchor_wall) * speed`. By default the
simulation starts `history` before now (aligned to a step) and is fast-forwarded to now, so the cluster has a
past and, at speed 1, its timestamps match the wall clock (at other speeds simulated time runs ahead of it, so
client-side ages, e.g. in `kubectl describe`, drift; server-side Table ages use simulated time). `speed=0`
freezes the clock: only `advance(steps)` moves it (tests). Every read goes through `catch_up()`, so a reader
never sees a stale step; `start_clock()` also advances in the background so events and metrics flow while
nobody asks.

All engine access holds `lock` (re-entrant). `version` changes whenever the engine steps or is written, so
readers can cache what they derive from a snapshot per version.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from aiops.errors import AiopsError
from aiops.sim.spec import ClusterSpec, HPASpec, Resources
from aiops.sim.state import SimEvent, Snapshot

if TYPE_CHECKING:  # pragma: no cover
    from aiops.sim.engine import Engine

_FF_CHUNK = 240  # steps per lock hold while fast-forwarding, so readers are not starved


class LiveCluster:
    """Owns an `Engine` and advances it with a (real or manual) clock. Thread-safe."""

    def __init__(
        self,
        spec: ClusterSpec,
        *,
        start: datetime | None = None,
        step_s: int = 60,
        seed: int = 0,
        speed: float = 1.0,
        history: timedelta = timedelta(0),
        clock: Callable[[], float] = time.time,
        engine_factory: Callable[..., Any] | None = None,
    ):
        if speed < 0:
            raise AiopsError(f"speed must be >= 0 (0 freezes the clock), got {speed}")
        if step_s <= 0:
            raise AiopsError(f"step_s must be > 0, got {step_s}")
        if history < timedelta(0):
            raise AiopsError(f"history must be >= 0, got {history}")
        self.spec = spec
        self.step_s = step_s
        self.seed = seed
        self.speed = speed
        self._clock = clock
        wall_aligned = start is None
        if start is None:
            now = clock()
            first = now - history.total_seconds()
            start = datetime.fromtimestamp(first - first % step_s, tz=timezone.utc)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self.start = start
        if engine_factory is None:
            from aiops.sim.engine import Engine  # lazy: the engine pulls numpy-heavy modules

            engine_factory = Engine
        self.lock = threading.RLock()
        self.engine: Engine = engine_factory(spec, start=start, step_s=step_s, seed=seed)
        self.version = 0
        self._snap: tuple[int, Snapshot] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        steps = int(history.total_seconds() // step_s)
        while steps > 0:
            n = min(steps, _FF_CHUNK)
            with self.lock:
                self.engine.step(n)
                self.version += 1
            steps -= n
        # anchor the clock: at speed 1 a wall-aligned cluster maps sim time onto the wall clock itself; otherwise
        # simulated time runs `speed` times faster than the wall clock from here on
        self._anchor_sim = self.engine.now
        self._anchor_wall = self._anchor_sim.timestamp() if (wall_aligned and speed == 1) else clock()

    # --- time -------------------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        with self.lock:
            return self.engine.now

    def target_time(self) -> datetime:
        """The simulated instant the clock says it is now (the engine lags it by less than one step)."""
        if self.speed == 0:
            return self.engine.now
        return self._anchor_sim + timedelta(seconds=(self._clock() - self._anchor_wall) * self.speed)

    def catch_up(self, max_steps: int = 100_000) -> int:
        """Step the engine up to the clock's current time; returns the number of steps taken."""
        with self.lock:
            if self.speed == 0:
                return 0
            behind = (self.target_time() - self.engine.now).total_seconds()
            steps = min(int(behind // self.step_s), max_steps)
            if steps > 0:
                self.engine.step(steps)
                self.version += 1
            return max(steps, 0)

    def advance(self, steps: int = 1) -> None:
        """Step the engine by hand; the real-time clock (if any) continues from the new time."""
        if steps < 0:
            raise AiopsError(f"advance: steps must be >= 0, got {steps}")
        if steps == 0:
            return
        with self.lock:
            self.engine.step(steps)
            self._anchor_sim += timedelta(seconds=steps * self.step_s)
            self.version += 1

    def start_clock(self, interval_s: float | None = None) -> None:
        """Advance in a background (daemon) thread, so the cluster moves even when nobody reads it."""
        if self.speed == 0 or self._thread is not None:
            return
        interval = interval_s if interval_s is not None else max(0.2, min(5.0, self.step_s / self.speed / 2))
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                self.catch_up()

        self._thread = threading.Thread(target=run, name="aiops-sim-clock", daemon=True)
        self._thread.start()

    def stop_clock(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- reads ------------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot (after catching up), cached per version."""
        with self.lock:
            self.catch_up()
            if self._snap is None or self._snap[0] != self.version:
                self._snap = (self.version, self.engine.snapshot())
            return self._snap[1]

    def events(self) -> list[SimEvent]:
        with self.lock:
            self.catch_up()
            return list(self.engine.events)

    def read(self, events_from: int = 0) -> tuple[int, Snapshot, list[SimEvent], int]:
        """A consistent (version, snapshot, events[events_from:], number of events so far) reading.

        If the engine's event list is shorter than `events_from` (it was reset), all events are returned.
        """
        with self.lock:
            snap = self.snapshot()
            events = self.engine.events
            if events_from > len(events):
                events_from = 0
            return self.version, snap, events[events_from:], len(events)

    # --- writes (each bumps `version`) -------------------------------------------------------------------------

    def touch(self) -> None:
        """Mark what readers derived from this version stale (e.g. after a write that did not reach the engine)."""
        with self.lock:
            self.version += 1

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        with self.lock:
            self.catch_up()
            self.engine.scale(namespace, name, replicas)
            self.version += 1

    def set_hpa(self, namespace: str, name: str, hpa: HPASpec | None) -> None:
        with self.lock:
            self.catch_up()
            self.engine.set_hpa(namespace, name, hpa)
            self.version += 1

    def set_resources(self, namespace: str, name: str, resources: Resources) -> None:
        with self.lock:
            self.catch_up()
            self.engine.set_resources(namespace, name, resources)
            self.version += 1

    def set_image(self, namespace: str, name: str, image: str) -> None:
        with self.lock:
            self.catch_up()
            self.engine.set_image(namespace, name, image)
            self.version += 1

    def pool_bounds(self) -> dict[str, tuple[int, int]]:
        """(min_nodes, max_nodes) of each node pool's cluster autoscaler, as set now.

        An engine that does not model node pools (a test double) reports the spec's bounds.
        """
        with self.lock:
            bounds = getattr(self.engine, "pool_bounds", None)
            if bounds is None:
                return {p.name: (p.min_nodes, p.max_nodes) for p in self.spec.node_pools}
            return bounds()

    def set_pool_bounds(self, pool: str, min_nodes: int, max_nodes: int) -> None:
        """Set node pool `pool`'s cluster-autoscaler bounds (what a Cluster API MachineDeployment's
        `cluster-api-autoscaler-node-group-{min,max}-size` annotations say).

        From the next step the pool is kept between them: nodes missing up to `min_nodes` are added at once
        (Ready after the pool's provisioning delay), nodes above `max_nodes` are drained and removed, and the
        autoscaler then scales within the new bounds. `max_nodes` cannot exceed the pool's slot capacity, the
        spec's `max_nodes`.
        """
        spec = next((p for p in self.spec.node_pools if p.name == pool), None)
        if spec is None:
            raise AiopsError(f"set_pool_bounds: no node pool {pool!r}; known: "
                             f"{sorted(p.name for p in self.spec.node_pools)}")
        for arg, value in (("min_nodes", min_nodes), ("max_nodes", max_nodes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AiopsError(f"set_pool_bounds({pool!r}): {arg} must be an integer >= 0, got {value!r}")
        if min_nodes > max_nodes:
            raise AiopsError(f"set_pool_bounds({pool!r}): min_nodes ({min_nodes}) must be <= max_nodes "
                             f"({max_nodes}); lower min_nodes or raise max_nodes")
        if max_nodes > spec.max_nodes:
            raise AiopsError(f"set_pool_bounds({pool!r}): max_nodes ({max_nodes}) is above the pool's slot "
                             f"capacity ({spec.max_nodes}, the spec's max_nodes); raise max_nodes in the cluster "
                             "spec to allow more")
        with self.lock:
            self.catch_up()
            self.engine.set_pool_bounds(pool, min_nodes, max_nodes)
            self.version += 1
