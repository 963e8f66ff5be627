"""One simulated cluster served on a free loopback port for the whole session, plus clients that talk to it.

The clock is frozen (speed 0): tests move the simulation with `cluster.live.advance(n)`, so what they see is
deterministic. Tests that write pick their own deployment (see the `plain`/`autoscaled` fixtures) so they do not
depend on each other's order.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kubernetes import client, config

from aiops.settings import SimSettings
from aiops.sim.apiserver import ApiServer
from aiops.sim.generate import build_cluster
from aiops.sim.kubeconfig import write_kubeconfig
from aiops.sim.live import LiveCluster

KUBECTL = "/usr/bin/kubectl"
START = datetime(2026, 3, 2, tzinfo=timezone.utc)


@dataclass
class Served:
    server: ApiServer
    live: LiveCluster
    kubeconfig: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Served:
    spec = build_cluster(SimSettings(workloads=12, namespaces=3, seed=7), cluster_name="sim")
    live = LiveCluster(spec, start=START, step_s=60, seed=7, speed=0, history=timedelta(hours=6))
    server = ApiServer(live).start()
    kc = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", server.url, cluster="sim")
    yield Served(server, live, kc)
    server.stop()


@pytest.fixture(scope="session")
def api_client(cluster: Served) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def hpa2(api_client: client.ApiClient) -> client.AutoscalingV2Api:
    return client.AutoscalingV2Api(api_client)


@pytest.fixture(scope="session")
def hpa1(api_client: client.ApiClient) -> client.AutoscalingV1Api:
    return client.AutoscalingV1Api(api_client)


@pytest.fixture(scope="session")
def plain(cluster: Served) -> list[tuple[str, str]]:
    """(namespace, name) of the deployments without an HPA, in a fixed order; each writing test takes its own."""
    out = [(w.namespace, w.name) for w in cluster.live.spec.workloads if w.hpa is None]
    assert len(out) >= 5, "the test cluster needs at least 5 deployments without an HPA"
    return out


@pytest.fixture(scope="session")
def autoscaled(cluster: Served) -> list[tuple[str, str]]:
    out = [(w.namespace, w.name) for w in cluster.live.spec.workloads if w.hpa is not None]
    assert len(out) >= 4, "the test cluster needs at least 4 deployments with an HPA"
    return out


@pytest.fixture(scope="session")
def kubectl(cluster: Served):
    """Run the real kubectl against the served cluster; returns the CompletedProcess (text)."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.kubeconfig.parent)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, "--request-timeout=10s", *args], env=env, capture_output=True, text=True,
                              timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    return run
