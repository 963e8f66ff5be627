"""Shared helpers: canonical frames built with numpy, in the order a source produces them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from aiops.metrics import METRICS
from aiops.series import COLUMNS

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
H6 = timedelta(hours=6)


def make_frame(
    metrics: tuple[str, ...] = ("cpu_usage",),
    *,
    start: datetime = T0,
    steps: int = 360,
    workloads: int = 3,
    step: timedelta = timedelta(minutes=1),
    seed: int = 0,
    cluster: str = "sim",
) -> pd.DataFrame:
    """A valid canonical frame: every series of every metric, each series' rows in time order."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=steps, freq=step)
    parts = []
    for m in metrics:
        hi = 0.9 if METRICS[m].unit == "ratio" else 100.0
        parts.append(
            pd.DataFrame(
                {
                    "cluster": cluster,
                    "namespace": np.repeat([f"ns{i % 2}" for i in range(workloads)], steps),
                    "workload": np.repeat([f"w{i}" for i in range(workloads)], steps),
                    "container": "app",
                    "metric": m,
                    "unit": METRICS[m].unit,
                    "ts": np.tile(ts, workloads),
                    "value": rng.uniform(0.0, hi, workloads * steps),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    return frame.astype(COLUMNS)


@pytest.fixture
def store(tmp_path):
    from aiops.store import Store

    return Store(tmp_path / "data")
