"""Audit records chained by keyed hash: editing, deleting or reordering any record breaks the chain.

Each record's `hash` is HMAC-SHA256(key, canonical JSON of its fields and the previous record's hash). Without the
key nobody can rewrite the chain after an edit; `verify` walks it in sequence order and names the first record
that does not fit. The head (last sequence number and hash) is kept in its own row so a deleted last record is
caught too; print `aiops audit --verify`'s head hash to an external log to anchor it against someone who can
also rewrite that row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "time", "actor", "role", "action", "recommendation_id", "object_key", "outcome", "reason",
                 "before", "after", "diff", "details", "prev_hash")


def canonical(record: dict[str, Any]) -> bytes:
    doc = {k: record.get(k) for k in HASHED_FIELDS}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def record_hash(key: bytes, record: dict[str, Any]) -> str:
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def load_key(path: Path, *, create: bool = True) -> bytes:
    """The audit signing key from `path`; created (mode 0600) when missing and `create`."""
    path = path.expanduser()
    if path.is_file():
        raw = path.read_text().strip()
        if len(raw) < 32:
            raise ValueError(f"audit key file {path}: expected at least 32 characters of secret, got {len(raw)}")
        return raw.encode()
    if not create:
        raise FileNotFoundError(f"audit key file {path} does not exist: records cannot be verified without it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic and refuses to overwrite: two first users agree on one key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode()


@dataclass
class Verification:
    """The result of walking the chain: `ok`, how many records, the head, and each problem found."""

    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "problems": self.problems}


def verify_chain(key: bytes, records: list[dict[str, Any]], head: tuple[int, str],
                 anchors: dict[int, int] | None = None) -> Verification:
    """Check `records` (in the order the database returns them by seq) against each other and the stored head.

    `anchors` maps a recommendation id to the last audit seq its row points to: a record those rows reference
    must exist, so deleting one is caught even when it was the last.
    """
    out = Verification(records=len(records), head_seq=head[0], head_hash=head[1])
    prev_hash, expected_seq = GENESIS, 1
    seen: set[int] = set()
    for r in records:
        seq = r["seq"]
        seen.add(seq)
        if seq != expected_seq:
            if seq > expected_seq:
                out.problems.append(f"records {expected_seq}..{seq - 1} are missing (deleted)")
            else:
                out.problems.append(f"record {seq} is out of order (after {expected_seq - 1})")
        if r["prev_hash"] != prev_hash:
            out.problems.append(f"record {seq} does not follow the record before it (reordered, or one deleted)")
        if not hmac.compare_digest(record_hash(key, r), r["hash"]):
            out.problems.append(f"record {seq} was modified after it was written (its hash does not match)")
        prev_hash, expected_seq = r["hash"], seq + 1
    last_seq = records[-1]["seq"] if records else 0
    if head[0] != last_seq or head[1] != prev_hash:
        if head[0] > last_seq:
            out.problems.append(f"the chain ends at record {last_seq} but its head says {head[0]}: the last "
                                f"{head[0] - last_seq} record(s) were deleted")
        else:
            out.problems.append(f"the chain's head (record {head[0]}) does not match its last record ({last_seq})")
    for rec_id, seq in sorted((anchors or {}).items()):
        if seq and seq not in seen:
            out.problems.append(f"recommendation {rec_id} refers to audit record {seq}, which is missing")
    return out
