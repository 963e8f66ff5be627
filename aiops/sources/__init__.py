"""Metric and event sources: the simulated cluster (in process) or Prometheus; Kubernetes events.

`make_source(settings)` returns the `MetricSource` that `settings.source` names; `fetch_events(settings, start,
end)` returns the cluster's Kubernetes events. Backends are imported only when chosen.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import TYPE_CHECKING

from aiops.errors import UnknownNameError
from aiops.sources.base import MetricSource

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from aiops.settings import Settings

# name -> "module:Class", imported on first use
SOURCES: dict[str, str] = {
    "simulator": "aiops.sources.simulator:SimulatorSource",
    "prometheus": "aiops.sources.prometheus:PrometheusSource",
}


def make_source(settings: "Settings", name: str | None = None) -> MetricSource:
    """The metric source `name` (default `settings.source`), built from `settings`."""
    name = name or settings.source
    try:
        target = SOURCES[name]
    except KeyError:
        raise UnknownNameError("source", name, list(SOURCES)) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(settings)


def fetch_events(settings: "Settings", start: datetime, end: datetime) -> "pd.DataFrame":
    """Kubernetes events in `[start, end)`: columns cluster, namespace, kind, name, reason, message, type, ts.

    From the API server of `settings.kubeconfig` / `settings.kube_context` when a kubeconfig is set; otherwise,
    for the simulator source, the in-process simulation's events (the same history as its metrics); otherwise
    the simulator's own kubeconfig (`<data_dir>/state/kubeconfig`, written by `aiops sim serve`) if it exists,
    else $KUBECONFIG or ~/.kube/config.
    """
    from aiops.sources.kube_events import fetch_events as _fetch

    return _fetch(settings, start, end)


__all__ = ["MetricSource", "SOURCES", "make_source", "fetch_events"]
