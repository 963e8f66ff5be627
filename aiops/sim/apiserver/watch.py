"""Watch: a stream of ADDED/MODIFIED/DELETED events, one JSON object a line, as the apiserver sends them.

The store has no change log, so a watch polls the materialised view (cheap: cached per engine version) and
diffs it against what it last sent, by resourceVersion. `resourceVersion` unset or "0" starts with the current
objects as ADDED ("get state and start"); any other value starts from now. Streams end at `timeoutSeconds`
(clients re-watch, as with a real apiserver), or when the server stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiops.sim.apiserver.errors import bad_request

Obj = dict[str, Any]
POLL_S = 0.25
MAX_S = 1800.0


def watch_timeout(raw: str | None) -> float:
    if raw in (None, ""):
        return MAX_S
    try:
        return min(max(float(raw), 0.0), MAX_S)
    except ValueError:
        raise bad_request(f"timeoutSeconds must be a number of seconds, got {raw!r}") from None


def _line(kind: str, obj: Obj) -> bytes:
    return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()


def _key(obj: Obj) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def watch_stream(store: Any, matching: Callable[[Any], list[Obj]], *, timeout_s: float, send_initial: bool,
                 stop: threading.Event) -> Iterator[bytes]:
    """Events for the objects `matching(view)` selects, until `timeout_s` passes or `stop` is set."""
    view = store.view()
    seen = {_key(o): o for o in matching(view)}
    if send_initial:
        for obj in seen.values():
            yield _line("ADDED", obj)
    version = view.version
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        stop.wait(min(POLL_S, max(deadline - time.monotonic(), 0)))
        view = store.view()
        if view.version == version:
            continue
        version = view.version
        now = {_key(o): o for o in matching(view)}
        for k, obj in now.items():
            if k not in seen:
                yield _line("ADDED", obj)
            elif obj["metadata"].get("resourceVersion") != seen[k]["metadata"].get("resourceVersion"):
                yield _line("MODIFIED", obj)
        for k, obj in seen.items():
            if k not in now:
                yield _line("DELETED", obj)
        seen = now
