"""Which interrupted writes can be settled: a write is abandoned when no process can still be making it.

An intent record names the host and pid that wrote it. Another live process on this host may still be writing;
a dead one cannot. In this process, only the writes a thread is making right now (`in_flight`) are live, so a
write that timed out here is settled by the next command without waiting for this process to end. After
`max_age` any intent is abandoned (no write takes that long; this also covers a reused pid or another host).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

_IN_FLIGHT: set[int] = set()  # intent records whose write this process is making right now
_LOCK = threading.Lock()


@contextmanager
def in_flight(seq: int) -> Iterator[None]:
    """Mark the write of intent record `seq` as under way in this process for the duration of the block."""
    with _LOCK:
        _IN_FLIGHT.add(seq)
    try:
        yield
    finally:
        with _LOCK:
            _IN_FLIGHT.discard(seq)


def abandoned(intent: dict[str, Any], at: datetime, seq: int, max_age: timedelta) -> bool:
    """Whether the process that wrote this intent (its details: host, pid) can no longer finish it."""
    if datetime.now(timezone.utc) - at > max_age:
        return True
    if intent.get("host") == socket.gethostname() and isinstance(intent.get("pid"), int):
        if intent["pid"] == os.getpid():
            with _LOCK:
                return seq not in _IN_FLIGHT
        return not alive(intent["pid"])
    return False


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
