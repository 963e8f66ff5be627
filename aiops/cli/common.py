"""What every CLI command shares: the --config option, settings loading, clean errors and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from aiops.errors import AiopsError, SettingsError
from aiops.settings import Settings, load_settings

# exit codes scripts can rely on
EXIT_OK = 0
EXIT_FAILED = 1  # the work ran and failed (e.g. a validation failure, a source down)
EXIT_USAGE = 2  # bad settings or arguments

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="settings file (TOML or YAML); environment AIOPS_* overrides it"),
]


def settings_or_exit(config: Path | None, **overrides) -> Settings:
    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_USAGE) from None


def fail(exc: AiopsError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_FAILED)


def is_tty() -> bool:
    return sys.stderr.isatty()


def emit(obj, output: str) -> None:
    """Print plain data as JSON or YAML (`-o json|yaml`; a command's `table` falls back to YAML when it has none)."""
    if output == "json":
        typer.echo(json.dumps(obj, indent=2, default=str))
    elif output in ("yaml", "table"):
        import yaml

        typer.echo(yaml.safe_dump(json.loads(json.dumps(obj, default=str)), sort_keys=False))
    else:
        typer.secho(f"unknown output {output!r}; known: table, json, yaml", fg="red", err=True)
        raise typer.Exit(EXIT_USAGE)
