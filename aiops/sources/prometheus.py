"""Metrics from a Prometheus server that scrapes cAdvisor, kube-state-metrics and Istio (or the simulator).

One `query_range` per metric per window (split only past Prometheus's 11,000 points per series), with the
PromQL of `aiops.sources.promql`. The row at grid instant `t` (epoch-aligned multiples of the step, `start <= t
< end`) is the query evaluated at `t + step` (the step's end) and labelled `t`: see `aiops.sources.promql` for
why that makes rates the mean over `[t, t + step)`, as the simulator reports them.

Failures become `SourceError` naming the URL and the query: not reachable (refused, DNS, connect timeout), slow
(read timeout), an HTTP error (with Prometheus's own `error` text), or an answer that is not a
`{"status": "success", "data": {"resultType": "matrix", "result": [...]}}` document of numeric values. NaN and
±Inf values are kept as they are: validation decides about them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from aiops.errors import SourceError
from aiops.metrics import METRICS
from aiops.series import conform, empty_frame
from aiops.sources.base import check_request, grid
from aiops.sources.promql import query_for

MAX_POINTS = 10_000  # per series per query; Prometheus refuses more than 11,000
LABELS = ("namespace", "workload", "container")


class PrometheusSource:
    """Reads the catalogue metrics from Prometheus at `settings.prometheus_url`."""

    name = "prometheus"

    def __init__(self, settings, *, retries: int = 2):
        self.url = str(settings.prometheus_url).rstrip("/")
        self.cluster = settings.cluster_name
        self.timeout_s = float(settings.prometheus_timeout_s)
        self._last: requests.Response | None = None
        session = requests.Session()
        session.verify = False  # disable_ssl, as PrometheusConnect does when it builds its own session
        session.hooks["response"].append(self._remember)
        # retry what is worth retrying (refused connections, 502/503/504, 429) briefly; after the last attempt
        # the response is returned (raise_on_status=False) so its status and error text reach the message
        # (read=False: a read timeout is raised as such, not retried and not reported as "not reachable")
        retry = Retry(total=retries, connect=retries, read=False, backoff_factor=0.25,
                      status_forcelist=(429, 502, 503, 504), raise_on_status=False)
        self._prom = PrometheusConnect(url=self.url, disable_ssl=True, session=session, retry=retry,
                                       timeout=self.timeout_s)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    def __repr__(self) -> str:
        return f"PrometheusSource({self.url})"

    def close(self) -> None:
        self._prom.close()

    def __enter__(self) -> "PrometheusSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- fetching -------------------------------------------------------------------------------------------

    def fetch(self, start: datetime, end: datetime, metrics: Sequence[str], step_s: int) -> pd.DataFrame:
        start, end, names = check_request(start, end, metrics, step_s)
        times = grid(start, end, step_s)
        if len(times) == 0 or not names:
            return empty_frame()
        parts = [self._fetch_metric(m, times, step_s) for m in names]
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty_frame()
        return conform(pd.concat(parts, ignore_index=True), name=f"prometheus at {self.url}")

    def _fetch_metric(self, metric: str, times: pd.DatetimeIndex, step_s: int) -> pd.DataFrame:
        query = query_for(metric, step_s)
        frames = []
        for i in range(0, len(times), MAX_POINTS):
            chunk = times[i:i + MAX_POINTS]
            # evaluate at each step's end, label with its start
            q0 = chunk[0].to_pydatetime() + timedelta(seconds=step_s)
            q1 = chunk[-1].to_pydatetime() + timedelta(seconds=step_s)
            result = self.query_range(query, q0, q1, step_s)
            frames.append(self._to_frame(metric, query, result, step_s, chunk))
        return pd.concat(frames, ignore_index=True) if frames else empty_frame()

    def query_range(self, query: str, start: datetime, end: datetime, step_s: int) -> list[dict]:
        """Run one range query (evaluated at start, start + step, ... <= end) and return its checked `result`."""
        where = f"prometheus at {self.url}"
        self._last = None
        try:
            result = self._prom.custom_query_range(query, start_time=start, end_time=end, step=f"{int(step_s)}s")
        except requests.exceptions.ConnectTimeout as exc:
            raise SourceError(f"{where}: not reachable (connect timeout after {self.timeout_s:g} s: {_root(exc)}); "
                              "is it running? set AIOPS_PROMETHEUS_URL") from None
        except requests.exceptions.Timeout:
            raise SourceError(f"{where}: no answer within {self.timeout_s:g} s to query {_short(query)}; raise "
                              "AIOPS_PROMETHEUS_TIMEOUT_S or make the window smaller (AIOPS_INGEST__WINDOW_HOURS)"
                              ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.RetryError) as exc:
            raise SourceError(f"{where}: not reachable ({_root(exc)}); is it running? set AIOPS_PROMETHEUS_URL"
                              ) from None
        except PrometheusApiClientException:
            raise SourceError(f"{where}: query {_short(query)} failed: {self._http_error()}") from None
        except (ValueError, KeyError, TypeError, IndexError):  # body not JSON, or no data.result in it
            raise SourceError(f"{where}: query {_short(query)}: answer is not a Prometheus API document "
                              f"({self._body_problem()})") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(f"{where}: query {_short(query)} failed: {_root(exc)}") from None
        self._check_envelope(query)
        return result

    def _http_error(self) -> str:
        r = self._last
        if r is None:
            return "no response"
        try:
            doc = r.json()
            detail = f"{doc.get('errorType', 'error')}: {doc.get('error', '')}".strip()
        except ValueError:
            detail = _snippet(r.text)
        return f"HTTP {r.status_code} {r.reason} ({detail})"

    def _body_problem(self) -> str:
        r = self._last
        if r is None:
            return "no response"
        try:
            doc = r.json()
        except ValueError:
            return f"not JSON, Content-Type {r.headers.get('Content-Type')!r}: {_snippet(r.text)}"
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or "result" not in doc["data"]:
            return f"no data.result: {_snippet(r.text)}"
        return _snippet(r.text)

    def _check_envelope(self, query: str) -> None:
        r = self._last
        if r is None:  # pragma: no cover - the hook always runs
            return
        doc = r.json()
        where = f"prometheus at {self.url}: query {_short(query)}"
        if doc.get("status") != "success":
            raise SourceError(f"{where}: status {doc.get('status')!r}, expected 'success' ({_snippet(r.text)})")
        rtype = doc["data"].get("resultType")
        if rtype != "matrix":
            raise SourceError(f"{where}: resultType {rtype!r}, expected 'matrix' for a range query")

    # --- parsing --------------------------------------------------------------------------------------------

    def _to_frame(self, metric: str, query: str, result: Any, step_s: int, times: pd.DatetimeIndex) -> pd.DataFrame:
        where = f"prometheus at {self.url}: query {_short(query)}"
        if not isinstance(result, list):
            raise SourceError(f"{where}: data.result is a {type(result).__name__}, expected a list of series")
        cols: dict[str, list] = {"namespace": [], "workload": [], "container": [], "ts": [], "value": []}
        grid_ns = times.as_unit("ns").asi8
        seen: set[tuple[str, str, str]] = set()
        for i, series in enumerate(result):
            if not isinstance(series, dict) or not isinstance(series.get("metric"), dict) \
                    or not isinstance(series.get("values"), list):
                raise SourceError(f"{where}: series {i} is not {{'metric': {{...}}, 'values': [[t, 'v'], ...]}}: "
                                  f"{_snippet(json.dumps(series))}")
            labels = series["metric"]
            missing = [k for k in LABELS if not isinstance(labels.get(k), str) or not labels.get(k)]
            if missing:
                raise SourceError(f"{where}: series {labels} lacks label(s) {missing}; expected one series per "
                                  f"(namespace, workload, container)")
            key = (labels["namespace"], labels["workload"], labels["container"])
            if key in seen:
                raise SourceError(f"{where}: two series for {'/'.join(key)}; expected one per (namespace, workload, "
                                  "container)")
            seen.add(key)
            ts, vals = _points(series["values"], where, key)
            # evaluation time t + step -> row time t
            ts_ns = (ts - step_s * 1000) * 1_000_000
            off_grid = ~np.isin(ts_ns, grid_ns)
            if off_grid.any():
                bad = pd.Timestamp(int(ts_ns[off_grid][0]), tz="UTC")
                raise SourceError(f"{where}: sample for {'/'.join(key)} at {bad} is not on the {step_s} s grid of "
                                  f"the window [{times[0]}, {times[-1]}]")
            n = len(ts_ns)
            cols["namespace"] += [key[0]] * n
            cols["workload"] += [key[1]] * n
            cols["container"] += [key[2]] * n
            cols["ts"].append(ts_ns)
            cols["value"].append(vals)
        if not seen:
            return empty_frame()
        frame = pd.DataFrame({
            "cluster": self.cluster,
            "namespace": cols["namespace"],
            "workload": cols["workload"],
            "container": cols["container"],
            "metric": metric,
            "unit": METRICS[metric].unit,
            "ts": pd.to_datetime(np.concatenate(cols["ts"]), unit="ns", utc=True),
            "value": np.concatenate(cols["value"]),
        })
        return frame


def _points(values: list, where: str, key: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps in ms, values) of a series' `[[t, "v"], ...]`, each checked."""
    ts = np.empty(len(values), dtype=np.int64)
    vals = np.empty(len(values), dtype=np.float64)
    for j, pair in enumerate(values):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise SourceError(f"{where}: point {j} of {'/'.join(key)} is {pair!r}, expected [unix_time, \"value\"]")
        t, v = pair
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise SourceError(f"{where}: point {j} of {'/'.join(key)} has time {t!r}, expected unix seconds")
        if not isinstance(v, str):
            raise SourceError(f"{where}: point {j} of {'/'.join(key)} has value {v!r} ({type(v).__name__}), "
                              "expected a number in a string")
        try:
            vals[j] = float(v)  # accepts Prometheus's "NaN", "+Inf", "-Inf"
        except ValueError:
            raise SourceError(f"{where}: point {j} of {'/'.join(key)} has non-numeric value {v!r}") from None
        ts[j] = round(t * 1000)
    return ts, vals


def _short(query: str, n: int = 160) -> str:
    return repr(query if len(query) <= n else query[: n - 3] + "...")


def _snippet(text: str, n: int = 200) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _root(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, e.g. '[Errno 111] Connection refused'."""
    seen = set()
    cur: BaseException | None = exc
    reason = str(exc)
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        reason = str(cur) or reason
        nxt = getattr(cur, "reason", None)
        if isinstance(nxt, BaseException):
            cur = nxt
            continue
        if cur.args and isinstance(cur.args[0], BaseException):
            cur = cur.args[0]
            continue
        cur = cur.__cause__ or cur.__context__
    if "Errno" in reason and ":" in reason:
        reason = reason[reason.find("[Errno"):] if "[Errno" in reason else reason
    return reason
