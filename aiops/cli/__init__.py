"""The `aiops` command. Each group lives in its own module; heavy imports happen inside commands."""

from __future__ import annotations

import typer

from aiops.cli import actions, data, models, sim

app = typer.Typer(
    name="aiops",
    help="AIOps for Kubernetes: ingest, validate, learn and act, on a simulated or a real cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sim.app, name="sim")
data.register(app)
models.register(app)
actions.register(app)

__all__ = ["app"]
