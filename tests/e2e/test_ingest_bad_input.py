"""Bad data from a source is quarantined with a reason naming it; nothing already stored is lost.

The source is the real PrometheusSource over real HTTP, talking to a loopback server that answers range
queries like Prometheus would, except for the corruptions a test asks for (a broken exporter or proxy).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aiops.errors import SourceError
from aiops.ingest import ingest_range
from aiops.metrics import METRICS
from aiops.series import ROW_KEY
from aiops.settings import load_settings
from aiops.sources import make_source
from aiops.sources.promql import query_for
from aiops.store import Store
from tests.support.http import LoopbackServer
from tests.support.prometheus import closed_port

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SERIES = ({"namespace": "shop", "workload": "frontend", "container": "app"},
          {"namespace": "shop", "workload": "cart", "container": "app"})

# which metric's query gets which corruption, in the second window only
CORRUPT = {
    "cpu_usage": "nan",
    "memory_working_set": "negative",
    "request_rate": "out_of_order",
    "replicas": "duplicate",
    "latency_p99": "huge",
}
BAD_METRICS = set(CORRUPT)
QUERIES = {query_for(m, 60): m for m in METRICS}


class PromLike:
    """Answers Prometheus range queries from a loopback server, corrupting the second window on request."""

    def __init__(self):
        self.corrupt = True
        self.http = LoopbackServer(lambda path, q: (200, "application/json", json.dumps(self.answer(q))))
        self.url = self.http.url

    def answer(self, q: dict) -> dict:
        start, end, step = float(q["start"]), float(q["end"]), float(q["step"].rstrip("s"))
        times = [start + i * step for i in range(int((end - start) // step) + 1)]
        kind = CORRUPT.get(QUERIES[q["query"]])
        in_second_window = start >= (T0 + HOUR).timestamp()
        result = []
        for j, labels in enumerate(SERIES):
            values = [[t, str(0.5 + 0.01 * j + 0.001 * (i % 7))] for i, t in enumerate(times)]
            if self.corrupt and in_second_window and kind and j == 0:
                k = len(values) // 2
                if kind == "nan":
                    values[k][1] = "NaN"
                elif kind == "negative":
                    values[k][1] = "-3"
                elif kind == "huge":
                    values[k][1] = "1e9"
                elif kind == "out_of_order":
                    values[k], values[k + 1] = values[k + 1], values[k]
                elif kind == "duplicate":
                    values.insert(k, list(values[k]))
            result.append({"metric": labels, "values": values})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def close(self):
        self.http.close()


@pytest.fixture
def prom():
    p = PromLike()
    yield p
    p.close()


def _settings(tmp_path: Path, url: str):
    return load_settings(data_dir=tmp_path / "data", source="prometheus", prometheus_url=url,
                         prometheus_timeout_s=5, ingest={"window_hours": 1, "step_seconds": 60})


def _digests(d: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((d / "raw").rglob("*.parquet"))}


def test_bad_batches_are_quarantined_named_and_retried(tmp_path, prom):
    settings = _settings(tmp_path, prom.url)
    store = Store(settings.data_dir)
    first = ingest_range(make_source(settings), store, T0, T0 + HOUR, window=HOUR, step_s=60)
    assert not first.quarantined and len(first.windows[0].stored) == len(METRICS)
    stored_before = _digests(settings.data_dir)
    rows_before = store.read()

    # both windows validated as one batch: it fails, so each window is validated on its own to pin the failures
    second = ingest_range(make_source(settings), store, T0, T0 + 2 * HOUR, window=HOUR, step_s=60, batch_windows=2)
    w1, w2 = second.windows
    assert w1.skipped and not w1.stored  # the first window was already stored: untouched
    assert set(w2.quarantined) == BAD_METRICS
    assert set(w2.stored) == set(METRICS) - BAD_METRICS
    reasons = w2.quarantined
    assert "cpu_usage" in reasons["cpu_usage"] and "NaN" in reasons["cpu_usage"]
    assert "memory_working_set" in reasons["memory_working_set"] and "-3" in reasons["memory_working_set"]
    assert "latency_p99" in reasons["latency_p99"] and "1e+09" in reasons["latency_p99"].replace("1000000000", "1e+09")
    assert "request_rate" in reasons["request_rate"] and "order" in reasons["request_rate"].lower()
    assert "replicas" in reasons["replicas"] and "duplicate" in reasons["replicas"].lower()
    for reason in reasons.values():
        assert "shop/frontend" in reason, reason  # the offending series is named

    # the quarantined batches are kept, with their rows and reasons; none of them reached the store
    q = store.quarantined()
    assert set(q["metric"]) == BAD_METRICS and (q["rows"] > 0).all()
    assert all(Path(p).exists() for p in q["path"])
    after = store.read()
    assert not after.duplicated(list(ROW_KEY)).any()
    assert after["value"].notna().all() and (after["value"] >= 0).all()
    assert set(after[after.ts >= T0 + HOUR].metric) == set(METRICS) - BAD_METRICS
    # what was stored before is intact, and the gaps are visible
    assert all(_digests(settings.data_dir)[p] == h for p, h in stored_before.items())
    assert after[after.ts < T0 + HOUR].reset_index(drop=True).equals(rows_before.reset_index(drop=True))
    for m in BAD_METRICS:
        assert store.missing_windows("prometheus", m, T0, T0 + 2 * HOUR, HOUR) == [T0 + HOUR]

    # the exporter is fixed: a re-run fills exactly the gaps
    prom.corrupt = False
    third = ingest_range(make_source(settings), store, T0, T0 + 2 * HOUR, window=HOUR, step_s=60)
    assert set(third.windows[1].stored) == BAD_METRICS and not third.quarantined
    final = store.read()
    assert not final.duplicated(list(ROW_KEY)).any()
    assert len(final) == 2 * len(rows_before)
    for m in METRICS:
        assert store.missing_windows("prometheus", m, T0, T0 + 2 * HOUR, HOUR) == []


def test_prometheus_down_stores_nothing_and_loses_nothing(tmp_path, prom):
    settings = _settings(tmp_path, prom.url)
    store = Store(settings.data_dir)
    ingest_range(make_source(settings), store, T0, T0 + HOUR, window=HOUR, step_s=60)
    before = _digests(settings.data_dir)
    down = _settings(tmp_path, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(SourceError, match=r"prometheus at http://127\.0\.0\.1:\d+.*not reachable"):
        ingest_range(make_source(down), store, T0, T0 + 2 * HOUR, window=HOUR, step_s=60)
    assert _digests(settings.data_dir) == before
    assert store.missing_windows("prometheus", "cpu_usage", T0, T0 + 2 * HOUR, HOUR) == [T0 + HOUR]


def test_a_failing_joint_batch_is_split_so_good_windows_are_stored(tmp_path, prom):
    settings = _settings(tmp_path, prom.url)
    store = Store(settings.data_dir)
    got = ingest_range(make_source(settings), store, T0, T0 + 2 * HOUR, window=HOUR, step_s=60, batch_windows=2)
    w1, w2 = got.windows
    assert not w1.quarantined and set(w1.stored) == set(METRICS)  # the clean window of the failed batch is kept
    assert set(w2.quarantined) == BAD_METRICS and set(w2.stored) == set(METRICS) - BAD_METRICS
    assert len(store.quarantined()) == len(BAD_METRICS)  # no batch-level quarantine of the clean window
