#!/usr/bin/env python3
"""Set up aiops on a fresh machine and run it: `python3 bootstrap.py demo` or `python3 bootstrap.py test`.

Needs only the machine's Python 3.11. Creates `.venv` beside this file, installs uv into it and, with uv, the
project and its pinned dependencies (`constraints.txt`); for `test` also the Debian packages the tests start
(`prometheus`, and `kubectl` if missing). Re-running skips what is already installed.
Any further arguments go to the command: `python3 bootstrap.py test -k store`, `python3 bootstrap.py demo --days 2`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".bootstrap-stamp"
UV_VERSION = "0.13.8"
# Debian package -> what shows it is there (a path, a command on PATH, or one of PostgreSQL's versioned binaries)
APT_PACKAGES = {"prometheus": "/usr/bin/prometheus", "kubernetes-client": "kubectl", "postgresql": "initdb"}


def log(msg: str) -> None:
    print(f"[bootstrap] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> None:
    log(" ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kw)


def ensure_venv(extras: str) -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"[bootstrap] needs Python 3.11, this is {sys.version.split()[0]} ({sys.executable})")
    want = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes() + extras.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if not (BIN / "python").exists():
        log(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        run([BIN / "python", "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"])
    env = dict(os.environ, VIRTUAL_ENV=str(VENV))
    env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    target = f".{extras}" if extras == "" else f".[{extras}]"
    run([BIN / "uv", "pip", "install", "-p", BIN / "python", "-c", "constraints.txt", "-e", target], cwd=ROOT, env=env)
    STAMP.write_text(want)


def ensure_apt() -> None:
    missing = [pkg for pkg, probe in APT_PACKAGES.items()
               if not (Path(probe).exists() or shutil.which(probe)
                       or any(Path("/usr/lib/postgresql").glob(f"*/bin/{probe}")))]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run([*sudo, "apt-get", "update", "-q"], env=env)
    run([*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    what, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if what == "demo":
        ensure_venv("")
        return subprocess.call([BIN / "aiops", "demo", *rest])
    ensure_venv("test")
    ensure_apt()
    code = subprocess.call([BIN / "lint-imports"])
    if code:
        log("import rules broken (see above)")
        return code
    return subprocess.call([BIN / "python", "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
