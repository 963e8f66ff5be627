"""A real HTTP forwarding proxy for tests: it stands between a client and an upstream server (the simulated
cluster's API) and can hold chosen requests, so a test can decide when a write reaches the server and when its
client hears back.

Every request is forwarded as it came (method, path and query, headers, body) and the answer relayed as it came
(status, headers including `Warning`, body), one connection per request. A `Rule` intercepts the requests its
predicate matches:

- `hold`: not forwarded until `release(forward=True)`; `release(forward=False)` drops it (the connection is
  closed unanswered, the server never sees it): a client killed while its write was on the way.
- `forward_then_hold`: forwarded at once, the server's answer kept until `release()`: the write landed and the
  client never heard.
- `barrier`: held until `count` matching requests have arrived, then all are forwarded together: clients that
  read the same version of an object write at the same moment.

Watches (streaming) are not supported: answers are read whole before they are relayed.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiops.sim.kubeconfig import write_kubeconfig

# hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on each leg; the length is recomputed
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "content-length", "host"}
Mode = Literal["hold", "forward_then_hold", "barrier"]
MODES = ("hold", "forward_then_hold", "barrier")


@dataclass(frozen=True)
class Request:
    """One request as the proxy received it."""

    method: str
    target: str  # path and query, exactly as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.get("dryRun", [])

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Predicate = Callable[[Request], bool]


def writes(resource: str, method: str = "PATCH", *, dry_run: bool = False) -> Predicate:
    """Requests `method` to objects of `resource` (a plural such as "deployments"), real writes by default,
    dry-runs (`dryRun=All`) with `dry_run=True`."""

    def match(r: Request) -> bool:
        return r.method == method and f"/{resource}/" in r.path and r.dry_run == dry_run

    return match


@dataclass
class Forwarded:
    """A request sent upstream, and the status it answered (0: the upstream could not be reached)."""

    request: Request
    status: int


class Rule:
    """Intercepts the first `times` requests matching `match` (later ones pass through); see the module doc.

    `wait_arrived(n)` blocks until n requests were intercepted, `wait_answered(n)` until the upstream answered
    n of them; `release()` lets held requests (or held answers) go.
    """

    def __init__(self, match: Predicate, mode: Mode, *, count: int = 1, times: int | None = None,
                 timeout_s: float = 30.0):
        if mode not in MODES:
            raise ValueError(f"rule mode {mode!r} is not one of {', '.join(MODES)}")
        if count < 1:
            raise ValueError(f"barrier count must be at least 1, got {count}")
        self.match, self.mode, self.count = match, mode, count
        self.times = times if times is not None else (count if mode == "barrier" else 1)
        self.timeout_s = timeout_s  # a barrier not reached by then answers 504 rather than hang the test
        self.arrived: list[Request] = []
        self.answered: list[Forwarded] = []
        self._cond = threading.Condition()
        self._released = False
        self._forward = True

    def _take(self, r: Request) -> bool:
        with self._cond:
            if len(self.arrived) >= self.times or not self.match(r):
                return False
            self.arrived.append(r)
            self._cond.notify_all()
            return True

    def _wait(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        with self._cond:
            if not self._cond.wait_for(done, timeout=timeout_s):
                raise TimeoutError(f"proxy rule ({self.mode}): {what} within {timeout_s:g} s; arrived "
                                   f"{[(r.method, r.path, r.query) for r in self.arrived]}, answered "
                                   f"{[f.status for f in self.answered]}")

    def wait_arrived(self, n: int = 1, timeout_s: float = 30.0) -> list[Request]:
        """Block until `n` matching requests have arrived; the requests so far."""
        self._wait(f"expected {n} matching request(s) to arrive", lambda: len(self.arrived) >= n, timeout_s)
        return list(self.arrived)

    def wait_answered(self, n: int = 1, timeout_s: float = 30.0) -> list[Forwarded]:
        """Block until the upstream has answered `n` of the intercepted requests."""
        self._wait(f"expected the upstream to answer {n} request(s)", lambda: len(self.answered) >= n, timeout_s)
        return list(self.answered)

    def release(self, *, forward: bool = True) -> None:
        """Let held requests go on (`forward=False`: drop them unanswered); let held answers go to their clients."""
        with self._cond:
            self._released, self._forward = True, forward
            self._cond.notify_all()

    def _until_released(self, barrier: bool = False) -> bool:
        """Wait for the release (or a reached barrier); False when the request is to be dropped."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._released or (barrier and len(self.arrived) >= self.count),
                                     timeout=self.timeout_s if barrier else None)
            if not ok:
                return False
            return self._forward if self._released else True

    def _record(self, f: Forwarded) -> None:
        with self._cond:
            self.answered.append(f)
            self._cond.notify_all()


