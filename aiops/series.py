"""Series identity and the canonical long frame every source produces and the store keeps.

A series is `(cluster, namespace, workload, container, metric)`; the metric fixes the unit. A frame of
observations has one row per series and timestamp, in the columns below, timestamps in UTC.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from aiops.errors import SchemaError

SERIES_KEY: tuple[str, ...] = ("cluster", "namespace", "workload", "container", "metric")
COLUMNS: dict[str, str] = {
    "cluster": "string",
    "namespace": "string",
    "workload": "string",
    "container": "string",
    "metric": "string",
    "unit": "string",
    "ts": "datetime64[ns, UTC]",
    "value": "float64",
}
ROW_KEY: tuple[str, ...] = (*SERIES_KEY, "ts")


class SeriesId(NamedTuple):
    cluster: str
    namespace: str
    workload: str
    container: str
    metric: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.workload}/{self.container}:{self.metric}"


def empty_frame() -> pd.DataFrame:
    """A frame with the canonical columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def check_columns(frame: pd.DataFrame, *, name: str = "frame") -> None:
    """Raise SchemaError naming the missing or extra columns of `frame`."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in COLUMNS]
    if missing or extra:
        raise SchemaError(
            f"{name}: expected columns {list(COLUMNS)}; missing {missing or 'none'}, unexpected {extra or 'none'}"
        )


def conform(frame: pd.DataFrame, *, name: str = "frame") -> pd.DataFrame:
    """A copy of `frame` with exactly the canonical columns, in order, cast to their types.

    Casting fails loudly (SchemaError naming the column) rather than coercing bad values to NaN.
    """
    check_columns(frame, name=name)
    out = {}
    for col, dtype in COLUMNS.items():
        s = frame[col]
        try:
            if col == "ts":
                s = pd.to_datetime(s, utc=True).astype(dtype)
            elif col == "value":
                s = pd.to_numeric(s, errors="raise").astype(dtype)
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{name}: column {col!r} cannot be read as {dtype}: {exc}") from exc
        out[col] = s.reset_index(drop=True)
    return pd.DataFrame(out)
