"""Atomicity under a real crash: a writer process is SIGKILLed in the middle of write_window."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from aiops.store import Store

from .conftest import H6, T0, make_frame

ROOT = str(Path(__file__).resolve().parents[2])
BIG = 3000  # workloads: ~1M rows a window, so writing takes long enough to be killed in the middle

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from aiops.store import Store
    from tests.store.conftest import T0, H6, make_frame
    store = Store({data!r})
    frame = make_frame(seed=int(sys.argv[1]), workloads={big})
    print("go", flush=True)
    store.write_window("simulator", "cpu_usage", T0, T0 + H6, frame)
    print("done", flush=True)
    """
)


def _run_and_kill(tmp_path: Path, data: Path, seed: int, delay: float) -> bool:
    """Start a writer of seed `seed`, SIGKILL it `delay` s after it starts writing; True if it finished first."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=ROOT, data=str(data), big=BIG))
    proc = subprocess.Popen([sys.executable, str(script), str(seed)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out = proc.stdout.read()
    proc.wait(timeout=30)
    return "done" in out


def _check_consistent(store: Store) -> pd.DataFrame:
    """Every visible window file is a complete Parquet file; every watermark points at a complete file."""
    for path in store.raw_dir.rglob("*.parquet"):
        pq.read_table(path)  # raises on a partial file
    wm = store.windows()
    for row in wm.itertuples():
        assert (store.data_dir / row.file).exists()
    return wm


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_first_write_leaves_no_watermark_and_no_partial_file(tmp_path):
    data = tmp_path / "data"
    unfinished = 0
    for attempt in range(2):
        store = Store(data)
        finished = _run_and_kill(tmp_path, data, seed=attempt, delay=random.uniform(0.01, 0.15))
        wm = _check_consistent(store)
        target = store.raw_dir / "metric=cpu_usage" / "day=2026-01-05" / "simulator__20260105T000000Z.parquet"
        if not target.exists():
            unfinished += 1
            assert wm.empty, "a window that was never completely written has a watermark"
        elif not wm.empty:  # completed (possibly killed between rename and watermark: then no row)
            assert wm.loc[0, "sha256"] == _sha(target) and wm.loc[0, "rows"] == BIG * 360
        assert finished is False or not wm.empty
        # the re-run heals whatever state the crash left
        store.write_window("simulator", "cpu_usage", T0, T0 + H6, make_frame(seed=attempt, workloads=2))
        assert store.windows().loc[0, "sha256"] == _sha(target)
        target.unlink()
        (data / "state" / "watermarks.sqlite").unlink()
        for f in data.glob("state/watermarks.sqlite-*"):
            f.unlink()
    assert unfinished >= 1, "no attempt was killed mid-write; the test did not exercise the crash"
    # leftover temp files are hidden and never read as data
    assert all(p.name.startswith(".") for p in store.raw_dir.rglob("*.tmp"))
    assert store.read().empty


def test_killed_rewrite_leaves_old_or_new_file_never_partial(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    old = make_frame(seed=1, workloads=BIG)
    rec = store.write_window("simulator", "cpu_usage", T0, T0 + H6, old)
    target = data / rec.file
    old_sha = rec.sha256
    old_sum = float(old["value"].sum())
    new_sum = float(make_frame(seed=2, workloads=BIG)["value"].sum())
    for _ in range(2):
        _run_and_kill(tmp_path, data, seed=2, delay=random.uniform(0.01, 0.4))
        wm = _check_consistent(store)
        total = float(pq.read_table(target, columns=["value"]).column("value").to_pandas().sum())
        assert abs(total - old_sum) < 1e-6 * old_sum or abs(total - new_sum) < 1e-6 * new_sum
        assert len(wm) == 1  # the window stays recorded throughout
        if _sha(target) == old_sha:
            assert wm.loc[0, "sha256"] == old_sha
        # rewrite back to the old content so the next round starts from "old"
        store.write_window("simulator", "cpu_usage", T0, T0 + H6, old)
        assert _sha(target) == old_sha and store.windows().loc[0, "sha256"] == old_sha
    assert len(store.read()) == len(old)
