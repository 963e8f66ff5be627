"""Predictive pre-scaling end to end: stored simulated history, a real champion in MLflow, the simulated cluster's
API over HTTP, the actuator, the `aiops` CLI and kubectl.

One module-wide world: two days of a small simulated cluster stored as features, a seasonal-naive champion
trained on all but the last 3 hours (so the champion is 3 hours old and its recent error is measured out of
sample), and the same cluster served from the end of those two days with its clock frozen. Tests that write take
their own workloads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import urllib3
from kubernetes import client, config
from pydantic import ValidationError

from aiops.actuator.policy import Guardrails
from aiops.errors import SchemaError
from aiops.optimize import prescale as ps
from aiops.optimize.planner import PlannerConfig
from aiops.settings import SimSettings, load_settings
from aiops.sim.apiserver import ApiServer
from aiops.sim.engine import Engine
from aiops.sim.frames import result_to_frame
from aiops.sim.generate import build_cluster
from aiops.sim.kubeconfig import write_kubeconfig
from aiops.sim.live import LiveCluster
from aiops.sim.serve_local import local_api
from aiops.store import Store

pytestmark = [pytest.mark.integration]
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS, SEED = 2, 5
AIOPS = str(Path(sys.executable).with_name("aiops"))
KUBECTL = "/usr/bin/kubectl"
TRAIN = {"forecasters": ["naive"], "forecast_metrics": ["request_rate"], "holdout_hours": 6}


@dataclass
class World:
    data: Path
    kubeconfig: Path
    spec: object
    server: ApiServer
    apps: client.AppsV1Api
    hpa: client.AutoscalingV2Api

    def settings(self, data_dir: Path | None = None, **over):
        return load_settings(data_dir=data_dir or self.data, kubeconfig=self.kubeconfig, train=TRAIN,
                             **{"actuator": {"role": "operator", "mode": "apply"}, **over})

    def workload(self, name: str):
        return next(w for w in self.spec.workloads if w.name == name)

    def true_capacity(self, name: str) -> float:
        w = self.workload(name)
        u = w.hpa.target_cpu_utilization if w.hpa else 0.7
        return (u * w.resources.cpu_request - w.cpu_idle) / w.cpu_per_request


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from aiops.lifecycle import log_and_promote
    from aiops.tasks import load_panel, task_by_name
    from aiops.training import plan_holdout, train_candidate

    root = tmp_path_factory.mktemp("prescale")
    spec = build_cluster(SimSettings(workloads=8, namespaces=2, seed=SEED, incidents=False), cluster_name="sim")
    result = Engine(spec, start=START, step_s=60, seed=SEED).run(DAYS * 1440)
    frame = result_to_frame(result, ["request_rate", "cpu_usage", "replicas_available"], categorical=False)
    store = Store(root / "data")
    store.write_table("features/series", frame.drop(columns="unit").assign(observed=True))
    live = LiveCluster(spec, start=START, step_s=60, seed=SEED, speed=0, history=timedelta(days=DAYS))
    server = ApiServer(live).start()
    kc = write_kubeconfig(root / "kubeconfig", server.url, cluster="sim")
    api = config.new_client_from_config(config_file=str(kc))
    w = World(root / "data", kc, spec, server, client.AppsV1Api(api), client.AutoscalingV2Api(api))
    settings = w.settings()
    task = task_by_name(settings, "forecast-request_rate")
    panel = load_panel(store, task, settings)
    panel = panel.loc[pd.to_datetime(panel["ts"], utc=True) < START + timedelta(days=DAYS, hours=-3)]
    holdout = plan_holdout(task, panel, settings)
    results = [train_candidate(task, n, panel, holdout, settings) for n in task.candidates]
    assert log_and_promote(settings, task, panel, holdout, results).champion is not None
    yield w
    api.close()
    server.stop()


def only(*names: str, **planner) -> ps.PrescaleSettings:
    return ps.PrescaleSettings(workloads=names, planner=PlannerConfig(**planner))


def test_plans_are_predictive_with_the_fitted_capacity_and_say_why(world):
    plans = {p.workload: p for p in ps.plan_workloads(world.settings())}
    assert set(plans) == {w.name for w in world.spec.workloads}
    for name, p in plans.items():
        w = world.workload(name)
        assert p.mode == "predictive", p.reason
        assert p.kind == ("HorizontalPodAutoscaler" if w.hpa else "Deployment") and p.object == name
        assert p.capacity_rps == pytest.approx(world.true_capacity(name), rel=0.02)
        assert p.model == "forecast-request_rate" and p.version == "1"
        assert 0 <= p.recent_error < 0.2 and p.error_source.startswith("backtest")
        # the default planner: the median, square-root staffing, the observed level held half an hour
        assert p.reason.startswith("predictive: forecast-request_rate[seasonal_naive] v1 p50 forecast peaks at")
        assert "1.7 x sqrt(R) replicas for bursts" in p.reason and "mean over the last 0:30:00" in p.reason
        assert p.schedule and p.peak == max(n for _, n in p.schedule) and p.target >= 1
    rows = ps.plan_rows(list(plans.values()))
    assert list(rows["workload"]) == list(plans) and rows["reason"].str.len().min() > 50


def test_proposals_go_through_the_actuator_stepped_and_show_in_suggestions(world, tmp_path):
    # as a person would: shrink a plain deployment and an HPA's floor below what the forecast needs
    world.apps.patch_namespaced_deployment("checkout", "shop", {"spec": {"replicas": 1}})
    world.hpa.patch_namespaced_horizontal_pod_autoscaler("frontend", "shop", {"spec": {"minReplicas": 1}})
    plans, results = ps.propose(world.settings(), only("checkout", "frontend", "catalog"), act=True)
    by = {p.workload: p for p in plans}
    assert by["checkout"].target == 4 and by["checkout"].proposed == 2
    assert "stepping 1 -> 2 toward 4: the actuator allows at most +100% per change" in by["checkout"].note
    assert by["frontend"].kind == "HorizontalPodAutoscaler" and by["frontend"].target == 3
    assert by["frontend"].proposed == 2 and by["catalog"].proposed == 4
    out = {r["target"].split()[0]: r for r in results}
    assert out["deployment/checkout"]["outcome"] == "applied"
    assert out["horizontalpodautoscaler/frontend"]["outcome"] == "applied"
    assert out["deployment/catalog"]["state"] == "pending" and "opted in" in out["deployment/catalog"]["reason"]

    # read back through the official client and kubectl
    assert world.apps.read_namespaced_deployment("checkout", "shop").spec.replicas == 2
    assert world.hpa.read_namespaced_horizontal_pod_autoscaler("frontend", "shop").spec.min_replicas == 2
    assert world.apps.read_namespaced_deployment("catalog", "shop").spec.replicas == 5
    env = {**os.environ, "KUBECONFIG": str(world.kubeconfig), "HOME": str(tmp_path)}
    got = subprocess.run([KUBECTL, "get", "hpa", "frontend", "-n", "shop", "-o", "jsonpath={.spec.minReplicas}"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and got.stdout == "2", got.stderr

    # visible to people: `aiops suggestions`, with the reason and the model behind it
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(AIOPS_DATA_DIR=str(world.data), AIOPS_KUBECONFIG=str(world.kubeconfig), AIOPS_ACTUATOR__ROLE="viewer")
    cli = subprocess.run([AIOPS, "suggestions", "--all", "-o", "json"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    recs = {r["target"]["name"]: r for r in json.loads(cli.stdout) if r["evidence"]["source"] == "prescale"}
    assert recs["checkout"]["change"] == {"type": "replicas", "replicas": 2}
    assert recs["frontend"]["change"]["type"] == "hpa" and recs["frontend"]["change"]["min_replicas"] == 2
    assert recs["frontend"]["target"]["kind"] == "HorizontalPodAutoscaler"
    assert recs["checkout"]["state"] == "applied" and recs["catalog"]["state"] == "pending"
    ev = recs["checkout"]["evidence"]
    assert ev["model"] == "forecast-request_rate" and ev["model_version"] == "1"
    assert ev["details"]["peak"] >= 4 and ev["details"]["schedule"] and ev["details"]["mode"] == "predictive"
    assert recs["checkout"]["reason"].startswith("predictive: ") and "replicas 1 -> 2 (stepping" in \
        recs["checkout"]["reason"]


def test_a_second_run_on_the_same_data_proposes_nothing_already_open(world):
    settings = world.settings(actuator={"role": "operator", "mode": "dry-run"})
    cfg = only("ledger", "fraud-check")
    plans, first = ps.propose(settings, cfg, act=True)
    assert {r["outcome"] for r in first} == {"dry-run-ok"} and first  # fraud-check 5 -> 3 at least
    plans2, second = ps.propose(settings, cfg, act=True)
    assert second == []
    fc = next(p for p in plans2 if p.workload == "fraud-check")
    assert f"already open as recommendation {first[0]['id']}" in fc.note
    assert world.apps.read_namespaced_deployment("fraud-check", "payments").spec.replicas == 5  # dry-run only


def test_without_a_champion_plain_workloads_scale_reactively_and_hpas_are_left_alone(world, tmp_path):
    settings = world.settings(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    plans = ps.decide(ps.plan_workloads(settings, only("ledger", "gateway")), settings.actuator.guardrails)
    by = {p.workload: p for p in plans}
    for p in plans:
        assert p.mode == "reactive" and p.reason.startswith("reactive: no champion forecaster; provisioning for")
        assert p.model is None and p.schedule == []
    assert by["gateway"].proposed is None and "the HPA scales it reactively" in by["gateway"].note
    props = ps.make_proposals(settings, plans, run_id="r1")
    assert all(pr.change.type == "replicas" and pr.evidence.model is None for pr in props)


def test_a_stale_or_recently_wrong_champion_falls_back_to_reactive_with_its_reason(world):
    settings = world.settings()
    stale = ps.plan_workloads(settings, only("ledger", max_model_age=timedelta(hours=1)))[0]
    assert stale.mode == "reactive"
    assert re.search(r"reactive: the champion forecast-request_rate\[seasonal_naive\] v1 was trained 3:\d\d:00 "
                     r"ago \(limit 1:00:00\); provisioning for the observed demand", stale.reason), stale.reason
    wrong = ps.plan_workloads(settings, only("ledger", max_recent_error=0.001))[0]
    assert wrong.mode == "reactive" and f"was recently off by {wrong.recent_error:.0%} (limit 0%)" in wrong.reason


def test_step_toward_stays_within_the_guardrails():
    g = Guardrails()
    assert ps.step_toward(1, 4, g) == (2, "stepping 1 -> 2 toward 4: the actuator allows at most +100% per "
                                          "change; the next run continues")
    assert ps.step_toward(0, 3, g)[0] == 1  # from zero, one step means one
    assert ps.step_toward(10, 2, g)[0] == 5 and "-50%" in ps.step_toward(10, 2, g)[1]
    assert ps.step_toward(3, 3, g) == (3, "")
    v, note = ps.step_toward(4, 12, g, ceiling=6)
    assert v == 6 and "outside [1, 6]" in note
    assert ps.step_toward(2, 3, Guardrails(max_step_up=0.2))[0] == 2  # floor(2 * 1.2): no whole step allowed
    plan = ps.WorkloadPlan("ns", "w", "app", kind="Deployment", object="w", mode="predictive", current=40, target=41)
    ps.decide([plan], g)
    assert plan.proposed is None and "below the actuator's min_relative_change 5%" in plan.note


def test_bad_input_is_refused_with_what_was_expected(world, tmp_path):
    rows = pd.DataFrame({"request_rate": [1.0] * 20, "cpu_usage": [0.5] * 20, "replicas_available": [2.0] * 20})
    with pytest.raises(ps.CapacityError, match=r"need 12 that vary in demand"):
        ps.estimate_capacity(rows, cpu_request_per_pod=0.5, target_utilization=0.7)
    with pytest.raises(ps.CapacityError, match=r"missing column\(s\) \['cpu_usage'\]"):
        ps.estimate_capacity(rows.drop(columns="cpu_usage"), cpu_request_per_pod=0.5, target_utilization=0.7)
    falling = rows.assign(request_rate=range(20), cpu_usage=[1.0 - 0.01 * i for i in range(20)])
    with pytest.raises(ps.CapacityError, match="CPU does not grow with requests"):
        ps.estimate_capacity(falling, cpu_request_per_pod=0.5, target_utilization=0.7)
    busy = rows.assign(request_rate=range(20), cpu_usage=[0.8 + 0.001 * i for i in range(20)])
    with pytest.raises(ps.CapacityError, match="an idle pod already uses"):
        ps.estimate_capacity(busy, cpu_request_per_pod=0.5, target_utilization=0.7)
    with pytest.raises(ValidationError, match="horizon_steps"):
        ps.PrescaleSettings(horizon_steps=0)
    with pytest.raises(SchemaError, match=r"no stored features in .*run `aiops ingest` and `aiops features`"):
        ps.plan_workloads(world.settings(data_dir=tmp_path / "empty"))
    with pytest.raises(SchemaError, match="no stored series of metric 'latency_p99'"):
        ps.plan_workloads(world.settings(), ps.PrescaleSettings(metric="latency_p99"))


def test_local_api_serves_the_simulated_cluster_only_while_needed(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", sim={"workloads": 4, "namespaces": 2, "days": 0.25,
                                                              "start": "2026-03-02T00:00:00Z"})
    with local_api(settings) as served:
        kc = served.kubeconfig
        assert kc is not None and kc.is_file() and kc.parent == settings.state_dir
        api = config.new_client_from_config(config_file=str(kc))
        names = {d.metadata.name for d in client.AppsV1Api(api).list_deployment_for_all_namespaces().items}
        url = api.configuration.host
        api.close()
        assert names == {w.name for w in build_cluster(settings.sim).workloads}
        assert settings.kubeconfig is None  # the caller's settings are unchanged
    assert not kc.exists()
    api = config.new_client_from_config(config_file=str(write_kubeconfig(tmp_path / "kc", url)))
    with pytest.raises(urllib3.exceptions.HTTPError):  # the server is gone
        client.AppsV1Api(api).list_deployment_for_all_namespaces(_request_timeout=2)
    api.close()
    real = load_settings(data_dir=tmp_path / "data", kubeconfig=write_kubeconfig(tmp_path / "real", "http://x:1"))
    with local_api(real) as same:
        assert same is real
