"""The data-plane commands: demo, ingest, features, status."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
