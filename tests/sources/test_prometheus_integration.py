"""A real Prometheus: backfilled simulator history read through PrometheusSource agrees with SimulatorSource;
and Prometheus scraping the live exposition.

Tolerances (backfill comparison), and why:
- every metric but latency_p99, on every row (pod lifecycle transitions included: pods created, scheduled,
  starting, becoming ready, crashing, waiting in CrashLoopBackOff, deleted):
  |prometheus - simulator| <= |simulator| * 0.001 / STEP + 1e-9. The snapshot at a step's end shows the state
  the engine recorded for that step and counters integrated to that instant, samples sit exactly on the step
  grid, and `rate(x[S + 1 ms])` is then exactly (x(t+S) - x(t)) / S (a restarted container's counter resets to
  exactly 0, which `rate()` reads as a reset; a new container's counter is also written as 0 at its start). The
  only difference is Prometheus's zero-clamp of the extrapolation when a counter's first sample in the window is
  0 (the first step, a container's first step, a restart count going from 0 to 1): that series' rate is divided
  by S + 1 ms instead of S, a relative 1 ms / S = 1.7e-5 at most; and request counters move on a 2^-20 grid
  (so that served = all - timed-out is exact), 2^-20 / S requests/s at most. Every other row agrees to float
  round-off (printed: the rows off by more than 1e-12).
- latency_p99: Prometheus interpolates linearly inside a histogram bucket, the simulator reports the exact
  quantile, so the check is: Prometheus's value equals histogram_quantile computed here from the exposed bucket
  counts (1e-6), and lies inside the bucket that holds the simulator's p99 (every step with traffic: requests
  are cut at the 30 s timeout in the histogram as in the simulator's p99, so a saturated workload reads
  between 10 and 30 s, not beyond).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from aiops.ingest import ingest_range
from aiops.metrics import METRICS
from aiops.settings import load_settings
from aiops.sim.engine import Engine
from aiops.sim.exposition import CONTENT_TYPE, engine_snapshots, render_metrics, render_openmetrics_history
from aiops.sim.state import LATENCY_BUCKETS_S
from aiops.sources import promql
from aiops.sources.prometheus import PrometheusSource
from aiops.store import Store
from aiops.sources.simulator import SimulatorSource
from tests.sources.clusters import small_cluster
from tests.support.http import LoopbackServer
from tests.support.prometheus import backfill, running_prometheus

# `python3 bootstrap.py test` installs Debian's prometheus; without it these tests fail, they do not skip
pytestmark = [pytest.mark.integration]

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
HOURS, STEP, SEED = 4, 60, 1
KEY = ["namespace", "workload", "container", "metric", "ts"]
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    """Simulate, write the OpenMetrics history, backfill it, start Prometheus on it; yield both sources' frames
    over the same window, and the per-step latency bucket counts the exposition carried."""
    work = tmp_path_factory.mktemp("backfill")
    spec = small_cluster()
    engine = Engine(spec, start=T0, step_s=STEP, seed=SEED)
    buckets: dict[tuple[str, str], list[tuple[datetime, tuple[float, ...]]]] = {}

    def recording(snaps):
        for s in snaps:
            for w in s.workloads:
                buckets.setdefault((w.namespace, w.name), []).append((s.time, w.latency_bucket_counts))
            yield s

    history = work / "history.om"
    with open(history, "w") as f:
        f.writelines(render_openmetrics_history(recording(engine_snapshots(engine, HOURS * 3600 // STEP)), "sim"))
    backfill(history, work / "data")
    settings = load_settings(source="prometheus", sim={"start": T0, "step_seconds": STEP, "seed": SEED})
    end = T0 + timedelta(hours=HOURS)
    sim = SimulatorSource(settings, spec=spec).fetch(T0, end, list(METRICS), STEP)
    # backfilled blocks have no staleness markers: a 30 s look-back keeps a deleted pod's last sample from
    # counting at later steps (a scraping Prometheus writes the markers itself)
    with running_prometheus(work / "prom", data_dir=work / "data", lookback_delta="30s") as prom:
        src = PrometheusSource(load_settings(source="prometheus", prometheus_url=prom.url))
        prom_frame = src.fetch(T0, end, list(METRICS), STEP)
        # and the whole ingest path (windows, validation, store) through each source
        stores = {"prometheus": Store(work / "via_prometheus"), "simulator": Store(work / "via_simulator")}
        ingested = {
            "prometheus": ingest_range(src, stores["prometheus"], T0, end, window=timedelta(hours=1), step_s=STEP,
                                       batch_windows=2),
            "simulator": ingest_range(SimulatorSource(settings, spec=spec), stores["simulator"], T0, end,
                                      window=timedelta(hours=1), step_s=STEP, batch_windows=2),
        }
        src.close()
    yield sim, prom_frame, buckets, stores, ingested


def _transitions(sim: pd.DataFrame) -> pd.DataFrame:
    """(namespace, workload, container, ts) rows in a pod lifecycle transition."""
    k = ["namespace", "workload", "container", "ts"]
    wide = sim.pivot_table(index=k, columns="metric", values="value", observed=True).reset_index()
    wide = wide.sort_values(["namespace", "workload", "ts"]).reset_index(drop=True)
    g = wide.groupby(["namespace", "workload"])
    nxt = lambda c: g[c].shift(-1)  # noqa: E731
    prv = lambda c: g[c].shift(1)  # noqa: E731
    trans = ((wide["restarts"] > 0) | (nxt("restarts") > 0) | (prv("restarts") > 0)
             | (wide["replicas"] != wide["replicas_available"])
             | (nxt("replicas_available") != wide["replicas_available"])
             | (prv("replicas_available") != wide["replicas_available"])
             | (nxt("replicas") != wide["replicas"]))
    wide["transition"] = trans
    return wide[k + ["transition"]]


def test_ingest_through_prometheus_stores_what_ingest_from_the_simulator_stores(backfilled):
    *_, stores, ingested = backfilled
    for name, summary in ingested.items():
        assert not summary.quarantined, f"{name}: {summary.quarantined}"
        assert len(summary.windows) == HOURS and all(len(w.stored) == len(METRICS) for w in summary.windows)
    via_prom, via_sim = stores["prometheus"].read(), stores["simulator"].read()
    assert len(via_prom) == len(via_sim) == len(METRICS) * len(small_cluster().workloads) * HOURS * 3600 // STEP
    both = via_sim.merge(via_prom, on=KEY, suffixes=("_sim", "_prom"))
    assert len(both) == len(via_sim), "the two stores hold different series or timestamps"
    exact = both[both["metric"] != "latency_p99"]
    tol = exact["value_sim"].abs() * (0.001 / STEP) + 2.0**-20 / STEP  # as in test_values_agree
    off = exact[(exact["value_prom"] - exact["value_sim"]).abs() > tol]
    assert off.empty, f"{len(off)} stored rows differ:\n{off.head().to_string()}"
    lat = both[(both["metric"] == "latency_p99") & both["value_sim"].notna() & (both["value_sim"] > 0)]
    ratio = lat["value_prom"] / lat["value_sim"]
    assert len(lat) and ratio.between(0.3, 3.0).all(), ratio.describe()  # within the bucket holding the p99


def test_values_agree(backfilled):
    sim, prom, *_ = backfilled
    both = sim.merge(prom, on=KEY, suffixes=("_sim", "_prom")).merge(_transitions(sim), on=KEY[:3] + ["ts"])
    assert len(both) == len(sim)
    share = both.drop_duplicates(KEY[:3] + ["ts"])["transition"].mean()
    assert share >= 0.02, f"only {share:.1%} of rows are transition steps: the window should exercise them"
    print(f"\ntransition rows: {share:.1%}")
    for metric, g in both.groupby("metric", observed=True):
        if metric == "latency_p99":
            continue
        diff = (g["value_prom"] - g["value_sim"]).abs()
        # the zero-clamp (1 ms of extrapolation in S), and request counters on a 2^-20 grid (aiops.sim.derive)
        tol = g["value_sim"].abs() * (0.001 / STEP) + 2.0**-20 / STEP
        bad = g[diff > tol]
        assert bad.empty, f"{metric}: {len(bad)} rows differ:\n{bad.head().to_string()}"
        rel = (diff / g["value_sim"].abs().where(g["value_sim"] != 0)).fillna(0)
        trans = g["transition"]
        clamped = int((rel > 1e-12).sum())
        print(f"{metric:20s} max rel: steady {rel[~trans].max():.2e}, transition {rel[trans].max():.2e} "
              f"({int(trans.sum())} rows); rows off by more than 1e-12: {clamped}")


def _histogram_quantile(q: float, les: list[float], counts: np.ndarray) -> float:
    """Prometheus's histogram_quantile on cumulative bucket counts (last bucket +Inf)."""
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    b = int(np.searchsorted(counts, rank, side="left"))
    if b == len(les) - 1:
        return les[-2]
    lo, c0 = (0.0, 0.0) if b == 0 else (les[b - 1], counts[b - 1])
    return lo + (les[b] - lo) * (rank - c0) / (counts[b] - c0)


