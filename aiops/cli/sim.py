"""`aiops sim ...`: the simulated cluster on its own."""

from __future__ import annotations

import typer

app = typer.Typer(help="The simulated cluster: serve its Kubernetes API, simulate to files.", no_args_is_help=True)
