"""Run the simulated cluster's API on a real HTTP socket (uvicorn), in the foreground or a background thread."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import uvicorn

from aiops.errors import AiopsError
from aiops.sim.apiserver.app import KubeApp
from aiops.sim.apiserver.store import Store
from aiops.sim.live import LiveCluster


class ApiServer:
    """The Kubernetes API of a `LiveCluster` on `host:port` (port 0: a free one, read back from `.port`).

    `serve_forever()` blocks (the CLI); `start()`/`stop()` (or `with ApiServer(...) as srv:`) run it in a daemon
    thread (tests, notebooks).
    """

    def __init__(self, live: LiveCluster, *, host: str = "127.0.0.1", port: int = 0, cluster: str | None = None,
                 event_ttl: timedelta = timedelta(hours=1)):
        self.live = live
        self.store = Store(live, cluster=cluster or live.spec.name, event_ttl=event_ttl)
        try:
            self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(1024)  # connections queue from now on, before uvicorn starts accepting
        except OSError as exc:
            raise AiopsError(f"cannot listen on {host}:{port}: {exc}; choose another --port (0 picks a free one)") \
                from None
        self.host, self.port = host, self._sock.getsockname()[1]
        self.kube = KubeApp(self.store, server_address=f"{host}:{self.port}")
        config = uvicorn.Config(self.kube.asgi, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, ws="none")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self.live.start_clock()
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self.kube.shutdown.set()
            self.live.stop_clock()

    def start(self, timeout_s: float = 10.0) -> "ApiServer":
        self.live.start_clock()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="aiops-sim-apiserver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AiopsError(f"the simulated API server did not start on {self.url} within {timeout_s} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.kube.shutdown.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.live.stop_clock()

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
