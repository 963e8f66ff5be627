"""Recommendations and the audit chain in one SQL database (SQLAlchemy): SQLite by default, PostgreSQL in production.

Every state change of a recommendation and its audit record are written in one transaction, so the two always
agree. Appends are serialised by locking the single `audit_head` row first (a row lock on PostgreSQL, the write
lock on SQLite), which also makes the compare-and-set of states race-free between processes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aiops.actuator.audit import GENESIS, Verification, record_hash, verify_chain
from aiops.actuator.recommendation import OPEN_STATES, Proposal, Recommendation, State
from aiops.errors import ActuatorError, AuditBroken, Conflict, UnknownNameError

meta = sa.MetaData()

recommendations = sa.Table(
    "recommendations", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("object_key", sa.String(400), nullable=False, index=True),
    sa.Column("change_type", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the Proposal as JSON: a value, never edited
    sa.Column("state", sa.String(32), nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("applied_audit_seq", sa.Integer, nullable=True),
    sa.Column("last_audit_seq", sa.Integer, nullable=True),
)

audit = sa.Table(
    "audit", meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("recommendation_id", sa.Integer, nullable=True, index=True),
    sa.Column("object_key", sa.String(400), nullable=True, index=True),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("before", sa.Text, nullable=True),  # JSON
    sa.Column("after", sa.Text, nullable=True),  # JSON
    sa.Column("diff", sa.Text, nullable=True),
    sa.Column("details", sa.Text, nullable=True),  # JSON
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("frozen", sa.Text, nullable=True),  # the admin's freeze reason; NULL: not frozen
)

_JSON_FIELDS = ("before", "after", "details")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, sort_keys=True, default=str)


@dataclass(frozen=True)
class Entry:
    """One decision to record: who, in which role, did what to which recommendation/object, and how it ended."""

    actor: str
    role: str
    action: str
    outcome: str
    reason: str
    recommendation_id: int | None = None
    object_key: str | None = None
    before: Any = None
    after: Any = None
    diff: str | None = None
    details: Any = None


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the driver aiops installs), not SQLAlchemy's default psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class ActionStore:
    """The recommendation table and the audit chain behind one engine."""

    def __init__(self, url: str, key: bytes):
        url = normalise_url(url)
        self.key = key
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = sa.create_engine(url, **kwargs)
            meta.create_all(self.engine)
            with self.engine.begin() as conn:
                if conn.execute(sa.select(audit_head.c.id)).first() is None:
                    conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS, frozen=None))
        except sa.exc.IntegrityError:
            pass  # another process created the head row first
        except sa.exc.SQLAlchemyError as exc:
            raise ActuatorError(f"cannot open the recommendation store {self.engine.url!r}: "
                                f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        self.engine.dispose()

    # --- transactions -------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A transaction holding the audit head's lock (every writer takes it first, so writers are serialised)."""
        with self.engine.begin() as conn:
            # an UPDATE first: a write lock at once on SQLite (no reader-to-writer upgrade deadlock), a row lock on PG
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq))
            yield conn

    def _append(self, conn: Connection, e: Entry) -> dict[str, Any]:
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        rec: dict[str, Any] = {
            "seq": head.seq + 1, "time": _now(), "actor": e.actor, "role": e.role, "action": e.action,
            "recommendation_id": e.recommendation_id, "object_key": e.object_key, "outcome": e.outcome,
            "reason": e.reason, "diff": e.diff, "prev_hash": head.hash,
            **{k: _dumps(getattr(e, k)) for k in _JSON_FIELDS},
        }
        rec["hash"] = record_hash(self.key, rec)
        conn.execute(audit.insert().values(**rec))
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=rec["seq"], hash=rec["hash"]))
        if e.recommendation_id is not None:
            conn.execute(recommendations.update().where(recommendations.c.id == e.recommendation_id)
                         .values(last_audit_seq=rec["seq"]))
        return rec

    def record(self, e: Entry) -> dict[str, Any]:
        """Append one audit record (a decision that changes no recommendation: a denial, a block, a freeze)."""
        with self._locked() as conn:
            return self._append(conn, e)

    def transition(self, rec_id: int, expected: tuple[State, ...], new: State, e: Entry, *,
                   applied: bool = False) -> dict[str, Any]:
        """Move recommendation `rec_id` from one of `expected` to `new` and record `e`, atomically.

        Raises Conflict when the recommendation is no longer in an expected state (someone else acted on it).
        `applied=True` remembers the record as the apply that a rollback undoes.
        """
        with self._locked() as conn:
            row = conn.execute(sa.select(recommendations.c.state).where(recommendations.c.id == rec_id)).first()
            if row is None:
                raise UnknownNameError("recommendation", str(rec_id), [])
            if State(row.state) not in expected:
                raise Conflict(f"recommendation {rec_id} is {row.state}, not "
                               f"{' or '.join(s.value for s in expected)}: someone else acted on it meanwhile")
            rec = self._append(conn, e)
            values: dict[str, Any] = {"state": new.value, "updated_at": rec["time"]}
            if applied:
                values["applied_audit_seq"] = rec["seq"]
            conn.execute(recommendations.update().where(recommendations.c.id == rec_id).values(**values))
            return rec

    # --- recommendations ----------------------------------------------------------------------------------------

    def propose(self, p: Proposal, actor: str, role: str, *, supersede: bool = False) -> tuple[Recommendation, bool]:
        """Store a proposal as a pending recommendation; the same fingerprint again returns the stored one.

        `supersede`: a new recommendation closes the open ones from the same source (evidence.source) for the same
        object and kind of change, in the same transaction and each with its own audit record, so that acting on
        every open recommendation can never apply an outdated plan after a newer one."""
        fp = p.fingerprint()
        with self._locked() as conn:
            found = conn.execute(sa.select(recommendations.c.id).where(recommendations.c.fingerprint == fp)).first()
            if found is not None:
                rec_id, created = found.id, False
            else:
                now = _now()
                rec_id = conn.execute(recommendations.insert().values(
                    fingerprint=fp, object_key=p.target.object_key, change_type=p.change.type,
                    body=p.model_dump_json(), state=State.pending.value, created_at=now, updated_at=now,
                ).returning(recommendations.c.id)).scalar_one()
                self._append(conn, Entry(actor, role, "propose", "proposed", p.reason, rec_id, p.target.object_key,
                                         after=p.change.model_dump(mode="json"),
                                         details={"evidence": p.evidence.model_dump(mode="json")}))
                created = True
                if supersede:
                    self._supersede(conn, p, rec_id, actor, role)
        return self.get(rec_id), created

    def _supersede(self, conn: Connection, p: Proposal, by: int, actor: str, role: str) -> None:
        rows = conn.execute(sa.select(recommendations.c.id, recommendations.c.body).where(
            recommendations.c.object_key == p.target.object_key, recommendations.c.change_type == p.change.type,
            recommendations.c.id != by, recommendations.c.state.in_([s.value for s in OPEN_STATES])))
        for row in rows.all():
            if json.loads(row.body).get("evidence", {}).get("source") != p.evidence.source:
                continue
            e = self._append(conn, Entry(actor, role, "supersede", "superseded",
                                         f"superseded by recommendation {by}, a newer {p.evidence.source} proposal for "
                                         f"the same object", row.id, p.target.object_key))
            conn.execute(recommendations.update().where(recommendations.c.id == row.id)
                         .values(state=State.superseded.value, updated_at=e["time"]))

    @staticmethod
    def _from_row(row: Any) -> Recommendation:
        body = json.loads(row.body)
        return Recommendation(**body, id=row.id, state=State(row.state),
                              created_at=datetime.fromisoformat(row.created_at),
                              updated_at=datetime.fromisoformat(row.updated_at),
                              applied_audit_seq=row.applied_audit_seq)

    def get(self, rec_id: int) -> Recommendation:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).first()
        if row is None:
            raise UnknownNameError("recommendation", str(rec_id), self.ids(limit=20))
        return self._from_row(row)

    def ids(self, limit: int = 20) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(recommendations.c.id).order_by(recommendations.c.id.desc()).limit(limit))
            return [str(r.id) for r in rows]

    def list(self, states: tuple[State, ...] | None = None, limit: int | None = None) -> list[Recommendation]:
        q = sa.select(recommendations).order_by(recommendations.c.id)
        if states:
            q = q.where(recommendations.c.state.in_([s.value for s in states]))
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [self._from_row(r) for r in conn.execute(q)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(recommendations.c.state, sa.func.count()).group_by(recommendations.c.state))
            return {r[0]: r[1] for r in rows}

    # --- audit --------------------------------------------------------------------------------------------------

    def audit_record(self, seq: int, *, verified: bool = False) -> dict[str, Any]:
        """One record; `verified`: refuse it unless its own hash matches (a rollback never trusts an edited one)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(audit).where(audit.c.seq == seq)).first()
        if row is None:
            raise AuditBroken(f"audit record {seq} does not exist (deleted?): run `aiops audit --verify`")
        raw = row._asdict()
        if verified and not hmac.compare_digest(record_hash(self.key, raw), raw["hash"]):
            raise AuditBroken(f"audit record {seq} was modified after it was written: it cannot be trusted to roll "
                              "back from; run `aiops audit --verify`")
        return _decode(raw)

    def audit_records(self, *, recent: int | None = None, recommendation_id: int | None = None) -> list[dict]:
        q = sa.select(audit)
        if recommendation_id is not None:
            q = q.where(audit.c.recommendation_id == recommendation_id)
        q = q.order_by(audit.c.seq.desc()).limit(recent) if recent else q.order_by(audit.c.seq)
        with self.engine.connect() as conn:
            rows = [_decode(r._asdict()) for r in conn.execute(q)]
        return sorted(rows, key=lambda r: r["seq"])

    def applied_since(self, object_key: str, since: datetime) -> int:
        """How many changes were applied to the object since `since` (the rate limit's count)."""
        q = sa.select(sa.func.count()).select_from(audit).where(
            audit.c.object_key == object_key, audit.c.outcome.in_(("applied", "rolled-back")),
            audit.c.time >= since.astimezone(timezone.utc).isoformat(timespec="microseconds"))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def verify(self) -> Verification:
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(sa.select(audit).order_by(audit.c.seq))]
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
            anchors = {r.id: r.last_audit_seq for r in conn.execute(
                sa.select(recommendations.c.id, recommendations.c.last_audit_seq))}
        return verify_chain(self.key, rows, (head.seq, head.hash), anchors)

    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            h = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        return h.seq, h.hash

    # --- the admin's freeze -------------------------------------------------------------------------------------

    def frozen(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(audit_head.c.frozen).where(audit_head.c.id == 1)).scalar_one()

    def set_frozen(self, reason: str | None, e: Entry) -> dict[str, Any]:
        with self._locked() as conn:
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(frozen=reason))
            return self._append(conn, e)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in _JSON_FIELDS:
        if out.get(k) is not None:
            out[k] = json.loads(out[k])
    return out


def since(minutes: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)
