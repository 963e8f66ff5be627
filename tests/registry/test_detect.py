"""aiops.detection.detect_task on the embedded store: a champion detector scores stored features, and a series
deployed after its training does not stop the scoring of the others."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from aiops import registry
from aiops.detection import ANOMALIES, SCORES, detect_task
from aiops.settings import load_settings
from aiops.store import Store
from aiops.tasks import load_panel, task_by_name
from models import catalog

pytestmark = [pytest.mark.integration]
STEP = pd.Timedelta(minutes=5)
START = pd.Timestamp("2026-11-01", tz="UTC")


def feature_rows(workload: str, start: pd.Timestamp, n: int, seed: int, spike_at: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=STEP)
    day = np.sin(2 * np.pi * np.asarray(ts.hour * 60 + ts.minute) / 1440)
    value = 0.2 + 0.05 * day + 0.01 * rng.standard_normal(n)
    if spike_at is not None:
        value[spike_at:spike_at + 3] += 2.0
    return pd.DataFrame({"cluster": "sim", "namespace": "shop", "workload": workload, "container": "app",
                         "metric": "latency_p99", "ts": ts, "value": value, "observed": True})


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("AIOPS_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    return load_settings(data_dir=tmp_path / "data")


def test_new_series_are_reported_and_the_known_ones_still_scored(settings):
    store = Store(settings.data_dir)
    task = task_by_name(settings, "detect-latency_p99")
    n_train = 3 * 288
    store.write_table("features/series", pd.concat([feature_rows("api", START, n_train, 0),
                                                    feature_rows("web", START, n_train, 1)]))
    panel = load_panel(store, task, settings)
    model = catalog.create("robust_mad").fit(panel)
    lm = registry.log_candidate(settings, model, experiment=task.experiment, registered_name=task.name,
                                metrics={"average_precision": 0.5}, holdout={"windows": [], "series": []},
                                input_example=panel.groupby("series").tail(24))
    registry.promote(settings, task.name, lm.version, metric="average_precision", challenger_score=0.5,
                     champion_score=None, holdout_id=lm.holdout_id)
    first = detect_task(settings, task, store=store)
    assert first.skipped is None and first.new_series == [] and first.points > 0

    # two hours later: both known workloads continue (one with a latency spike), a new one starts
    later = START + n_train * STEP
    store.write_table("features/series", pd.concat([
        feature_rows("api", later, 24, 2, spike_at=12), feature_rows("web", later, 24, 3),
        feature_rows("checkout", later - 12 * STEP, 36, 4)]))
    out = detect_task(settings, task, store=store)
    assert out.new_series == ["sim/shop/checkout/app"]
    assert out.skipped is None and out.points == 2 * 24
    scores = store.read_table(SCORES)
    fresh = scores[scores["ts"] >= later]
    assert set(fresh["series"]) == {"sim/shop/api/app", "sim/shop/web/app"}
    assert (fresh["version"] == lm.version).all()
    anomalies = store.read_table(ANOMALIES)
    assert "sim/shop/api/app" in set(anomalies["series"])  # the spike was still found
    assert "sim/shop/checkout/app" not in set(scores["series"])


def test_a_task_whose_series_are_all_new_is_skipped_with_the_reason(settings):
    store = Store(settings.data_dir)
    task = task_by_name(settings, "detect-latency_p99")
    store.write_table("features/series", feature_rows("api", START, 3 * 288, 0))
    panel = load_panel(store, task, settings)
    model = catalog.create("robust_mad").fit(panel)
    lm = registry.log_candidate(settings, model, experiment=task.experiment, registered_name=task.name,
                                metrics={"average_precision": 0.5}, holdout={"windows": [], "series": []},
                                input_example=panel.tail(24))
    registry.promote(settings, task.name, lm.version, metric="average_precision", challenger_score=0.5,
                     champion_score=None, holdout_id=lm.holdout_id)
    # ten days on, only a workload deployed since then reports (api's rows are older than any context)
    later = START + pd.Timedelta(days=13)
    store.write_table("features/series", feature_rows("cart", later, 48, 5))
    out = detect_task(settings, task, store=store, since=later.to_pydatetime())
    assert out.new_series == ["sim/shop/cart/app"] and out.points == 0
    assert out.skipped == (f"every series is new to the champion (robust_mad v{lm.version}); the next run of the "
                           "train flow fits them")
