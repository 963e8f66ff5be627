import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aiops.errors import SettingsError
from aiops.settings import load_settings

AIOPS = str(Path(sys.executable).with_name("aiops"))


def test_defaults_are_the_embedded_simulator():
    s = load_settings()
    assert s.source == "simulator"
    assert s.sim.workloads == 12 and s.sim.seed == 7
    assert s.resolved_mlflow_uri.startswith("sqlite:///") and s.resolved_mlflow_uri.endswith("data/mlflow.db")
    assert s.prefect_api_url is None


def test_environment_overrides_nested_fields(monkeypatch):
    monkeypatch.setenv("AIOPS_SIM__SEED", "42")
    monkeypatch.setenv("AIOPS_SOURCE", "prometheus")
    monkeypatch.setenv("AIOPS_PROMETHEUS_URL", "http://127.0.0.1:9999")
    s = load_settings()
    assert s.sim.seed == 42 and s.source == "prometheus"
    assert str(s.prometheus_url).startswith("http://127.0.0.1:9999")


@pytest.mark.parametrize("suffix,text", [
    (".toml", 'cluster_name = "prod-1"\n[sim]\nworkloads = 30\nstart = 2026-01-05T00:00:00Z\n'),
    (".yaml", "cluster_name: prod-1\nsim:\n  workloads: 30\n  start: 2026-01-05T00:00:00Z\n"),
])
def test_settings_file_and_env_precedence(tmp_path, monkeypatch, suffix, text):
    f = tmp_path / f"aiops{suffix}"
    f.write_text(text)
    s = load_settings(f)
    assert s.cluster_name == "prod-1" and s.sim.workloads == 30
    assert s.sim.resolved_start() == datetime(2026, 1, 5, tzinfo=timezone.utc)
    monkeypatch.setenv("AIOPS_CLUSTER_NAME", "from-env")
    assert load_settings(f).cluster_name == "from-env"  # the environment beats the file


@pytest.mark.parametrize("env,field,expected", [
    ({"AIOPS_SIM__SEED": "abc"}, "sim.seed (env AIOPS_SIM__SEED)", "valid integer"),
    ({"AIOPS_SOURCE": "influx"}, "source (env AIOPS_SOURCE)", "'simulator' or 'prometheus'"),
    ({"AIOPS_PROMETHEUS_URL": "not a url"}, "prometheus_url", "URL"),
    ({"AIOPS_SIM__WORKLOADS": "0"}, "sim.workloads", "greater than or equal to 1"),
    ({"AIOPS_INGEST__WINDOW_HOURS": "5"}, "ingest.window_hours", "divide 24 hours"),
    ({"AIOPS_CLUSTER_NAME": "Prod_1"}, "cluster_name", "pattern"),
    ({"AIOPS_KUBECONFIG": "/nonexistent/kubeconfig"}, "kubeconfig", "does not exist"),
    ({"AIOPS_SIM__COLOUR": "red"}, "sim.colour", "Extra inputs are not permitted"),
])
def test_bad_values_name_the_field_and_the_expectation(monkeypatch, env, field, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as err:
        load_settings()
    msg = str(err.value)
    assert field in msg and expected in msg, msg


def test_bad_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    f = tmp_path / "aiops.ini"
    f.write_text("x=1")
    with pytest.raises(SettingsError, match=r"expected a \.toml, \.yaml or \.yml file"):
        load_settings(f)
    g = tmp_path / "aiops.toml"
    g.write_text("[sim]\ndays = -3\n")
    with pytest.raises(SettingsError, match=r"(?s)sim\.days .*greater than 0.*settings file: .*aiops\.toml"):
        load_settings(g)


def test_cli_fails_at_start_up_with_exit_code_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIOPS_SIM__DAYS": "many"}
    proc = subprocess.run([AIOPS, "status"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "sim.days (env AIOPS_SIM__DAYS)" in proc.stderr and "'many'" in proc.stderr
    assert "Traceback" not in proc.stderr
