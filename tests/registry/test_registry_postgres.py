"""The MLflow lifecycle against the production backend: an `mlflow server` on a real PostgreSQL (started here),
as `deployments/` describes. Logging, registration, promotion by alias and loading the champion back."""

from __future__ import annotations

import importlib
import os

import pandas as pd
import pytest

from aiops import registry
from aiops.settings import load_settings
from models import catalog
from tests.registry.test_registry import HOLDOUT, SEASON, make_panel
from tests.support.mlflow import mlflow_server
from tests.support.postgres import postgres_server

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-pg")
    with pytest.MonkeyPatch.context() as mp, postgres_server("mlflow") as pg:
        for key in [k for k in os.environ if k.startswith(("AIOPS_", "MLFLOW_"))]:
            mp.delenv(key)
        with mlflow_server(root / "server", warm_up=lambda: importlib.import_module("aiops.mlflow_model"),
                           backend_store_uri=f"{pg}/mlflow") as uri:
            yield load_settings(data_dir=root / "data", mlflow_tracking_uri=uri), pg


def test_lifecycle_on_postgres_promotes_the_better_keeps_the_champion_against_a_worse_and_loads_it(settings):
    s, pg = settings
    history = make_panel()
    example = history.groupby("series").tail(SEASON)
    good = catalog.create("seasonal_naive", season_length=SEASON).fit(history)
    worse = catalog.create("naive", max_horizon=24).fit(history)
    v1 = registry.log_candidate(s, good, experiment="train-forecast-cpu", registered_name="forecast-cpu",
                                metrics={"mase": 0.7}, holdout=HOLDOUT, input_example=example)
    first = registry.promote(s, "forecast-cpu", v1.version, metric="mase", challenger_score=0.7, champion_score=None,
                             holdout_id=v1.holdout_id)
    v2 = registry.log_candidate(s, worse, experiment="train-forecast-cpu", registered_name="forecast-cpu",
                                metrics={"mase": 0.9}, holdout=HOLDOUT, input_example=example)
    second = registry.promote(s, "forecast-cpu", v2.version, metric="mase", challenger_score=0.9,
                              champion_score=0.7, holdout_id=v2.holdout_id)
    assert first.promoted and not second.promoted and "does not beat" in second.reason
    champion, info = registry.load_model(s, "forecast-cpu")
    assert info.version == v1.version and info.aliases == ("champion",)
    pd.testing.assert_frame_equal(champion.predict(12), good.predict(12))

    # the registry really lives in PostgreSQL: its tables hold both versions and the champion alias
    import psycopg

    with psycopg.connect(f"{pg}/mlflow") as con:
        versions = con.execute("SELECT version FROM model_versions WHERE name = 'forecast-cpu' ORDER BY version"
                               ).fetchall()
        alias = con.execute("SELECT version FROM registered_model_aliases WHERE name = 'forecast-cpu' "
                            "AND alias = 'champion'").fetchone()
    assert [int(v) for (v,) in versions] == [1, 2] and int(alias[0]) == int(v1.version)
