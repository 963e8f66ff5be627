"""PrometheusSource against a server that is down or answers badly: a real HTTP server on loopback."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from aiops.errors import SourceError, UnknownNameError
from aiops.settings import load_settings
from aiops.sources import make_source
from aiops.sources.prometheus import PrometheusSource
from tests.support.http import LoopbackServer
from tests.support.prometheus import closed_port

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)

Answer = Callable[[dict], tuple[int, str]]  # query params -> (status, body)


class FakePrometheus(LoopbackServer):
    """Answers /api/v1/query_range with whatever `answer(params)` returns."""

    def __init__(self, answer: Answer):
        def respond(path: str, params: dict):
            status, body = answer(params)
            return status, "application/json", body

        super().__init__(respond)


class Fakes:
    def __init__(self):
        self.servers: list[FakePrometheus] = []

    def __call__(self, answer: Answer) -> PrometheusSource:
        srv = FakePrometheus(answer)
        self.servers.append(srv)
        return PrometheusSource(load_settings(source="prometheus", prometheus_url=srv.url, prometheus_timeout_s=5))


@pytest.fixture
def fake():
    fakes = Fakes()
    yield fakes
    for s in fakes.servers:
        s.close()


def matrix(params: dict, values: list[str], labels: dict | None = None) -> str:
    """A well-formed range answer: one series, `values` at the request's evaluation times."""
    start, step = float(params["start"]), float(params["step"].rstrip("s"))
    labels = labels if labels is not None else {"namespace": "shop", "workload": "web", "container": "app"}
    pts = [[start + i * step, v] for i, v in enumerate(values)]
    return json.dumps({"status": "success", "data": {"resultType": "matrix",
                                                     "result": [{"metric": labels, "values": pts}]}})


def test_prometheus_down_names_the_url():
    port = closed_port()
    src = PrometheusSource(load_settings(source="prometheus", prometheus_url=f"http://127.0.0.1:{port}"))
    t = time.monotonic()
    with pytest.raises(SourceError) as err:
        src.fetch(T0, T1, ["cpu_usage"], 60)
    msg = str(err.value)
    assert f"prometheus at http://127.0.0.1:{port}: not reachable" in msg
    assert "Connection refused" in msg and "AIOPS_PROMETHEUS_URL" in msg
    assert time.monotonic() - t < 10


@pytest.mark.parametrize("status,body,expected", [
    (200, "this is { not json", "not JSON"),
    (200, json.dumps({"status": "success", "data": {"resultType": "matrix"}}), "no data.result"),
    (200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": "a", "workload": "b", "container": "c"}, "value": [1, "1"]}]}}),
     "resultType 'vector', expected 'matrix'"),
    (200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": {"oops": 1}}}),
     "data.result is a dict"),
    (200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}}]}}),
     "series 0 is not"),
    (500, json.dumps({"status": "error", "errorType": "internal", "error": "boom in the engine"}),
     "HTTP 500 Internal Server Error (internal: boom in the engine)"),
    (400, "plain text failure", "HTTP 400 Bad Request ('plain text failure')"),
])
def test_malformed_answers_name_the_query(fake, status, body, expected):
    src = fake(lambda p: (status, body))
    with pytest.raises(SourceError) as err:
        src.fetch(T0, T1, ["cpu_usage"], 60)
    msg = str(err.value)
    assert expected in msg, msg
    assert src.url in msg and "query 'sum by (namespace, workload, container) (rate(container_cpu_usage" in msg


def test_slow_prometheus_is_a_timeout_not_unreachable(fake):
    def slow(params):
        time.sleep(2.5)
        return 200, matrix(params, ["1"] * 5)

    src = fake(slow)
    src = PrometheusSource(load_settings(source="prometheus", prometheus_url=src.url, prometheus_timeout_s=1))
    with pytest.raises(SourceError) as err:
        src.fetch(T0, T1, ["cpu_usage"], 60)
    msg = str(err.value)
    assert "no answer within 1 s to query 'sum by" in msg and "AIOPS_PROMETHEUS_TIMEOUT_S" in msg, msg


def test_non_numeric_and_bad_points(fake):
    src = fake(lambda p: (200, matrix(p, ["1", "abc", "3", "4", "5"])))
    with pytest.raises(SourceError, match=r"point 1 of shop/web/app has non-numeric value 'abc'"):
        src.fetch(T0, T1, ["request_rate"], 60)
    src = fake(lambda p: (200, matrix(p, ["1", 2.0, "3", "4", "5"])))
    with pytest.raises(SourceError, match=r"has value 2.0 \(float\), expected a number in a string"):
        src.fetch(T0, T1, ["request_rate"], 60)
    src = fake(lambda p: (200, matrix(p, ["1"] * 5, labels={"namespace": "shop", "pod": "x"})))
    with pytest.raises(SourceError, match=r"lacks label\(s\) \['workload', 'container'\]"):
        src.fetch(T0, T1, ["request_rate"], 60)


def test_nan_inf_and_negative_values_pass_through(fake):
    src = fake(lambda p: (200, matrix(p, ["NaN", "-5", "+Inf", "-Inf", "0.25"])))
    frame = src.fetch(T0, T1, ["cpu_usage"], 60)
    assert list(frame["ts"]) == [T0 + timedelta(minutes=i) for i in range(5)]
    v = frame["value"].tolist()
    assert math.isnan(v[0]) and v[1:] == [-5.0, math.inf, -math.inf, 0.25]
    assert set(frame["metric"]) == {"cpu_usage"} and set(frame["unit"]) == {"cores"}
    assert set(frame["cluster"]) == {"sim"}


def test_query_grid_and_evaluation_times(fake):
    src = fake(lambda p: (200, matrix(p, ["1"] * 5)))
    # start off the grid: rows start at the next whole minute; each row is evaluated at its step's end
    frame = src.fetch(T0 - timedelta(seconds=30), T1, ["memory_working_set"], 60)
    (req,) = fake.servers[-1].requests
    assert int(req["start"]) == int((T0 + timedelta(minutes=1)).timestamp())
    assert int(req["end"]) == int((T0 + timedelta(minutes=5)).timestamp())
    assert req["step"] == "60s"
    assert list(frame["ts"]) == [T0 + timedelta(minutes=i) for i in range(5)]
    assert src.fetch(T0, T0, ["memory_working_set"], 60).empty


def test_unknown_metric_lists_the_known_ones(fake):
    src = fake(lambda p: (500, "must not be asked"))
    with pytest.raises(UnknownNameError) as err:
        src.fetch(T0, T1, ["cpu_usage", "cpu_usge"], 60)
    assert "unknown metric 'cpu_usge'" in str(err.value) and "cpu_usage" in str(err.value)
    assert "latency_p99" in str(err.value)


def test_make_source_registry():
    src = make_source(load_settings(source="prometheus", prometheus_url="http://127.0.0.1:1"))
    assert src.name == "prometheus" and isinstance(src, PrometheusSource)
    with pytest.raises(UnknownNameError, match="unknown source 'influx'; known sources: prometheus, simulator"):
        make_source(load_settings(), "influx")
