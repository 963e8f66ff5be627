"""`aiops sim serve` as a real process: prints its URL, writes a kubeconfig kubectl uses, runs in real time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AIOPS = str(Path(sys.executable).parent / "aiops")
KUBECTL = "/usr/bin/kubectl"


def _requests_total(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("istio_requests_total{"))


def test_sim_serve_subprocess(tmp_path):
    kubeconfig = tmp_path / "kube" / "config"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update({"AIOPS_DATA_DIR": str(tmp_path / "data"), "AIOPS_SIM__WORKLOADS": "6", "AIOPS_SIM__NAMESPACES": "2"})
    proc = subprocess.Popen([AIOPS, "sim", "serve", "--port", "0", "--kubeconfig", str(kubeconfig), "--speed", "120",
                             "--history-hours", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("export KUBECONFIG="):
                break
        out = "".join(lines)
        assert proc.poll() is None, f"aiops sim serve exited: {out}{proc.stderr.read()}"
        url = re.search(r"at (http://127\.0\.0\.1:\d+)", out).group(1)
        assert f"export KUBECONFIG={kubeconfig.resolve()}" in out
        assert url in kubeconfig.read_text()
        kenv = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

        def kubectl(*args: str) -> str:
            return subprocess.run([KUBECTL, "--request-timeout=10s", *args], env=kenv, capture_output=True, text=True,
                                  check=True, timeout=60).stdout

        deploys = kubectl("get", "deploy", "-A", "-o", "name").split()
        assert len(deploys) == 6 and all(d.startswith("deployment.apps/") for d in deploys)
        # the clock runs: 120 simulated seconds per second, so counters grow between two scrapes
        first = _requests_total(kubectl("get", "--raw", "/metrics"))
        time.sleep(2.5)
        second = _requests_total(kubectl("get", "--raw", "/metrics"))
        assert second > first > 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0
