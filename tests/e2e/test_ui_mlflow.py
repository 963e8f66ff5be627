"""`aiops ui mlflow` serves the MLflow UI and API over the embedded store of a data directory (real subprocess)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from aiops import registry
from aiops.plots import forecast_plot
from aiops.settings import load_settings
from models.catalog import create
from tests.support.mlflow import mlflow_server_env, stop
from tests.support.servers import free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AIOPS = str(Path(sys.executable).with_name("aiops"))


def _get(base: str, route: str, **query) -> dict:
    url = f"{base}{route}?{urllib.parse.urlencode(query)}" if query else f"{base}{route}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def test_ui_mlflow_shows_the_runs_and_registered_models_of_the_data_directory(tmp_path):
    rng = np.random.default_rng(3)
    ts = pd.date_range("2026-03-01", periods=300, freq="5min", tz="UTC")
    values = 3 + np.sin(np.arange(300) / 8) + rng.normal(0, 0.1, 300)
    history = pd.DataFrame({"series": "web", "ts": ts, "value": values})
    model = create("seasonal_naive", season_length=48).fit(history)
    settings = load_settings(data_dir=tmp_path / "data")  # the embedded default, as `aiops demo` leaves it
    fig = forecast_plot(history, None, model.predict(12))
    logged = registry.log_candidate(settings, model, experiment="train-forecast-cpu", registered_name="forecast-cpu",
                                    metrics={"mase": 0.7}, holdout={"id": "h1", "windows": [], "series": ["web"]},
                                    input_example=history.tail(48), plots={"forecast": fig})
    plt.close(fig)
    registry.promote(settings, "forecast-cpu", logged.version, metric="mase", challenger_score=0.7,
                     champion_score=None, holdout_id="h1")

    port = free_port()
    ui = subprocess.Popen([AIOPS, "ui", "mlflow", "--port", str(port)], cwd=tmp_path, env=mlflow_server_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", ui, timeout=180)
        rm = _get(base, "/api/2.0/mlflow/registered-models/get", name="forecast-cpu")["registered_model"]
        assert {a["alias"]: a["version"] for a in rm["aliases"]} == {"champion": "1", "challenger": "1"}
        run = _get(base, "/api/2.0/mlflow/runs/get", run_id=logged.run_id)["run"]
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert run["info"]["status"] == "FINISHED" and params["model"] == "seasonal_naive"
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"mase": 0.7}
        plots = _get(base, "/api/2.0/mlflow/artifacts/list", run_id=logged.run_id, path="plots")["files"]
        assert [f["path"] for f in plots] == ["plots/forecast.png"]
        # the UI reads the model's MLmodel (signature, input example) from the embedded artifact store
        model_id = logged.model_uri.removeprefix("models:/")
        with urllib.request.urlopen(f"{base}/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files?"
                                    "artifact_file_path=MLmodel", timeout=10) as r:
            mlmodel = r.read().decode()
        assert "signature:" in mlmodel and "horizon" in mlmodel
        exps = _get(base, "/api/2.0/mlflow/experiments/search", max_results=10)["experiments"]
        assert {"train-forecast-cpu", "promotions"} <= {e["name"] for e in exps}
        # stopping the command stops the server it started
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=30)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{base}/health", timeout=5)
    finally:
        stop(ui)
    assert not (tmp_path / "mlflow.db").exists()  # the store is the data directory's, not the working directory's
