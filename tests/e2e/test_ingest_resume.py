"""A killed ingest resumes without duplicates or gaps; a finished one re-run changes nothing.

Real subprocesses of the `aiops` command, running the ingest flow on an embedded Prefect (SQLite).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from aiops.series import ROW_KEY
from aiops.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AIOPS = str(Path(sys.executable).with_name("aiops"))
WINDOWS = 24  # 1 day of 1-hour windows
N_METRICS = 13


def _env(data_dir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "PREFECT_"))},
        "AIOPS_DATA_DIR": str(data_dir),
        "AIOPS_SIM__WORKLOADS": "8",
        "AIOPS_SIM__DAYS": "1",
        "AIOPS_SIM__START": "2026-11-02T00:00:00Z",
        "AIOPS_INGEST__WINDOW_HOURS": "1",
        "AIOPS_SIM__SCRAPE_GLITCHES": "0",  # glitches are the demo's and the quarantine tests' business
    }


def _stored_windows(data_dir: Path) -> int:
    db = data_dir / "state" / "watermarks.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM windows").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _ingest(data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([AIOPS, "ingest", "-o", "json", *extra], env=_env(data_dir), capture_output=True,
                          text=True, timeout=300)


def _file_digests(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((data_dir / "raw").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """One uninterrupted ingest, the reference the resumed one must equal."""
    d = tmp_path_factory.mktemp("clean")
    proc = _ingest(d)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d


def test_sigkill_mid_run_then_rerun_has_no_duplicates_and_no_gaps(tmp_path, clean_run):
    d = tmp_path / "killed"
    proc = subprocess.Popen([AIOPS, "ingest"], env=_env(d), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while _stored_windows(d) < 3 * N_METRICS:
        assert proc.poll() is None, f"ingest ended before it could be killed: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "ingest made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and Prefect's ephemeral server with it
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = _stored_windows(d)
    assert 3 * N_METRICS <= partial < WINDOWS * N_METRICS, "the kill must land in the middle of the run"

    rerun = _ingest(d)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _stored_windows(d) == WINDOWS * N_METRICS

    store, ref = Store(d), Store(clean_run)
    got, want = store.read(), ref.read()
    assert len(got) > 0
    assert not got.duplicated(list(ROW_KEY)).any(), "duplicate rows after resume"
    assert store.missing_windows("simulator", "cpu_usage", got.ts.min(), got.ts.max(), timedelta(hours=1)) == []
    assert len(got) == len(want)
    assert got.reset_index(drop=True).equals(want.reset_index(drop=True)), "resumed data differs from a clean run"


def test_rerunning_a_finished_ingest_changes_nothing(clean_run):
    before = _file_digests(clean_run)
    frame_before = Store(clean_run).read()
    rows_before = len(frame_before)
    proc = _ingest(clean_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"rows": 0' in proc.stdout and '"windows_skipped": 24' in proc.stdout, proc.stdout
    assert _file_digests(clean_run) == before
    assert len(Store(clean_run).read()) == rows_before

    forced = _ingest(clean_run, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert _file_digests(clean_run).keys() == before.keys()  # replaced in place, nothing added
    assert Store(clean_run).read().equals(frame_before)  # the same rows, not twice

