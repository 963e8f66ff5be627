"""The README's main job: `aiops demo` on a fresh directory, then `aiops status` (real subprocesses)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AIOPS = str(Path(sys.executable).with_name("aiops"))


def _run(args, cwd, **env):
    e = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "PREFECT_"))}, **env}
    return subprocess.run([AIOPS, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=600)


# two days: forecasters are judged against the daily seasonal-naive forecast, which needs more than a day before
# the holdout; the demo test trains the fast candidates only, on one forecasting and one detection task
SMALL_TRAINING = {"AIOPS_TRAIN__FORECASTERS": '["naive"]', "AIOPS_TRAIN__DETECTORS": '["isolation_forest"]',
                  "AIOPS_TRAIN__FORECAST_METRICS": '["request_rate"]', "AIOPS_TRAIN__DETECT_UNIVARIATE": "[]",
                  "AIOPS_TRAIN__HOLDOUT_HOURS": "6", "AIOPS_TUNE__BUDGET": "32", "AIOPS_TUNE__MAX_WORKLOADS": "2"}


def test_demo_runs_the_pipeline_and_prints_a_readable_summary(tmp_path):
    proc = _run(["demo", "--days", "2", "--workloads", "6"], tmp_path, **SMALL_TRAINING)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    data = tmp_path / "data"
    assert "aiops demo: summary" in out
    assert "Injected incidents (6;" in out and "memory leak in" in out and "bad deploy of" in out
    assert "Ingest (simulator): 8 windows of 6 h × 13 metrics — 8 stored now, 0 already stored, 1 with quarantined" in out
    # the injected exporter glitch is caught at the door and kept, and its window stays missing
    assert "Quarantined batches: 1" in out and "duplicate (series key, ts)" in out
    assert "1 missing windows" in out
    assert "Features: demand" in out and str(data.resolve()) in out
    assert "aiops ui prefect" in out and "aiops ui mlflow" in out
    assert "forecast-request_rate: candidates on holdout" in out and "detect-workload: candidates" in out
    assert "naive v1: promoted to champion" in out
    assert "Anomalies found by the champion detectors" in out and re.search(r"detect-workload: \w+ v1 scored", out)
    # the act steps: what would be pre-scaled and why, the tuned HPA settings and their expected effect, both
    # dry-run through the actuator against the in-process simulated API (mode dry-run, the demo's developer role)
    assert "Pre-scaling: replicas planned ahead of the forecast demand, and why" in out
    assert re.search(r"\[predictive\] (replicas|minReplicas) \d+ -> \d+: predictive: forecast-request_rate\[\w+\]", out)
    assert re.search(r"through the actuator: .*dry-run-ok \d+", out)
    assert "HPA tuning: NSGA-II in the simulator" in out and "32 candidates in" in out
    assert re.search(r"expected on the last [\d.]+ days replayed: SLO-violation minutes \d+ -> \d+, replica-hours", out)
    # right-sizing: the expected monthly saving and its risk, node pools and the catalog mix
    assert "Cost: right-sized requests (PuLP) and node pools" in out
    assert re.search(r"6 containers, usage 2026-[\d-]+ [\d:]+ \.\. 2026-[\d-]+ [\d:]+: \$[\d,.]+ -> \$[\d,.]+ per "
                     r"month, saves \$-?[\d,.]+", out)
    assert re.search(r"risk: CPU usage above the request in [\d.]+% of intervals now", out)
    assert "node pool " in out and "cheapest node mix for the right-sized pods:" in out
    assert "aiops suggestions --all" in out
    # progress and per-window Prefect logs went to stderr
    assert "Flow run" in proc.stderr and "window 2026-" in proc.stderr
    assert any(data.glob("raw/metric=cpu_usage/day=*/simulator__*.parquet"))
    assert (data / "state" / "watermarks.sqlite").exists() and (data / "prefect" / "prefect.db").exists()

    status = _run(["status", "-o", "json"], tmp_path, AIOPS_SIM__DAYS="2", AIOPS_SIM__WORKLOADS="6")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["series"] == 6 * 13 and len(st["quarantined"]) == 1 and len(st["missing_windows"]) == 1
    q, gap = st["quarantined"][0], st["missing_windows"][0]
    assert gap["metric"] == q["metric"] and Path(q["path"]).exists()
    assert st["feature_tables"]["demand"] == 6 * 2 * 1440 and st["incident_labels"] == 6

    again = _run(["demo", "--days", "2", "--workloads", "6"], tmp_path, **SMALL_TRAINING)
    assert again.returncode == 0, again.stderr[-4000:]
    # the same data, the same holdout: the new version ties with the champion and does not take its place
    assert "naive v2: not promoted" in again.stdout and "does not beat champion v1" in again.stdout
    # resumes: nothing stored twice; the glitched window is retried and caught again
    assert "0 stored now, 7 already stored, 1 with quarantined batches" in again.stdout
    table = _run(["status"], tmp_path, AIOPS_SIM__DAYS="2", AIOPS_SIM__WORKLOADS="6")
    assert "missing windows in 2026-" in table.stdout and ": 1 (re-run `aiops ingest` to fill them)" in table.stdout
    assert "quarantined batches: 2 (for 1 window(s); every rejected attempt is kept)" in table.stdout

    # `aiops ui prefect` serves the Prefect UI and API over this data directory's flow runs
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "PREFECT_"))}}
    ui = subprocess.Popen([AIOPS, "ui", "prefect", "--port", str(port)], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", ui, timeout=120)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/flows/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        flows = {f["name"] for f in json.load(urllib.request.urlopen(req, timeout=10))}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        states = [r["state_type"] for r in json.load(urllib.request.urlopen(req, timeout=10))]
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    assert {"pipeline", "ingest", "features", "train", "detect", "prescale", "tune", "cost"} <= flows
    assert states.count("COMPLETED") == 16  # two demo runs, each a pipeline with its seven subflows
