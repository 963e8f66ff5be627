"""A terminal progress bar fed by `aiops.progress` reports (quiet when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aiops.progress import listening


@contextmanager
def progress_bar() -> Iterator[None]:
    console = Console(stderr=True)
    if not console.is_terminal:
        # logs already tell the story in CI and files; a bar would only add noise
        yield
        return
    with Progress(TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[message]}"), TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def listener(name: str, done: int, total: int, message: str) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, message="")
            bar.update(tasks[name], completed=done, total=total, message=message)

        with listening(listener):
            yield
