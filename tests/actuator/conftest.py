"""A simulated cluster served over HTTP for the actuator's tests, and actuators (or the CLI) acting on it.

The clock is frozen (speed 0) so what the tests read is deterministic. Each test takes its own workloads from a
pool (`take`) so tests do not depend on each other's order, and its own data directory (a fresh SQLite store and
audit key) unless it passes a database URL.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from aiops.actuator.actuator import Actuator
from aiops.actuator.recommendation import Evidence, Proposal, Target
from aiops.settings import SimSettings, load_settings
from aiops.sim.apiserver import ApiServer
from aiops.sim.generate import build_cluster
from aiops.sim.kubeconfig import write_kubeconfig
from aiops.sim.live import LiveCluster
from aiops.sim.spec import WorkloadSpec

KUBECTL = "/usr/bin/kubectl"
AIOPS = str(Path(sys.executable).with_name("aiops"))
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
OPT_IN = "aiops.dev/actuate"


@dataclass
class Sim:
    server: ApiServer
    live: LiveCluster
    kubeconfig: Path
    apps: client.AppsV1Api
    hpa: client.AutoscalingV2Api

    @property
    def url(self) -> str:
        return self.server.url

    def hpa_name(self, w: WorkloadSpec) -> str:
        return self.server.store.hpa_name(w.namespace, w.name)

    def deployment(self, w: WorkloadSpec) -> dict[str, Any]:
        return self.apps.api_client.sanitize_for_serialization(
            self.apps.read_namespaced_deployment(w.name, w.namespace))

    def opt_in(self, w: WorkloadSpec, value: str | None = "true") -> None:
        """Set (or remove, with None) the workload's opt-in annotation, as a person would with kubectl annotate."""
        self.apps.patch_namespaced_deployment(w.name, w.namespace, {"metadata": {"annotations": {OPT_IN: value}}})


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    spec = build_cluster(SimSettings(workloads=96, namespaces=4, seed=11), cluster_name="sim")
    live = LiveCluster(spec, start=START, step_s=60, seed=11, speed=0, history=timedelta(hours=2))
    server = ApiServer(live).start()
    kc = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", server.url, cluster="sim")
    api = config.new_client_from_config(config_file=str(kc))
    yield Sim(server, live, kc, client.AppsV1Api(api), client.AutoscalingV2Api(api))
    api.close()
    server.stop()


class Pool:
    """Hands out each workload once per session: `take("plain")` (no HPA) or `take("autoscaled")`."""

    def __init__(self, sim: Sim):
        ws = sim.live.spec.workloads
        self._plain = iter([w for w in ws if w.hpa is None])
        self._autoscaled = iter([w for w in ws if w.hpa is not None])
        self.sim = sim

    def take(self, kind: str = "plain", *, opt_in: bool = True) -> WorkloadSpec:
        try:
            w = next(self._plain if kind == "plain" else self._autoscaled)
        except StopIteration:
            raise AssertionError(f"the test cluster ran out of {kind} workloads: raise `workloads` in conftest")
        self.sim.opt_in(w, "true" if opt_in else None)
        return w


@pytest.fixture(scope="session")
def pool(sim: Sim) -> Pool:
    return Pool(sim)


@pytest.fixture
def make_actuator(sim: Sim, tmp_path: Path) -> Iterator[Callable[..., Actuator]]:
    """`make_actuator(role="operator", mode="apply", guardrails={...}, data_dir=..., database_url=...)`."""
    made: list[Actuator] = []

    def make(role: str | None = "operator", mode: str = "apply", guardrails: dict | None = None,
             data_dir: Path | None = None, kubeconfig: Path | None = None, **actuator: Any) -> Actuator:
        settings = load_settings(data_dir=data_dir or tmp_path / "data", kubeconfig=kubeconfig or sim.kubeconfig,
                                 actuator={"role": role, "mode": mode, "guardrails": guardrails or {}, **actuator})
        a = Actuator.open(settings)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


_runs = itertools.count()


def proposal(target: Target, change: Any, *, reason: str = "test", run: str | None = None) -> Proposal:
    """A proposal with evidence; a fresh `run` id each call unless given, so equal changes are distinct."""
    return Proposal(target=target, change=change, reason=reason,
                    evidence=Evidence(source="test", model="forecast-request_rate", model_version="1"),
                    run_id=run or f"run-{next(_runs)}")


def deployment_target(w: WorkloadSpec, *, container: bool = False) -> Target:
    return Target(cluster="sim", namespace=w.namespace, kind="Deployment", name=w.name,
                  container=w.container if container else None)


def hpa_target(sim: Sim, w: WorkloadSpec) -> Target:
    return Target(cluster="sim", namespace=w.namespace, kind="HorizontalPodAutoscaler", name=sim.hpa_name(w))


@pytest.fixture
def cli(sim: Sim, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `aiops` command (a subprocess) on this test's data directory against the served cluster.

    `cli("apply", "3", role="operator", mode="apply", env={...})`; role/mode None leave the setting unset.
    """

    def run(*args: str, role: str | None = "operator", mode: str | None = "apply", env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
        e.update(AIOPS_DATA_DIR=str(tmp_path / "data"), AIOPS_KUBECONFIG=str(sim.kubeconfig), NO_COLOR="1",
                 TERM="dumb")
        if role:
            e["AIOPS_ACTUATOR__ROLE"] = role
        if mode:
            e["AIOPS_ACTUATOR__MODE"] = mode
        e.update(env or {})
        return subprocess.run([AIOPS, *args], env=e, capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path)

    return run


@pytest.fixture
def kubectl(sim: Sim, tmp_path: Path) -> Callable[..., str]:
    """The real kubectl on the served cluster; returns stdout (fails the test on a non-zero exit)."""
    env = {**os.environ, "KUBECONFIG": str(sim.kubeconfig), "HOME": str(tmp_path)}

    def run(*args: str) -> str:
        p = subprocess.run([KUBECTL, "--request-timeout=10s", *args], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}"
        return p.stdout

    return run
