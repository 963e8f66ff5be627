"""aiops.registry against a real `mlflow server` (SQLite backend, started here): logging, registration, aliases,
promotion, loading by alias; and the embedded SQLite default without a server."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import Field

from aiops import registry
from aiops.plots import forecast_plot
from aiops.settings import load_settings
from models import catalog
from models.base import Detector, DetectorConfig
from models.panel import Panel
from tests.support.mlflow import mlflow_server

pytestmark = [pytest.mark.integration]
SEASON = 48


# --- a test-only detector, so these tests do not depend on the real detectors -------------------------------------
class ZScoreConfig(DetectorConfig):
    window: int = Field(24, ge=2, description="trailing points the mean and deviation are taken over")


class ZScore(Detector):
    """|x - trailing mean| / trailing sd, causal (the window ends one step before the point)."""

    name = "registry_test_zscore"
    config_class = ZScoreConfig

    @property
    def min_history(self) -> int:
        return self.config.window + 1

    def _fit(self, panel: Panel) -> None:
        self.scale_ = np.array([np.std(panel.univariate(i)) or 1.0 for i in range(len(panel))])

    def _raw_scores(self, panel: Panel) -> list[np.ndarray]:
        w, out = self.config.window, []
        for i in range(len(panel)):
            y = pd.Series(panel.univariate(i))
            mu, sd = y.rolling(w).mean().shift(1), y.rolling(w).std().shift(1)
            out.append(np.abs((y - mu) / sd.where(sd > 0, self.scale_.mean())).to_numpy())
        return out

    def _save_state(self, path: Path) -> None:
        np.savez(path / "zscore.npz", scale=self.scale_)

    def _load_state(self, path: Path) -> None:
        self.scale_ = np.load(path / "zscore.npz")["scale"]


def make_panel(n: int = 480, n_series: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-01", periods=n, freq="5min", tz="UTC")
    t = np.arange(n)
    return pd.concat([pd.DataFrame({"series": f"s{i}", "ts": ts,
                                    "value": 10 + i + 2 * np.sin(2 * np.pi * t / SEASON + i) + rng.normal(0, 0.2, n)})
                      for i in range(n_series)], ignore_index=True)


HOLDOUT = {"id": "holdout-2026-03-02", "windows": [["2026-03-02T16:00:00Z", "2026-03-02T20:00:00Z"]],
           "series": ["s0", "s1", "s2"], "horizon": 12}


# --- fixtures: one server for the module, a few logged versions shared by the tests ------------------------------
@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("AIOPS_", "MLFLOW_"))]:
            mp.delenv(key)
        # importing the pyfunc machinery (mlflow.pyfunc and friends) overlaps with the server's start
        with mlflow_server(root / "server", warm_up=lambda: importlib.import_module("aiops.mlflow_model")) as uri:
            yield load_settings(data_dir=root / "data", mlflow_tracking_uri=uri)


@pytest.fixture(scope="module")
def history():
    return make_panel()


@pytest.fixture(scope="module")
def logged(settings, history):
    """Two forecasters registered as versions 1 and 2 of `forecast-cpu`, and a detector of `anomaly-cpu`."""
    import matplotlib.pyplot as plt

    # at run time, not import time: collecting this module must not change what other modules' tests list
    catalog.register("registry_test_zscore", "tests.registry.test_registry:ZScore")

    example = history.groupby("series").tail(SEASON)
    sn = catalog.create("seasonal_naive", season_length=SEASON).fit(history)
    naive = catalog.create("naive", max_horizon=24).fit(history)
    actual = make_panel(n=492).groupby("series").tail(12)
    fig = forecast_plot(history, actual, sn.predict(12))
    v1 = registry.log_candidate(settings, sn, experiment="train-forecast-cpu", registered_name="forecast-cpu",
                                metrics={"mase": 0.9, "coverage_p90": 0.88}, holdout=HOLDOUT, input_example=example,
                                plots={"forecast": fig}, params={"task": "forecast-cpu"}, tags={"trigger": "test"},
                                run_name="seasonal_naive", predict_params={"horizon": 12})
    plt.close(fig)
    v2 = registry.log_candidate(settings, naive, experiment="train-forecast-cpu", registered_name="forecast-cpu",
                                metrics={"mase": 0.8}, holdout=HOLDOUT, input_example=example,
                                parent_run_id=v1.run_id)
    det = ZScore(window=12).fit(history)
    d1 = registry.log_candidate(settings, det, experiment="train-anomaly-cpu", registered_name="anomaly-cpu",
                                metrics={"f1": 0.5}, holdout=HOLDOUT, input_example=example)
    return {"sn": sn, "naive": naive, "det": det, "v1": v1, "v2": v2, "d1": d1, "example": example}


def copy_versions(settings, logged, dst: str, n: int = 2) -> list[str]:
    """Register the logged forecast-cpu versions 1..n again under `dst`: each promotion test gets its own model."""
    c = registry.client(settings)
    return [c.copy_model_version(f"models:/forecast-cpu/{v}", dst).version for v in range(1, n + 1)]


# --- logging and registration ------------------------------------------------------------------------------------
def test_a_candidate_run_holds_config_capabilities_metrics_holdout_plots_and_model(settings, logged):
    c = registry.client(settings)
    v1 = logged["v1"]
    assert (v1.registered_name, v1.version, v1.model_name) == ("forecast-cpu", "1", "seasonal_naive")
    run = c.get_run(v1.run_id)
    p = run.data.params
    assert p["model"] == "seasonal_naive" and p["kind"] == "forecaster" and p["config.season_length"] == str(SEASON)
    assert p["config.quantiles"] == "[0.5, 0.9, 0.99]" and p["global_model"] == "False" and p["n_series"] == "3"
    assert p["task"] == "forecast-cpu" and p["step"] == "0 days 00:05:00"
    assert run.data.metrics == {"mase": 0.9, "coverage_p90": 0.88}
    assert run.data.tags["holdout_id"] == HOLDOUT["id"] and run.data.tags["trigger"] == "test"
    assert run.info.status == "FINISHED"
    files = {f.path for f in c.list_artifacts(v1.run_id)} | {f.path for f in c.list_artifacts(v1.run_id, "plots")}
    assert {"holdout.json", "plots/forecast.png"} <= files
    holdout = json.loads(Path(c.download_artifacts(v1.run_id, "holdout.json")).read_text())
    assert holdout == HOLDOUT
    # the second candidate is nested under the first run (as a training flow nests candidates under its run)
    assert c.get_run(logged["v2"].run_id).data.tags["mlflow.parentRunId"] == v1.run_id


def test_the_logged_model_has_signature_with_horizon_param_input_example_and_pinned_requirements(
        settings, logged, monkeypatch, tmp_path):
    import mlflow

    mv = registry.client(settings).get_model_version("forecast-cpu", "1")
    assert mv.source == logged["v1"].model_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.resolved_mlflow_uri)  # models:/ URIs resolve through it
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp_path)))
    mlmodel = (local / "MLmodel").read_text()
    sig = mlflow.models.Model.load(str(local)).signature
    assert [c.name for c in sig.inputs.inputs] == ["series", "ts", "value"]
    assert [c.name for c in sig.outputs.inputs] == ["series", "ts", "h", "p50", "p90", "p99"]
    assert sig.params.to_dict() == [{"name": "horizon", "default": 12, "shape": None, "type": "long"}]
    reqs = (local / "requirements.txt").read_text().split()
    import numpy

    assert f"numpy=={numpy.__version__}" in reqs and any(r.startswith("scikit-learn==") for r in reqs)
    assert any(r.startswith("pyarrow==") for r in reqs) and any(r.startswith("pydantic==") for r in reqs)
    assert (local / "input_example.json").exists() and "model_code_path" in mlmodel  # models-from-code, no pickle
    assert not list(local.rglob("*.pkl"))
    saved = json.loads((local / "artifacts" / "model" / "model.json").read_text())
    assert saved["name"] == "seasonal_naive" and saved["config"]["season_length"] == SEASON


def test_versions_are_tagged_with_model_holdout_and_metrics(settings, logged):
    c = registry.client(settings)
    rm = c.get_registered_model("forecast-cpu")
    assert "champion" in rm.description and rm.tags["kind"] == "forecaster"
    mv2 = c.get_model_version("forecast-cpu", "2")
    assert mv2.tags["model"] == "naive" and mv2.tags["holdout_id"] == HOLDOUT["id"] and mv2.tags["metric.mase"] == "0.8"
    assert mv2.run_id == logged["v2"].run_id
    assert registry.get_alias(settings, "forecast-cpu", "champion") is None  # nothing promoted yet here


# --- promotion -----------------------------------------------------------------------------------------------------
def test_first_candidate_becomes_champion_and_a_better_challenger_takes_it(settings, logged):
    v1, v2 = copy_versions(settings, logged, "promo-better")
    first = registry.promote(settings, "promo-better", v1, metric="mase", challenger_score=0.9, champion_score=None,
                             holdout_id=HOLDOUT["id"])
    assert first.promoted and first.champion_version is None and "no champion yet" in first.reason
    second = registry.promote(settings, "promo-better", v2, metric="mase", challenger_score=0.8, champion_score=0.9,
                              holdout_id=HOLDOUT["id"])
    assert second.promoted and second.champion_version == v1 and second.challenger_version == v2
    champ = registry.get_alias(settings, "promo-better", "champion")
    assert champ.version == v2 and champ.model_name == "naive" and champ.aliases == ("challenger", "champion")
    assert champ.metrics == {"mase": 0.8} and champ.holdout_id == HOLDOUT["id"]
    c = registry.client(settings)
    assert c.get_model_version("promo-better", v1).tags["promotion.challenge_decision"] == "promoted"
    assert c.get_model_version("promo-better", v2).tags["promotion.decision"] == "promoted"


def test_a_worse_challenger_is_not_promoted_and_the_decision_run_records_both_scores(settings, logged):
    v1, v2 = copy_versions(settings, logged, "promo-worse")
    registry.promote(settings, "promo-worse", v1, metric="mase", challenger_score=0.7, champion_score=None,
                     holdout_id=HOLDOUT["id"])
    d = registry.promote(settings, "promo-worse", v2, metric="mase", challenger_score=0.8, champion_score=0.7,
                         holdout_id=HOLDOUT["id"])
    assert not d.promoted and "does not beat" in d.reason
    assert registry.get_alias(settings, "promo-worse", "champion").version == v1
    assert registry.get_alias(settings, "promo-worse", "challenger").version == v2
    c = registry.client(settings)
    run = c.get_run(d.run_id)
    assert c.get_experiment(run.info.experiment_id).name == "promotions"
    assert run.data.metrics == {"challenger_score": 0.8, "champion_score": 0.7}
    assert run.data.tags["decision"] == "kept" and run.data.tags["reason"] == d.reason
    assert run.data.params["champion_version"] == v1 and run.data.params["challenger_version"] == v2
    assert run.data.params["holdout_id"] == HOLDOUT["id"] and run.data.params["metric"] == "mase"
    assert c.get_model_version("promo-worse", v2).tags["promotion.decision"] == "kept"
    # higher-is-better metrics flip the comparison
    d2 = registry.promote(settings, "promo-worse", v2, metric="f1", challenger_score=0.8, champion_score=0.7,
                          holdout_id=HOLDOUT["id"], lower_is_better=False)
    assert d2.promoted and registry.get_alias(settings, "promo-worse", "champion").version == v2


def test_equal_scores_and_gains_below_min_improvement_keep_the_champion(settings, logged):
    v1, v2 = copy_versions(settings, logged, "promo-equal")
    registry.promote(settings, "promo-equal", v1, metric="mase", challenger_score=0.8, champion_score=None,
                     holdout_id=HOLDOUT["id"])
    equal = registry.promote(settings, "promo-equal", v2, metric="mase", challenger_score=0.8, champion_score=0.8,
                             holdout_id=HOLDOUT["id"])
    assert not equal.promoted and registry.get_alias(settings, "promo-equal", "champion").version == v1
    small = registry.promote(settings, "promo-equal", v2, metric="mase", challenger_score=0.78, champion_score=0.8,
                             holdout_id=HOLDOUT["id"], min_improvement=0.05)  # 2.5 % better, 5 % needed
    assert not small.promoted and "+2.50%" in small.reason
    enough = registry.promote(settings, "promo-equal", v2, metric="mase", challenger_score=0.75, champion_score=0.8,
                              holdout_id=HOLDOUT["id"], min_improvement=0.05)
    assert enough.promoted and registry.get_alias(settings, "promo-equal", "champion").version == v2


def test_promote_refuses_scores_that_cannot_be_compared(settings, logged):
    v1, v2 = copy_versions(settings, logged, "promo-bad")
    with pytest.raises(ValueError, match="holdout_id: version 1 of 'promo-bad' was evaluated on holdout"):
        registry.promote(settings, "promo-bad", v1, metric="mase", challenger_score=0.8, champion_score=None,
                         holdout_id="another-holdout")
    registry.promote(settings, "promo-bad", v1, metric="mase", challenger_score=0.8, champion_score=None,
                     holdout_id=HOLDOUT["id"])
    with pytest.raises(ValueError, match="champion_score: 'promo-bad' has champion v1; evaluate it on holdout"):
        registry.promote(settings, "promo-bad", v2, metric="mase", challenger_score=0.7, champion_score=None,
                         holdout_id=HOLDOUT["id"])
    with pytest.raises(ValueError, match="challenger_score: is NaN"):
        registry.promote(settings, "promo-bad", v2, metric="mase", challenger_score=float("nan"),
                         champion_score=0.8, holdout_id=HOLDOUT["id"])
    with pytest.raises(registry.RegistryError, match="has no version '9'; versions: 1, 2"):
        registry.promote(settings, "promo-bad", "9", metric="mase", challenger_score=0.7, champion_score=0.8,
                         holdout_id=HOLDOUT["id"])
    assert registry.get_alias(settings, "promo-bad", "champion").version == v1  # nothing moved


# --- loading -------------------------------------------------------------------------------------------------------
def test_load_model_by_alias_returns_a_model_that_predicts_like_the_original(settings, logged, history):
    registry.promote(settings, "forecast-cpu", "2", metric="mase", challenger_score=0.8, champion_score=None,
                     holdout_id=HOLDOUT["id"])
    model, info = registry.load_model(settings, "forecast-cpu", "champion")
    assert type(model).__name__ == "Naive" and info.version == "2" and info.run_id == logged["v2"].run_id
    pd.testing.assert_frame_equal(model.predict(24), logged["naive"].predict(24))
    window = make_panel(n=520).groupby("series").tail(40)
    pd.testing.assert_frame_equal(model.predict(6, history=window), logged["naive"].predict(6, history=window))

    registry.promote(settings, "anomaly-cpu", "1", metric="f1", challenger_score=0.5, champion_score=None,
                     holdout_id=HOLDOUT["id"], lower_is_better=False)
    det, dinfo = registry.load_model(settings, "anomaly-cpu")
    assert isinstance(det, ZScore) and dinfo.model_name == "registry_test_zscore" and det.config.window == 12
    want = logged["det"].score(window)
    pd.testing.assert_frame_equal(det.score(window), want)
    # the same detector through the plain pyfunc interface: scores per row, timestamps as naive UTC
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", settings.resolved_mlflow_uri)
        pyfunc = mlflow.pyfunc.load_model("models:/anomaly-cpu@champion")
    got = pyfunc.predict(window.assign(ts=window["ts"].dt.tz_localize(None)))
    assert list(got.columns) == ["series", "ts", "score"] and got["ts"].dt.tz is None
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())


def test_load_model_without_that_alias_or_model_says_what_exists(settings, logged):
    with pytest.raises(registry.RegistryError) as err:
        registry.load_model(settings, "forecast-cpu", "staging")
    msg = str(err.value)
    assert "registered model 'forecast-cpu' has no alias 'staging'" in msg and "versions: 1, 2" in msg
    with pytest.raises(registry.RegistryError, match=r"no registered model 'forecast-gpu' in http://127\.0\.0\.1:\d+; "
                                                      r"registered models: .*forecast-cpu"):
        registry.load_model(settings, "forecast-gpu")


def test_champions_lists_every_registered_models_champion(settings, logged):
    registry.promote(settings, "anomaly-cpu", "1", metric="f1", challenger_score=0.5,
                     champion_score=0.5 if registry.get_alias(settings, "anomaly-cpu", "champion") else None,
                     holdout_id=HOLDOUT["id"], lower_is_better=False)
    champs = {v.registered_name: v for v in registry.champions(settings)}
    assert champs["anomaly-cpu"].model_name == "registry_test_zscore"
    assert champs["anomaly-cpu"].metrics == {"f1": 0.5}
    assert "champion" in champs["anomaly-cpu"].aliases
    names = [v.registered_name for v in registry.champions(settings)]
    assert names == sorted(names) and "promo-better" in names


def test_a_logged_model_loads_in_a_fresh_process_with_plain_mlflow(settings, logged):
    code = (
        "import json, sys, mlflow, pandas as pd\n"
        "df = pd.read_json(sys.stdin, orient='split')\n"
        "df['ts'] = pd.to_datetime(df['ts'], unit='ms')\n"
        "out = mlflow.pyfunc.load_model(sys.argv[1]).predict(df, params={'horizon': 12})\n"
        "print(json.dumps({'n': len(out), 'cols': list(out.columns), 'p50': out['p50'].round(9).tolist()}))\n"
    )
    example = logged["example"].assign(ts=lambda d: d["ts"].dt.tz_localize(None))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = settings.resolved_mlflow_uri
    proc = subprocess.run([sys.executable, "-c", code, logged["v1"].model_uri], input=example.to_json(orient="split"),
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    want = logged["sn"].predict(12, history=logged["example"])
    assert got["n"] == 36 and got["cols"] == ["series", "ts", "h", "p50", "p90", "p99"]
    assert np.allclose(got["p50"], want["p50"].to_numpy(), atol=1e-8)


# --- the embedded default: SQLite under data_dir, no server ---------------------------------------------------------
def test_embedded_sqlite_store_logs_registers_and_loads(tmp_path, history, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    s = load_settings(data_dir=tmp_path / "data")
    assert s.resolved_mlflow_uri.startswith("sqlite:///")
    model = catalog.create("seasonal_naive", season_length=SEASON).fit(history)
    lm = registry.log_candidate(s, model, experiment="train", registered_name="forecast-mem", metrics={"mase": 1.0},
                                holdout={"windows": [], "series": ["s0", "s1", "s2"]},
                                input_example=history.groupby("series").tail(SEASON))
    assert lm.holdout_id.startswith("h-")  # no id given: a content hash
    registry.promote(s, "forecast-mem", lm.version, metric="mase", challenger_score=1.0, champion_score=None,
                     holdout_id=lm.holdout_id)
    loaded, info = registry.load_model(s, "forecast-mem")
    assert info.version == lm.version == "1" and info.aliases == ("challenger", "champion")
    pd.testing.assert_frame_equal(loaded.predict(12), model.predict(12))
    assert [v.registered_name for v in registry.champions(s)] == ["forecast-mem"]
    assert (tmp_path / "data" / "mlflow.db").exists()
    # artifacts land beside data_dir, one folder per experiment; nothing in the working directory
    assert any((tmp_path / "mlruns" / "train").rglob("holdout.json"))
    assert any((tmp_path / "mlruns" / "train").rglob("MLmodel"))
    assert not any((tmp_path / "cwd").iterdir())
    import mlflow

    assert os.environ.get("MLFLOW_TRACKING_URI") is None and mlflow.get_tracking_uri() != s.resolved_mlflow_uri


def test_log_candidate_refuses_bad_arguments_before_touching_the_store(tmp_path, history):
    s = load_settings(data_dir=tmp_path / "data")
    fitted = catalog.create("naive").fit(history)
    example = history.groupby("series").tail(10)
    args = dict(experiment="e", registered_name="r", holdout=HOLDOUT, input_example=example)
    with pytest.raises(ValueError, match="model: naive is not fitted; call fit"):
        registry.log_candidate(s, catalog.create("naive"), metrics={"mase": 1.0}, **args)
    with pytest.raises(ValueError, match="metrics: 'mase' must be a number, received 'low'"):
        registry.log_candidate(s, fitted, metrics={"mase": "low"}, **args)
    with pytest.raises(ValueError, match="metrics: expected a non-empty dict"):
        registry.log_candidate(s, fitted, metrics={}, **args)
    with pytest.raises(ValueError, match="input_example: expected a non-empty panel frame"):
        registry.log_candidate(s, fitted, metrics={"mase": 1.0}, **{**args, "input_example": example.iloc[:0]})
    assert not (tmp_path / "data").exists()  # nothing was created
