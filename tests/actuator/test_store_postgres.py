"""The recommendation and audit store on a real PostgreSQL (the production backend), started by the test.

The same actuator code as on SQLite: propose, dry-run, apply on the simulated cluster, roll back; many writers
appending at once keep one unbroken chain; an edit made directly in PostgreSQL is caught by `--verify`.
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from aiops.actuator.recommendation import ReplicasChange, State
from aiops.actuator.store import ActionStore, Entry
from tests.actuator.conftest import deployment_target, proposal
from tests.support.postgres import postgres_server


@pytest.fixture(scope="module")
def pg():
    with postgres_server("actions") as base:
        yield f"{base}/actions"


def _clear(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for t in ("audit", "recommendations", "audit_head"):
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_lifecycle_on_postgres(pg, sim, pool, make_actuator, tmp_path, kubectl, cli):
    _clear(pg)
    w = pool.take()
    a = make_actuator(database_url=pg)
    assert a.store.engine.dialect.name == "postgresql"
    rec, created = a.propose(proposal(deployment_target(w), ReplicasChange(replicas=w.replicas + 1)))
    assert created and rec.state is State.pending
    assert a.apply(rec.id, dry_run=True).state == "dry-run-ok"
    assert a.apply(rec.id).state == "applied"
    assert kubectl("get", "deploy", w.name, "-n", w.namespace, "-o", "jsonpath={.spec.replicas}") == str(
        w.replicas + 1)
    assert a.rollback(rec.id).state == "rolled-back"
    # what PostgreSQL itself holds
    with psycopg.connect(pg) as conn:
        state = conn.execute("SELECT state FROM recommendations WHERE id = %s", (rec.id,)).fetchone()[0]
        rows = conn.execute("SELECT seq, action, outcome, prev_hash, hash FROM audit ORDER BY seq").fetchall()
    assert state == "rolled-back"
    assert [(r[1], r[2]) for r in rows] == [("propose", "proposed"), ("dry-run", "dry-run-ok"),
                                             ("apply", "applying"), ("apply", "applied"),
                                             ("rollback", "applying"), ("rollback", "rolled-back")]
    assert all(rows[i][3] == rows[i - 1][4] for i in range(1, len(rows)))
    # the CLI on the same database (a second process, its own connection) sees and verifies the same chain;
    # the audit key is per data directory, so it shares this test's
    p = cli("audit", "--verify", "-o", "json", env={"AIOPS_ACTUATOR__DATABASE_URL": pg,
                                                     "AIOPS_DATA_DIR": str(tmp_path / "data")})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["records"] == 6


def test_concurrent_writers_keep_one_chain(pg):
    _clear(pg)
    key = b"k" * 64
    stores = [ActionStore(pg, key) for _ in range(4)]
    errors: list[BaseException] = []

    def write(i: int, s: ActionStore) -> None:
        try:
            for j in range(15):
                s.record(Entry(f"writer-{i}", "operator", "apply", "blocked", f"test {i}.{j}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    v = stores[0].verify()
    assert v.ok, v.problems
    assert v.records == 60 and v.head_seq == 60
    assert sorted(r["seq"] for r in stores[1].audit_records()) == list(range(1, 61))
    for s in stores:
        s.close()


def test_an_edit_in_postgres_is_detected(pg):
    _clear(pg)
    s = ActionStore(pg, b"k" * 64)
    for i in range(3):
        s.record(Entry("me", "admin", "configure", "frozen", f"reason {i}"))
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 2")
    v = s.verify()
    assert not v.ok and v.problems == ["record 2 was modified after it was written (its hash does not match)"]
    s.close()
