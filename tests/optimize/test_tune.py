"""HPA tuning end to end: stored simulated demand, the simulated cluster's API over HTTP, NSGA-II in the simulator,
the search in MLflow (Pareto plot and table), and the chosen settings applied through the actuator."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kubernetes import client, config

from aiops.actuator.automation import propose_all
from aiops.optimize.config import TuneSettings
from aiops.optimize.tune import fine_demand, hpa_change, proposals, tune_workloads
from aiops.optimize.tune_report import EXPERIMENT, front_plot, log_to_mlflow
from aiops.optimize.tuner import Candidate
from aiops.settings import load_settings
from aiops.sim.spec import HPASpec
from tests.support.simworld import sim_world

pytestmark = [pytest.mark.integration]
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS, SEED = 2, 4
CFG = TuneSettings(budget=16, population=8, workers=1, history_days=2, warmup_hours=2, max_workloads=2,
                   min_gain=0.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    w = sim_world(root, workloads=6, days=DAYS, seed=SEED, start=START,
                  metrics=["request_rate", "cpu_usage", "replicas_available", "latency_p99"])
    spec, server, kc = w.spec, w.server, w.kubeconfig
    api = config.new_client_from_config(config_file=str(kc))
    settings = load_settings(data_dir=w.data_dir, kubeconfig=kc, tune=CFG.model_dump(),
                             actuator={"role": "operator", "mode": "apply"})
    rows = tune_workloads(settings)
    yield spec, settings, rows, client.AutoscalingV2Api(api), root
    api.close()
    server.stop()


def test_the_busiest_hpas_are_tuned_from_their_current_settings(world):
    spec, settings, rows, _, _ = world
    with_hpa = {w.name: w for w in spec.workloads if w.hpa is not None}
    assert len(with_hpa) >= 3  # so max_workloads (2) leaves one out
    tuned = [r for r in rows if r.status == "tuned"]
    assert len(tuned) == 2 and {r.workload for r in rows} <= set(with_hpa)
    assert any("over tune.max_workloads" in r.reason for r in rows if r.status == "skipped")
    for r in tuned:
        hpa = with_hpa[r.workload].hpa
        # the baseline is the HPA as it runs, read from the cluster
        assert r.current["min_replicas"] == hpa.min_replicas and r.current["max_replicas"] == hpa.max_replicas
        assert r.current["target_cpu_utilization"] == pytest.approx(hpa.target_cpu_utilization, abs=1e-3)
        assert len(r.result.evaluated) == CFG.budget and r.result.default.candidate.hpa == hpa
        # the chosen point: no costlier than the current settings on the replayed demand, fewest violations
        assert r.after["replica_hours"] <= r.before["replica_hours"]
        assert r.after["violation_minutes"] <= r.before["violation_minutes"]
        assert r.days == pytest.approx(DAYS - CFG.warmup_hours / 24, abs=0.01)
        assert r.model.cpu_per_request == pytest.approx(with_hpa[r.workload].cpu_per_request, rel=0.02)
        # the service time is read off the quietest observed p99 latencies (M/M/1: p99 = service x ln 100)
        assert r.model.service_time_s == pytest.approx(with_hpa[r.workload].service_time_s, rel=0.25)
        # requests searched stay appliable: within one guarded step of today's and under the limit
        res = with_hpa[r.workload].resources
        top = min(2 * res.cpu_request, res.cpu_limit or 2 * res.cpu_request)
        assert res.cpu_request / 2 - 1e-9 <= r.chosen["cpu_request"] <= top + 1e-9
        assert r.reason.startswith("fewest SLO-violation minutes")


def test_the_search_is_in_mlflow_with_its_front_plot_and_table(world):
    _, settings, rows, _, _ = world
    from aiops.registry import client as mlflow_client

    ids = log_to_mlflow(settings, rows)
    assert len(ids) == 2
    c = mlflow_client(settings)
    run = c.get_run(ids[0])
    assert run.info.status == "FINISHED" and run.data.tags["workload"].count("/") == 1
    assert run.data.metrics["current_violation_minutes"] >= run.data.metrics["chosen_violation_minutes"]
    arts = {a.path for a in c.list_artifacts(ids[0], "plots")} | {a.path for a in c.list_artifacts(ids[0])}
    assert "plots/pareto.png" in arts and "pareto.json" in arts
    table = pd.read_json(Path(c.download_artifacts(ids[0], "pareto.json")), orient="split")
    assert len(table) == CFG.budget and table["chosen"].sum() == 1 and table["on_front"].any()
    assert c.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_chosen_settings_are_applied_through_the_actuator_and_read_back(world):
    _, settings, rows, hpa_api, _ = world
    r = next(x for x in rows if x.status == "tuned")
    r.propose = True  # whatever the gain: this test is about the write path
    props = [p for p in proposals(settings, [r], run_id="tune-test") if p.target.kind == "HorizontalPodAutoscaler"]
    assert len(props) == 1 and props[0].evidence.source == "tune"
    assert "SLO-violation minutes" in props[0].expected_effect
    out = propose_all(settings, props, act=True, dry_run=False)
    assert out[0]["outcome"] == "applied", out
    live = hpa_api.read_namespaced_horizontal_pod_autoscaler(r.hpa, r.namespace)
    c = r.result.chosen.candidate.hpa
    assert (live.spec.min_replicas, live.spec.max_replicas) == (c.min_replicas, c.max_replicas)
    assert live.spec.metrics[0].resource.target.average_utilization == round(c.target_cpu_utilization * 100)
    assert live.spec.behavior.scale_down.stabilization_window_seconds == c.scale_down.stabilization_window_s
    # the rate policies the search chose are the ones the cluster runs
    got = [(p.type, p.value, p.period_seconds) for p in live.spec.behavior.scale_up.policies]
    assert got == [(p.type, p.value, p.period_s) for p in c.scale_up.policies]
    got = [(p.type, p.value, p.period_seconds) for p in live.spec.behavior.scale_down.policies]
    assert got == [(p.type, p.value, p.period_s) for p in c.scale_down.policies]


def test_hpa_change_carries_every_setting_and_fine_demand_holds_each_step():
    c = Candidate(HPASpec(min_replicas=2, max_replicas=9, target_cpu_utilization=0.655), 0.3)
    ch = hpa_change(c)
    assert (ch.min_replicas, ch.max_replicas, ch.target_cpu_utilization) == (2, 9, 66)
    assert ch.scale_down_stabilization_s == 300 and ch.scale_up_stabilization_s == 0
    assert [str(p) for p in ch.scale_up_policies] == ["Percent 100%/15s", "Pods 4/15s"]
    assert ch.scale_up_select == "Max" and [str(p) for p in ch.scale_down_policies] == ["Percent 100%/15s"]
    ts = pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC")
    frame = pd.DataFrame({"ts": ts, "request_rate": [1.0, np.nan, 3.0, 4.0]})
    d = fine_demand(frame, 300)
    assert len(d) == 20 and d[:10].tolist() == [1.0] * 10 and d[10:15].tolist() == [3.0] * 5


def test_front_plot_draws_the_search(world):
    _, _, rows, _, _ = world
    fig = front_plot(rows[0].result if rows[0].result else next(r.result for r in rows if r.result))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "replica-hours" and len(ax.collections) >= 3