def test_latency_p99_is_the_histogram_quantile(backfilled):
    sim, prom, buckets, *_ = backfilled
    les = [b * 1000 for b in LATENCY_BUCKETS_S] + [math.inf]
    p = prom[prom["metric"] == "latency_p99"].set_index(["namespace", "workload", "ts"])["value"]
    s = sim[sim["metric"] == "latency_p99"].set_index(["namespace", "workload", "ts"])["value"]
    rate = sim[sim["metric"] == "request_rate"].set_index(["namespace", "workload", "ts"])["value"]
    ratios, checked = [], 0
    for (ns, wl), series in buckets.items():
        for (t, c0), (_, c1) in zip(series, series[1:]):
            key = (ns, wl, pd.Timestamp(t))
            expect = _histogram_quantile(0.99, les, np.asarray(c1) - np.asarray(c0)) / 1000
            got = p[key]
            assert (math.isnan(expect) and math.isnan(got)) or got == pytest.approx(expect, rel=1e-6), key
            if rate[key] > 0:
                assert got <= TIMEOUT_S, (key, got)  # requests are cut at the timeout in the histogram too
                i = int(np.searchsorted(LATENCY_BUCKETS_S, s[key]))
                lo = 0.0 if i == 0 else LATENCY_BUCKETS_S[i - 1]
                assert lo <= got <= LATENCY_BUCKETS_S[i] + 1e-12, (key, s[key], got)
                ratios.append(got / s[key])
                checked += 1
    assert checked > 0.8 * len(p)
    r = np.asarray(ratios)
    print(f"\nlatency_p99 prometheus/simulator over {checked} rows: median {np.median(r):.3f}, "
          f"p5 {np.percentile(r, 5):.3f}, p95 {np.percentile(r, 95):.3f}, max {r.max():.3f}")


