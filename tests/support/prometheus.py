"""A real Prometheus for tests: start `/usr/bin/prometheus` on a free loopback port, stop it, backfill history.

    with running_prometheus(tmp_path / "prom", targets=["127.0.0.1:8123"], scrape_interval="1s") as prom:
        prom.url   # http://127.0.0.1:<port>

    backfill(tmp_path / "history.om", data_dir)          # promtool tsdb create-blocks-from openmetrics
    with running_prometheus(tmp_path / "prom", data_dir=data_dir) as prom: ...   # blocks load at start

Missing binaries are an error, not a skip: `python3 bootstrap.py test` installs Debian's `prometheus`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROMETHEUS = os.environ.get("AIOPS_TEST_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("AIOPS_TEST_PROMTOOL", "/usr/bin/promtool")


def prometheus_available() -> bool:
    return bool(shutil.which(PROMETHEUS)) and bool(shutil.which(PROMTOOL))


def require_prometheus() -> None:
    if not prometheus_available():
        raise RuntimeError(f"{PROMETHEUS} and {PROMTOOL} are needed (Debian package `prometheus`); "
                           "`python3 bootstrap.py test` installs it")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nobody listens on (for 'server down' tests)."""
    return free_port()


def write_config(path: Path, targets: Sequence[str] = (), *, scrape_interval: str = "15s",
                 job: str = "aiops-sim", metrics_path: str = "/metrics") -> Path:
    """A prometheus.yml scraping `targets` (host:port), or none."""
    lines = ["global:", f"  scrape_interval: {scrape_interval}", f"  evaluation_interval: {scrape_interval}",
             "scrape_configs:"]
    if targets:
        lines += [f"  - job_name: {job}", f"    metrics_path: {metrics_path}",
                  f"    scrape_interval: {scrape_interval}", f"    scrape_timeout: {scrape_interval}",
                  "    honor_labels: true", "    static_configs:",
                  "      - targets: [" + ", ".join(f'"{t}"' for t in targets) + "]"]
    else:
        lines[-1] = "scrape_configs: []"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class PrometheusServer:
    workdir: Path
    data_dir: Path
    config: Path
    port: int
    args: list[str]
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "PrometheusServer":
        cmd = [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
               f"--web.listen-address=127.0.0.1:{self.port}", *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready within {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def wait_for_samples(self, query: str, *, min_series: int = 1, timeout_s: float = 30.0) -> list[dict]:
        """Poll an instant query until it returns at least `min_series` series; return them."""
        import json
        import urllib.parse

        deadline = time.monotonic() + timeout_s
        last: list[dict] = []
        while time.monotonic() < deadline:
            url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
            with urllib.request.urlopen(url, timeout=5) as r:
                last = json.load(r)["data"]["result"]
            if len(last) >= min_series:
                return last
            time.sleep(0.25)
        raise TimeoutError(f"{query!r}: {len(last)} series after {timeout_s} s, wanted {min_series}\n"
                           f"{self.log_tail()}")


@contextlib.contextmanager
def running_prometheus(workdir: Path, *, targets: Sequence[str] = (), scrape_interval: str = "15s",
                       data_dir: Path | None = None, lookback_delta: str | None = None,
                       extra_args: Sequence[str] = ()) -> Iterator[PrometheusServer]:
    """A Prometheus on a free loopback port with its data in `data_dir` (default `workdir/data`), stopped on exit.

    `lookback_delta` sets `--query.lookback-delta`: backfilled history has no staleness markers, so a series that
    ends (a deleted pod) stays visible to instant selectors for the whole look-back (default 5 m); a look-back
    shorter than the sample interval makes instant selectors see only samples that exist at that step.
    """
    require_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir / "prometheus.yml", targets, scrape_interval=scrape_interval)
    args = ["--storage.tsdb.retention.time=36500d", "--log.level=warn", *extra_args]
    if lookback_delta:
        args.append(f"--query.lookback-delta={lookback_delta}")
    server = PrometheusServer(workdir, data_dir, config, free_port(), args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def backfill(openmetrics_path: Path, data_dir: Path, *, timeout_s: float = 300.0) -> str:
    """Write TSDB blocks from an OpenMetrics file (`# EOF`-terminated, timestamps in seconds) into `data_dir`.

    Start Prometheus on `data_dir` afterwards: blocks present at start are loaded at once (blocks dropped into a
    running server's directory appear only at its next reload, up to ~1 min). Samples may be any age; give the
    server a long `--storage.tsdb.retention.time` (running_prometheus does) so old blocks are not deleted.
    Returns promtool's output; raises RuntimeError with it when promtool fails.
    """
    require_prometheus()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_path),
                           str(data_dir)], capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill of {openmetrics_path} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout
