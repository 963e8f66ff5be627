"""Window-by-window canonical frames for the ingest benchmarks: the simulator's when it is there, else numpy.

Frames are produced one window at a time, so a benchmark never holds more than one window of data.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiops.metrics import METRICS  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _have_simulator() -> bool:
    try:
        from aiops.sim.engine import simulate  # noqa: F401
        from aiops.sim.frames import result_to_frame  # noqa: F401
        from aiops.sim.generate import build_cluster  # noqa: F401
    except ImportError:
        return False
    return True


class WindowSource:
    """Yields (window_start, window_end, frame) for `days` of `workloads` workloads, all catalogue metrics."""

    def __init__(self, *, workloads: int, days: int, seed: int, window: timedelta, step_s: int = 60,
                 kind: str = "auto"):
        self.workloads, self.days, self.seed, self.window, self.step_s = workloads, days, seed, window, step_s
        self.kind = ("simulator" if _have_simulator() else "synthetic") if kind == "auto" else kind
        self.steps_per_window = int(window.total_seconds()) // step_s
        self.n_windows = int(timedelta(days=days) / window)
        self._engine = None

    @property
    def rows(self) -> int:
        return self.n_windows * self.steps_per_window * self.workloads * len(METRICS)

    def __iter__(self) -> Iterator[tuple[datetime, datetime, pd.DataFrame]]:
        if self.kind == "simulator":
            yield from self._simulated()
        else:
            yield from self._synthetic()

    def _simulated(self) -> Iterator[tuple[datetime, datetime, pd.DataFrame]]:
        # run the engine window by window (Engine.run continues from its state), so memory stays one window
        from aiops.settings import SimSettings
        from aiops.sim.engine import Engine
        from aiops.sim.frames import result_to_frame
        from aiops.sim.generate import build_cluster

        sim = SimSettings(workloads=self.workloads, namespaces=min(10, self.workloads), days=self.days,
                          seed=self.seed, start=START)
        spec = build_cluster(sim, start=START)
        engine = Engine(spec, start=START, step_s=self.step_s, seed=self.seed)
        for k in range(self.n_windows):
            ws = START + k * self.window
            result = engine.run(self.steps_per_window)
            frame = result_to_frame(result, None, ws, ws + self.window)
            yield ws, ws + self.window, frame

    def _synthetic(self) -> Iterator[tuple[datetime, datetime, pd.DataFrame]]:
        rng = np.random.default_rng(self.seed)
        names = list(METRICS)
        w, n = self.workloads, self.steps_per_window
        ns = [f"ns{i % 10}" for i in range(w)]
        wl = [f"workload-{i}" for i in range(w)]
        for k in range(self.n_windows):
            ws = START + k * self.window
            times = pd.date_range(ws, periods=n, freq=f"{self.step_s}s")
            per = n * w
            m_codes = np.repeat(np.arange(len(names)), per)
            w_codes = np.tile(np.arange(w), n * len(names))
            values = rng.uniform(0.0, 0.9, per * len(names))
            cat = lambda codes, cats: pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(cats, dtype="string")))  # noqa: E731
            frame = pd.DataFrame({
                "cluster": cat(np.zeros(per * len(names), dtype=np.int32), ["sim"]),
                "namespace": cat(w_codes % 10, [f"ns{i}" for i in range(10)]) if w >= 10 else cat(w_codes, ns),
                "workload": cat(w_codes, wl),
                "container": cat(np.zeros(per * len(names), dtype=np.int32), ["app"]),
                "metric": cat(m_codes, names),
                "unit": pd.Categorical(np.asarray([METRICS[m].unit for m in names])[m_codes]).astype(
                    pd.CategoricalDtype(pd.Index(sorted({METRICS[m].unit for m in names}), dtype="string"))
                ),
                "ts": pd.DatetimeIndex(np.tile(np.repeat(times.tz_localize(None).to_numpy(), w), len(names)), tz="UTC"),
                "value": values,
            })
            yield ws, ws + self.window, frame
