"""The /metrics exposition parses as Prometheus text, carries real exporters' names/labels, equals the snapshot."""

from __future__ import annotations

import dataclasses
import math
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops.sim.exposition import ISTIO_LE_MS, render_metrics, render_openmetrics_history
from aiops.sim.state import LATENCY_BUCKETS_S
from tests.sources.handmade import snapshot
from tests.support.prometheus import PROMTOOL, backfill


def samples(text: str) -> dict[str, list[tuple[dict, float]]]:
    out: dict[str, list[tuple[dict, float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def one(found: dict, name: str, **labels) -> float:
    hits = [v for lab, v in found[name] if all(lab.get(k) == val for k, val in labels.items())]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0]


def test_parses_and_values_equal_the_snapshot():
    snap = snapshot(3)
    found = samples(render_metrics(snap, "sim"))
    web, etl = snap.workloads
    running = [p for p in snap.pods if p.node is not None]
    # cAdvisor: one series per scheduled pod, with its labels and cumulative counters
    cpu = found["container_cpu_usage_seconds_total"]
    assert {lab["pod"] for lab, _ in cpu} == {p.name for p in running}
    for p in running:
        lab = next(lab for lab, _ in cpu if lab["pod"] == p.name)
        assert lab["namespace"] == p.namespace and lab["container"] == p.container and lab["node"] == p.node
        assert lab["image"] == web.image  # quotes, backslash and newline survive escaping
        assert lab["id"].startswith("/kubepods") and lab["name"]
        assert one(found, "container_cpu_usage_seconds_total", pod=p.name) == p.cpu_usage_seconds_total
        assert one(found, "container_memory_working_set_bytes", pod=p.name) == p.memory_working_set_bytes
        assert one(found, "container_cpu_cfs_periods_total", pod=p.name) == p.cfs_periods_total
        assert one(found, "container_cpu_cfs_throttled_periods_total", pod=p.name) == p.cfs_throttled_periods_total
    # kube-state-metrics
    for p in snap.pods:
        assert one(found, "kube_pod_owner", pod=p.name, owner_kind="ReplicaSet") == 1
        assert one(found, "kube_pod_owner", pod=p.name)  # exactly one owner
        assert [lab["owner_name"] for lab, _ in found["kube_pod_owner"] if lab["pod"] == p.name] == [p.replicaset]
        assert one(found, "kube_pod_container_status_restarts_total", pod=p.name) == p.restarts
        assert one(found, "kube_pod_status_phase", pod=p.name, phase=p.phase) == 1
        assert one(found, "kube_pod_container_resource_requests", pod=p.name, resource="cpu", unit="core") == \
            p.resources.cpu_request
        assert one(found, "kube_pod_container_resource_requests", pod=p.name, resource="memory", unit="byte") == \
            p.resources.memory_request
    assert one(found, "kube_pod_container_resource_limits", pod=running[0].name, resource="cpu") == 1.0
    assert not [lab for lab, _ in found["kube_pod_container_resource_limits"] if lab["namespace"] == "batch"]
    assert not [lab for lab, _ in found["container_cpu_cfs_periods_total"] if lab["namespace"] == "batch"]
    assert one(found, "kube_pod_container_status_last_terminated_reason", pod=running[0].name,
               reason="OOMKilled") == 1
    assert one(found, "kube_pod_container_status_waiting_reason", pod="etl-7f8b-qqqqq",
               reason="ContainerCreating") == 1
    rs = {(lab["replicaset"], lab["owner_name"]) for lab, _ in found["kube_replicaset_owner"]}
    assert rs == {("web-5d9c7", "web"), ("web-4c1aa", "web"), ("etl-7f8b", "etl")}
    assert one(found, "kube_deployment_spec_replicas", namespace="shop", deployment="web") == web.spec_replicas
    assert one(found, "kube_deployment_status_replicas_available", deployment="etl") == etl.ready_replicas
    assert one(found, "kube_horizontalpodautoscaler_spec_max_replicas", horizontalpodautoscaler="web") == 6
    assert "etl" not in {lab["horizontalpodautoscaler"] for lab, _ in
                         found["kube_horizontalpodautoscaler_spec_min_replicas"]}
    assert one(found, "kube_node_status_condition", node="node-a-1", condition="DiskPressure", status="true") == 1
    assert one(found, "kube_node_status_condition", node="node-a-0", condition="DiskPressure", status="true") == 0
    assert one(found, "kube_node_status_capacity", node="node-a-0", resource="cpu", unit="core") == 4
    (node_labels,) = [lab for lab, _ in found["kube_node_labels"] if lab["node"] == "node-a-0"]
    assert node_labels["label_node_kubernetes_io_instance_type"] == "m5.xlarge"
    assert node_labels["label_eks_amazonaws_com_nodegroup"] == "pool-a"
    # Istio, per workload
    assert one(found, "istio_requests_total", destination_workload="web", reporter="destination",
               destination_workload_namespace="shop", response_code="200") == web.requests_total
    assert one(found, "istio_requests_total", destination_workload="web", response_code="504") == 0
    buckets = [(lab["le"], v) for lab, v in found["istio_request_duration_milliseconds_bucket"]
               if lab["destination_workload"] == "web" and lab["response_code"] == "200"]
    assert [float(le) for le, _ in buckets] == [*ISTIO_LE_MS, math.inf]
    assert [float(le) for le, _ in buckets[:-1]] == [b * 1000 for b in LATENCY_BUCKETS_S]
    assert [v for _, v in buckets] == list(web.latency_bucket_counts)
    assert one(found, "istio_request_duration_milliseconds_sum", destination_workload="web", response_code="200") \
        == pytest.approx(web.latency_sum_s * 1000)
    assert one(found, "istio_request_duration_milliseconds_count", destination_workload="web",
               response_code="200") == web.latency_bucket_counts[-1]
    assert {v for lab, v in found["istio_request_duration_milliseconds_bucket"]
            if lab["destination_workload"] == "web" and lab["response_code"] == "504"} == {0.0}


def test_timed_out_requests_are_504s_at_the_timeout():
    snap = snapshot(3)
    web = snap.workloads[0]
    total, t_out = web.latency_bucket_counts[-1], 100.0
    web = dataclasses.replace(web, requests_timed_out_total=t_out, latency_sum_s=web.latency_sum_s + 30.0 * t_out)
    found = samples(render_metrics(dataclasses.replace(snap, workloads=(web, *snap.workloads[1:])), "sim"))
    ok = one(found, "istio_requests_total", destination_workload="web", response_code="200")
    late = one(found, "istio_requests_total", destination_workload="web", response_code="504")
    assert (ok, late) == (total - t_out, t_out)
    for code, count in (("200", total - t_out), ("504", t_out)):
        b = {float(lab["le"]): v for lab, v in found["istio_request_duration_milliseconds_bucket"]
             if lab["destination_workload"] == "web" and lab["response_code"] == code}
        assert b[math.inf] == count == one(found, "istio_request_duration_milliseconds_count",
                                           destination_workload="web", response_code=code)
        les = sorted(b)
        assert all(b[x] <= b[y] for x, y in zip(les, les[1:]))  # cumulative
        assert all(b[le] == count for le in les if le >= 30_000)  # nobody waits longer than the timeout
    b504 = {float(lab["le"]): v for lab, v in found["istio_request_duration_milliseconds_bucket"]
            if lab["destination_workload"] == "web" and lab["response_code"] == "504"}
    assert all(v == 0 for le, v in b504.items() if le < 30_000)
    sums = [v for lab, v in found["istio_request_duration_milliseconds_sum"] if lab["destination_workload"] == "web"]
    assert sum(sums) == pytest.approx(web.latency_sum_s * 1000)


def test_format_details():
    text = render_metrics(snapshot(1), "prod-1")
    assert text.endswith("\n")
    lines = text.splitlines()
    # HELP and TYPE once per family, before its samples; no timestamps; counters typed as counters
    types = [ln.split()[2:] for ln in lines if ln.startswith("# TYPE")]
    assert len({t[0] for t in types}) == len(types)
    assert ["container_cpu_usage_seconds_total", "counter"] in types
    assert ["istio_request_duration_milliseconds", "histogram"] in types
    for ln in lines:
        if not ln.startswith("#"):
            assert len(ln.rsplit("} ", 1)[-1].split()) == 1, ln  # value only, no timestamp
    assert 'cluster="prod-1"' not in text
    with_cluster = render_metrics(snapshot(1), "prod-1", cluster_label=True)
    assert all('cluster="prod-1"' in ln for ln in with_cluster.splitlines() if not ln.startswith("#"))
    assert r'image="registry.local/web:1.0 \"quoted\" \\ back\nslash"' in text


def test_counters_monotonic_across_steps():
    before = samples(render_metrics(snapshot(2), "sim"))
    after = samples(render_metrics(snapshot(3), "sim"))
    for name in ("container_cpu_usage_seconds_total", "container_cpu_cfs_periods_total",
                 "kube_pod_container_status_restarts_total", "istio_requests_total",
                 "istio_request_duration_milliseconds_count"):
        prev = {tuple(sorted(lab.items())): v for lab, v in before[name]}
        for lab, v in after[name]:
            key = tuple(sorted(lab.items()))
            assert key in prev and v >= prev[key], (name, lab)


def test_openmetrics_history_backfills(tmp_path):
    path = tmp_path / "history.om"
    with open(path, "w") as f:
        f.writelines(render_openmetrics_history((snapshot(i) for i in range(5)), "sim"))
    text = path.read_text()
    assert text.endswith("# EOF\n")
    assert text.count("# TYPE container_cpu_usage_seconds counter") == 1
    assert "container_cpu_usage_seconds_total{" in text
    first_ts = int(snapshot(0).time.timestamp())
    assert f" {first_ts}\n" in text and f" {first_ts + 240}\n" in text
    out = backfill(path, tmp_path / "data")
    assert "NUM SAMPLES" in out
    dump = subprocess.run([PROMTOOL, "tsdb", "list", str(tmp_path / "data")], capture_output=True, text=True)
    assert dump.returncode == 0 and len(dump.stdout.splitlines()) >= 2


def test_history_rejects_out_of_order():
    with pytest.raises(ValueError, match="out of order"):
        list(render_openmetrics_history([snapshot(2), snapshot(1)], "sim"))


def test_engine_counters_monotonic_and_equal_snapshots():
    """Driven by the real engine: counters never go down, except a container's CPU/CFS counters when it
    restarts, and then to exactly 0 (a new container instance, as cAdvisor's counters); a new container's
    counters start at 0 too. Workload counters equal the snapshot (200 + 504 = all requests)."""
    from datetime import datetime, timezone

    from aiops.sim.engine import Engine
    from aiops.sim.exposition import engine_snapshots
    from tests.sources.clusters import small_cluster

    engine = Engine(small_cluster(), start=datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc), step_s=60, seed=1)
    engine.step(60)
    prev_samples, prev_snap = None, None
    resets, new_ready, checked = 0, 0, 0
    for snap in engine_snapshots(engine, 40):
        found = samples(render_metrics(snap, "sim"))
        for p in snap.pods:
            if p.node is not None:
                assert one(found, "container_cpu_usage_seconds_total", pod=p.name) == p.cpu_usage_seconds_total
            if p.started is None:  # waiting (or Pending): no container running, counters at 0
                assert p.cpu_usage_seconds_total == p.cfs_periods_total == 0 and p.memory_working_set_bytes == 0
        for w in snap.workloads:
            codes = {lab["response_code"]: v for lab, v in found["istio_requests_total"]
                     if lab["destination_workload"] == w.name}
            assert codes["200"] + codes["504"] == pytest.approx(w.requests_total, rel=1e-12)
            assert codes["504"] == w.requests_timed_out_total
        if prev_samples is not None:
            old_pods = {q.name: q for q in prev_snap.pods}
            for p in snap.pods:
                q = old_pods.get(p.name)
                if q is None:
                    continue
                if p.restarts > q.restarts:
                    resets += 1
                    assert p.cpu_usage_seconds_total == 0.0, (p.name, q.cpu_usage_seconds_total)
                elif p.ready and not q.ready:
                    new_ready += 1  # the step a container became ready: its counter only goes on
            for name in ("container_cpu_usage_seconds_total", "container_cpu_cfs_periods_total",
                         "container_cpu_cfs_throttled_periods_total", "kube_pod_container_status_restarts_total",
                         "istio_requests_total", "istio_request_duration_milliseconds_bucket",
                         "istio_request_duration_milliseconds_sum"):
                before = {tuple(sorted(lab.items())): v for lab, v in prev_samples.get(name, [])}
                for lab, v in found.get(name, []):
                    old = before.get(tuple(sorted(lab.items())))
                    if old is None:
                        continue
                    checked += 1
                    if v < old:
                        assert name.startswith("container_") and v == 0.0, (name, lab, old, v)
                        assert old_pods[lab["pod"]].restarts < next(p.restarts for p in snap.pods if p.name == lab["pod"])
        prev_samples, prev_snap = found, snap
    assert resets > 0 and new_ready > 0 and checked > 1000  # the window covers the crash loop and new pods
    print(f"\ncontainer restarts (counter resets): {resets}; containers becoming ready: {new_ready}")


def test_history_writes_a_new_containers_counters_at_its_start():
    """A pod that first appears in a later snapshot gets its CPU counter at 0 at its start, so that rate() over
    the step it started in is defined."""
    import re
    from datetime import datetime, timezone

    from aiops.sim.engine import Engine
    from aiops.sim.exposition import engine_snapshots
    from tests.sources.clusters import small_cluster

    engine = Engine(small_cluster(), start=datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc), step_s=60, seed=1)
    engine.step(60)
    snaps = list(engine_snapshots(engine, 40))
    text = "".join(render_openmetrics_history(snaps, "sim"))
    first_pods = {p.name for p in snaps[0].pods}
    new = [p for s in snaps[1:] for p in s.pods if p.name not in first_pods and p.node is not None]
    assert new
    for p in {p.name: p for p in new}.values():
        hits = re.findall(rf'container_cpu_usage_seconds_total{{[^}}]*pod="{p.name}"[^}}]*}} (\S+) (\S+)\n', text)
        (v0, t0), (v1, t1) = hits[0], hits[1]
        assert float(v0) == 0 and float(t0) == p.started.timestamp() and float(t1) == float(t0) + 60
        assert float(v1) > 0
