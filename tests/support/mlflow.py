"""A real `mlflow server` for tests: SQLite (or a given) backend and artifacts under a tmp directory, on a free
loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import BIN, free_port, wait_http


def mlflow_server_env(**extra: str) -> dict[str, str]:
    """The environment an `mlflow server` runs in here: no MLFLOW_*/AIOPS_* from the caller, job execution off
    (otherwise it starts ~10 worker processes on a 2-core machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AIOPS_"))}
    return {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **extra}


@contextmanager
def mlflow_server(root: Path, warm_up: Callable[[], object] | None = None,
                  backend_store_uri: str | None = None) -> Iterator[str]:
    """A real `mlflow server` with its store in `root` (mlflow.db, artifacts/); yields its tracking URI.

    `warm_up` runs while the server starts (it takes a while: imports and migrations), e.g. the caller's imports.
    `backend_store_uri`: another backend than SQLite, e.g. a PostgreSQL database (tests/support/postgres.py).
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend = backend_store_uri or f"sqlite:///{(root / 'mlflow.db').resolve()}"
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend,
           "--artifacts-destination", str((root / "artifacts").resolve()), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(cmd, env=mlflow_server_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if warm_up is not None:
            warm_up()
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=120)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; server log:\n{(root / 'server.log').read_text()[-3000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own session, with everything it spawned (uvicorn, workers), even when the
    process we started has already exited and left children behind."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # nothing left in the group
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader: a zombie still counts as a member of its group
        if not _group_alive(proc.pid):
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
