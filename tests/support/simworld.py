"""A simulated cluster's history stored as features, and its Kubernetes API serving the same cluster over HTTP:
what the optimisers read (stored series) and act on (the API) in the integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from aiops.settings import SimSettings
from aiops.sim.apiserver import ApiServer
from aiops.sim.engine import Engine
from aiops.sim.frames import result_to_frame
from aiops.sim.generate import build_cluster
from aiops.sim.kubeconfig import write_kubeconfig
from aiops.sim.live import LiveCluster
from aiops.sim.spec import ClusterSpec
from aiops.store import Store


@dataclass
class SimWorld:
    spec: ClusterSpec
    frame: pd.DataFrame  # the stored rows (1-minute steps), identity columns as strings
    server: ApiServer
    kubeconfig: Path
    data_dir: Path


def sim_world(root: Path, *, workloads: int, days: int, seed: int, start: datetime, metrics: list[str]) -> SimWorld:
    """`days` of a generated cluster stored under root/data (features/series), and its live API started; the caller
    stops `server`."""
    spec = build_cluster(SimSettings(workloads=workloads, namespaces=2, seed=seed, incidents=False), cluster_name="sim")
    result = Engine(spec, start=start, step_s=60, seed=seed).run(days * 1440)
    frame = result_to_frame(result, metrics, categorical=False)
    Store(root / "data").write_table("features/series", frame.drop(columns="unit").assign(observed=True))
    live = LiveCluster(spec, start=start, step_s=60, seed=seed, speed=0, history=timedelta(days=days))
    server = ApiServer(live).start()
    kc = write_kubeconfig(root / "kubeconfig", server.url, cluster="sim")
    return SimWorld(spec, frame, server, kc, root / "data")
