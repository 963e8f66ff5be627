"""Kubernetes events through the official client, from the simulated cluster's API server over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aiops.errors import SourceError
from aiops.settings import load_settings
from aiops.sources import fetch_events
from aiops.sources.kube_events import EVENT_COLUMNS, list_events
from tests.sources.clusters import small_cluster
from tests.support.prometheus import closed_port

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def test_events_from_the_api_server(tmp_path):
    from aiops.sim.apiserver.server import ApiServer
    from aiops.sim.kubeconfig import write_kubeconfig
    from aiops.sim.live import LiveCluster

    live = LiveCluster(small_cluster(), start=T0, step_s=60, seed=1, speed=0)
    live.advance(150)  # through the leak's OOM kills and the crash loop
    with ApiServer(live, event_ttl=timedelta(days=30)) as srv:
        path = write_kubeconfig(tmp_path / "kubeconfig", srv.url, cluster="sim")
        settings = load_settings(source="prometheus", kubeconfig=path, cluster_name="lab")
        frame = fetch_events(settings, T0, T0 + timedelta(hours=3))
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == EVENT_COLUMNS
    assert len(frame) > 0 and set(frame["cluster"]) == {"lab"}
    assert frame["ts"].is_monotonic_increasing
    assert frame["ts"].min() >= T0 and frame["ts"].max() < T0 + timedelta(hours=3)
    assert {"BackOff"} <= set(frame["reason"]) and {"Warning"} <= set(frame["type"])
    backoff = frame[frame["reason"] == "BackOff"].iloc[0]
    assert backoff["kind"] == "Pod" and backoff["name"].startswith(("cart-", "etl-"))


def test_api_server_down(tmp_path):
    from aiops.sim.kubeconfig import write_kubeconfig

    url = f"http://127.0.0.1:{closed_port()}"
    path = write_kubeconfig(tmp_path / "kubeconfig", url, cluster="sim")
    with pytest.raises(SourceError, match=rf"API server at {url} not reachable"):
        list_events(str(path), None, T0, T0 + timedelta(hours=1), cluster="sim", timeout_s=2)


def test_bad_kubeconfig(tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: [is not a kubeconfig")
    with pytest.raises(SourceError, match="cannot load the kubeconfig"):
        list_events(str(bad), None, T0, T0 + timedelta(hours=1), cluster="sim")