@dataclass
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Proxy:
    """Forwards HTTP from `url` (a free loopback port) to `upstream`; `with Proxy(sim.url) as p:` or `close()`."""

    def __init__(self, upstream: str, *, timeout_s: float = 30.0):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"upstream must be an http:// URL with a host, got {upstream!r}")
        self.upstream, self._host, self._port = upstream, u.hostname, u.port or 80
        self.timeout_s = timeout_s
        self.rules: list[Rule] = []
        self.log: list[Forwarded] = []  # every request sent upstream, in order
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.server = _Server(("127.0.0.1", 0), _handler(self), self)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._serve = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="test-proxy", daemon=True)
        self._serve.start()

    def intercept(self, match: Predicate, mode: Mode = "hold", *, count: int = 1, times: int | None = None,
                  timeout_s: float = 30.0) -> Rule:
        """Add a rule (first added, first asked); returns it to wait on and release."""
        rule = Rule(match, mode, count=count, times=times, timeout_s=timeout_s)
        with self._lock:
            self.rules.append(rule)
        return rule

    def kubeconfig(self, path: str | Path, *, cluster: str = "sim") -> Path:
        """Write a kubeconfig whose server is this proxy (same cluster, context and user names as the direct one)."""
        return write_kubeconfig(path, self.url, cluster=cluster)

    def forwarded(self, match: Predicate) -> list[Forwarded]:
        """The requests matching `match` that reached the upstream, with the status it answered."""
        with self._lock:
            return [f for f in self.log if match(f.request)]

    def close(self) -> None:
        """Drop whatever is still held, stop serving and wait for every handler thread."""
        self._closed = True
        for rule in list(self.rules):
            if not rule._released:
                rule.release(forward=False)
        self.server.shutdown()
        self.server.server_close()
        self._serve.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=self.timeout_s + 5)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"proxy handler threads still running after close: {alive}")

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the work of one request ------------------------------------------------------------------------------

    def _rule_for(self, r: Request) -> Rule | None:
        with self._lock:
            rules = list(self.rules)
        return next((rule for rule in rules if rule._take(r)), None)

    def _forward(self, r: Request) -> tuple[_Answer, Forwarded]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        try:
            conn.putrequest(r.method, r.target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{self._host}:{self._port}")
            for k, v in r.headers:  # a list, not a dict: repeated headers go on repeated
                if k.lower() not in _HOP:
                    conn.putheader(k, v)
            if r.body or r.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(r.body)))
            conn.endheaders(r.body or None)
            resp = conn.getresponse()
            answer, status = _Answer(resp.status, resp.reason, resp.getheaders(), resp.read()), resp.status
        except OSError as exc:
            status = 0
            answer = _Answer(502, "Bad Gateway", [("Content-Type", "text/plain")],
                             f"test proxy: upstream {self.upstream} failed: {exc!r}".encode())
        finally:
            conn.close()
        sent = Forwarded(r, status)
        with self._lock:
            self.log.append(sent)
        return answer, sent

    def handle(self, r: Request) -> _Answer | None:
        """The answer for the client, or None to close its connection unanswered."""
        rule = None if self._closed else self._rule_for(r)
        if rule is None:
            return self._forward(r)[0]
        if rule.mode == "forward_then_hold":
            answer, sent = self._forward(r)
            rule._record(sent)
            rule._until_released()
            return answer if rule._forward else None
        if not rule._until_released(barrier=rule.mode == "barrier"):
            if rule.mode == "barrier" and not rule._released:
                return _Answer(504, "Gateway Timeout", [("Content-Type", "text/plain")],
                               f"test proxy: barrier of {rule.count} not reached in {rule.timeout_s:g} s "
                               f"({len(rule.arrived)} arrived): not forwarded".encode())
            return None
        answer, sent = self._forward(r)
        rule._record(sent)
        return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # joined by Proxy.close() instead, with a timeout
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, proxy: Proxy):
        self.proxy = proxy
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name=f"test-proxy-{client_address[1]}", daemon=True)
        with self.proxy._lock:
            self.proxy._threads = [x for x in self.proxy._threads if x.is_alive()] + [t]
        t.start()


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = proxy.timeout_s  # a client that connects and sends nothing does not keep a thread forever

        def _proxy(self) -> None:
            self.close_connection = True  # one request per connection: nothing idles in keep-alive at close()
            r = Request(self.command, self.path, tuple(self.headers.items()), self._body())
            answer = proxy.handle(r)
            if answer is None:
                return  # dropped: the connection closes without an answer
            try:
                self.send_response_only(answer.status, answer.reason)  # Date and Server come from upstream
                for k, v in answer.headers:
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass  # the client went away (killed while its request was held)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return out
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _proxy  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
