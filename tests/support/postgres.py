"""A real PostgreSQL for tests: its own cluster in a temporary directory, on a free loopback port, trust auth.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user (ENV_NOTES.md). Its
directory is made with `tempfile.mkdtemp` under /tmp rather than under pytest's tmp_path, whose root-only parents
the `postgres` user could not enter.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import free_port


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _binary(name: str) -> str:
    found = shutil.which(name) or next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))),
                                       None)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL (Debian: postgresql) to run these tests")
    return found


@contextmanager
def postgres_server(*databases: str) -> Iterator[str]:
    """Start a cluster with `databases` created; yields `postgresql://postgres@127.0.0.1:<port>` (append /db)."""
    root = Path(tempfile.mkdtemp(prefix="aiops-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", free_port()
    run = dict(check=True, capture_output=True, text=True, cwd=root)
    try:
        subprocess.run([*_as_owner(), _binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8"], **run)
        subprocess.run([*_as_owner(), _binary("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
                        "-c fsync=off", "-w", "start"], **run)
    except subprocess.CalledProcessError as exc:
        log = (root / "server.log").read_text()[-2000:] if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}\n{log}") from None
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        import psycopg

        with psycopg.connect(f"{url}/postgres", autocommit=True) as con:
            for db in databases:
                con.execute(f'CREATE DATABASE "{db}"')
        yield url
    finally:
        subprocess.run([*_as_owner(), _binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
