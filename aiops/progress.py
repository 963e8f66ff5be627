"""Progress of long work, reported by plain functions and shown by whoever listens.

Functions and flow tasks call `report(...)`; the CLI subscribes a progress bar, a notebook may subscribe a
print. With no listener a report costs a function call. Process-local by design: a flow run in another
process shows its progress through Prefect's logs instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int, str], None]  # (task, done, total, message)
_listeners: list[Listener] = []


def report(task: str, done: int, total: int, message: str = "") -> None:
    for listener in list(_listeners):
        listener(task, done, total, message)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
