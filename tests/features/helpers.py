"""Tiny hand-made canonical frames for the feature tests."""

from __future__ import annotations

import pandas as pd

from aiops.metrics import METRICS
from aiops.series import COLUMNS

T0 = "2026-11-21T00:00:00Z"  # a Saturday


def ts(text: str) -> pd.Timestamp:
    """A UTC timestamp; "HH:MM[:SS]" is read on 2026-11-21."""
    if "T" not in text and len(text) <= 8:
        text = f"2026-11-21T{text}"
    t = pd.Timestamp(text)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def long_frame(rows: list[tuple], *, cluster: str = "c1", namespace: str = "ns") -> pd.DataFrame:
    """Rows of (workload, metric, time, value) or (workload, container, metric, time, value), canonical types."""
    records = []
    for r in rows:
        workload, container, metric, when, value = r if len(r) == 5 else (r[0], "app", *r[1:])
        unit = METRICS[metric].unit if metric in METRICS else "count"
        records.append((cluster, namespace, workload, container, metric, unit, ts(when), value))
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype(COLUMNS)
