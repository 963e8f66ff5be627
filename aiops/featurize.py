"""Build the feature tables from stored raw data and store them (the work behind `flows/features.py`).

Reads only what passed validation (quarantined batches are never in `raw`), computes with the pure
functions of `features/`, and replaces the feature partitions of the days it covers, so a re-run gives the
same tables and a killed run leaves the previous tables in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from aiops.store import Store
from features import build_feature_tables

FEATURE_TABLES = ("demand", "utilisation", "series")


@dataclass
class FeatureSummary:
    start: datetime | None
    end: datetime | None
    input_rows: int
    tables: dict[str, int]  # table -> rows written


def read_raw(store: Store, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return store.read(start=start, end=end)


def compute_features(raw: pd.DataFrame, step: timedelta) -> dict[str, pd.DataFrame]:
    return build_feature_tables(raw, step=step)


def write_features(store: Store, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    out = {}
    for name, frame in tables.items():
        store.write_table(f"features/{name}", frame)
        out[name] = len(frame)
    return out


def build_features(store: Store, *, step: timedelta, start: datetime | None = None,
                   end: datetime | None = None) -> FeatureSummary:
    raw = read_raw(store, start, end)
    tables = compute_features(raw, step)
    return FeatureSummary(start, end, len(raw), write_features(store, tables))