# --- live scrape -------------------------------------------------------------------------------------------


class Exporter(LoopbackServer):
    """Serves render_metrics of a LiveCluster's current snapshot on a loopback port."""

    def __init__(self, live, cluster: str):
        self.scrapes = 0

        def respond(path: str, query: dict):
            self.scrapes += 1
            return 200, CONTENT_TYPE, render_metrics(live.snapshot(), cluster)

        super().__init__(respond)
        self.target = self.host_port


def test_live_scrape(tmp_path):
    from aiops.sim.live import LiveCluster

    live = LiveCluster(small_cluster(), start=T0, step_s=STEP, seed=SEED, speed=0)
    live.advance(30)
    exporter = Exporter(live, "sim")
    try:
        with running_prometheus(tmp_path, targets=[exporter.target], scrape_interval="1s") as prom:
            snap = live.snapshot()
            running = [p for p in snap.pods if p.node is not None]
            prom.wait_for_samples("up == 1")  # the first scrape comes ~5 s after start (discovery throttle)
            deadline = time.monotonic() + 15
            while exporter.scrapes < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert exporter.scrapes >= 3
            got = prom.wait_for_samples("container_cpu_usage_seconds_total", min_series=len(running))
            by_pod = {r["metric"]["pod"]: r for r in got}
            assert set(by_pod) == {p.name for p in running}
            for p in running:
                lab = by_pod[p.name]["metric"]
                assert (lab["namespace"], lab["container"], lab["node"]) == (p.namespace, p.container, p.node)
                assert float(by_pod[p.name]["value"][1]) == p.cpu_usage_seconds_total
            # the source's PromQL over live-scraped data: workload memory = sum over its pods' working sets
            src = PrometheusSource(load_settings(source="prometheus", prometheus_url=prom.url))
            now = datetime.now(timezone.utc).replace(microsecond=0)
            result = src.query_range(promql.query_for("memory_working_set", 1), now - timedelta(seconds=2), now, 1)
            values = {(r["metric"]["namespace"], r["metric"]["workload"]): float(r["values"][-1][1]) for r in result}
            for w in snap.workloads:
                expect = sum(p.memory_working_set_bytes for p in snap.pods
                             if p.workload == w.name and p.namespace == w.namespace and p.node is not None)
                assert values[(w.namespace, w.name)] == pytest.approx(expect, rel=1e-9)
            result = src.query_range(promql.query_for("replicas", 1), now - timedelta(seconds=2), now, 1)
            assert {(r["metric"]["workload"], r["metric"]["container"], float(r["values"][-1][1])) for r in result} \
                == {(w.name, w.container, float(w.spec_replicas)) for w in snap.workloads}
            src.close()
    finally:
        exporter.close()
