"""What every metric source offers, and the checks and grid they share.

A source answers `fetch(start, end, metrics, step_s)` with a canonical frame (`aiops.series`): one row per
series (cluster, namespace, workload, container, metric) and grid instant `ts` with `start <= ts < end`, values
in the catalogue's units (`aiops.metrics`). A value at `ts` describes the step `[ts, ts + step_s)`: rates are the
mean over that step and counts (restarts, OOM kills) happen in it; gauges are the state the step ran with (the
engine's state at `ts` after its controllers acted, which is what `/metrics` shows until `ts + step_s`).
`aiops.sources.promql` says how Prometheus is read to match. A source never fills, drops or clips values: NaN
and out-of-range values reach validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from numbers import Integral
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from aiops.metrics import get_metric

if TYPE_CHECKING:  # pragma: no cover - pandas loads only when a source is used (keeps the CLI fast)
    import pandas as pd


@runtime_checkable
class MetricSource(Protocol):
    name: str  # "simulator" | "prometheus"

    def fetch(self, start: datetime, end: datetime, metrics: Sequence[str], step_s: int) -> pd.DataFrame:
        """Canonical frame of `metrics` on the step grid, `start <= ts < end`.

        Raises UnknownNameError (listing the known metrics) for a name not in the catalogue, SourceError when the
        backend fails or answers something unusable (naming the source, URL or query, and what was wrong).
        """
        ...

    def close(self) -> None:
        """Release connections and caches."""
        ...


def utc(t: datetime, *, name: str = "time") -> datetime:
    """`t` in UTC; a naive datetime is taken as UTC (as the settings do)."""
    if not isinstance(t, datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(t).__name__} {t!r}")
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def check_request(start: datetime, end: datetime, metrics: Sequence[str] | str,
                  step_s: int) -> tuple[datetime, datetime, list[str]]:
    """Normalise and check a fetch request: UTC times with `start <= end`, known metric names, a whole step."""
    start, end = utc(start, name="start"), utc(end, name="end")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}; expected start <= end")
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(dict.fromkeys(metrics))
    for m in names:
        get_metric(m)  # UnknownNameError listing the catalogue
    if isinstance(step_s, bool) or not isinstance(step_s, Integral) or step_s < 1:
        raise ValueError(f"step_s: expected a whole number of seconds >= 1, got {step_s!r}")
    return start, end, names


def grid(start: datetime, end: datetime, step_s: int, *, anchor: datetime | None = None) -> pd.DatetimeIndex:
    """The grid instants in `[start, end)`: `anchor + k * step_s` (anchor default: the Unix epoch, so a 60 s grid
    falls on whole minutes, as Grafana and the Prometheus UI align range queries)."""
    import numpy as np
    import pandas as pd

    a = int(utc(anchor).timestamp()) if anchor is not None else 0
    s, e = start.timestamp(), end.timestamp()
    k0 = -(-(s - a) // step_s)  # first k with anchor + k*step >= start
    first = a + int(k0) * step_s
    n = max(0, int(-(-(e - first) // step_s)))
    secs = first + step_s * np.arange(n, dtype=np.int64)
    return pd.DatetimeIndex(pd.to_datetime(secs * 1_000_000_000, unit="ns", utc=True)).as_unit("ns")
