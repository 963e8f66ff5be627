"""The data-plane commands: demo, ingest, features, status, settings, ui."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from aiops.cli.common import EXIT_FAILED, EXIT_OK, ConfigOption, emit, fail, settings_or_exit
from aiops.errors import AiopsError

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table | json | yaml")]


def _env_overrides(**values) -> None:
    """CLI options become AIOPS_* variables, so the flows (which load settings themselves) see them too."""
    for key, value in values.items():
        if value is not None:
            os.environ["AIOPS_" + key.upper()] = str(value)


def _run_flow(settings, name: str, **params):
    """Run one of the flows in this process against the configured Prefect backend, with a progress bar."""
    from aiops.cli.progress_bar import progress_bar
    from aiops.prefect_env import configure_prefect

    configure_prefect(settings)
    # the CLI is the entry point that starts flows: the one place allowed to import them (pyproject import rules)
    if name == "pipeline":
        from flows.pipeline import PipelineParams as P, pipeline as f
    elif name == "ingest":
        from flows.ingest import IngestParams as P, ingest as f
    elif name == "features":
        from flows.features import FeaturesParams as P, features as f
    else:  # pragma: no cover - programming error
        raise ValueError(name)
    with progress_bar():
        return f(P(**params))


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        config: ConfigOption = None,
        days: Annotated[Optional[float], typer.Option(help="days of simulated history")] = None,
        workloads: Annotated[Optional[int], typer.Option(help="number of simulated workloads")] = None,
        seed: Annotated[Optional[int], typer.Option(help="simulation seed")] = None,
        data_dir: Annotated[Optional[Path], typer.Option(help="where the data lands (default ./data)")] = None,
    ) -> None:
        """Simulate a small cluster with incidents, run ingest and features as Prefect flows, print a summary."""
        _env_overrides(sim__days=days, sim__workloads=workloads, sim__seed=seed, data_dir=data_dir)
        settings = settings_or_exit(config)
        if settings.source != "simulator":
            typer.secho("the demo runs on the simulated cluster; unset AIOPS_SOURCE", fg="red", err=True)
            raise typer.Exit(2)
        if settings.actuator.role is None and not settings.actuator.role_bindings:
            # the demo proposes and dry-runs its pre-scaling and tuning (actuator.mode decides; dry-run by default):
            # a developer may, the default viewer may not
            _env_overrides(actuator__role="developer")
            settings = settings_or_exit(config)
        from aiops.summary import print_demo_summary

        t0 = time.monotonic()
        typer.echo(
            f"aiops demo: simulating {settings.sim.workloads} workloads in {settings.sim.namespaces} namespaces "
            f"over {settings.sim.days:g} days (seed {settings.sim.seed}); data in {settings.data_dir.resolve()}",
            err=True,
        )
        try:
            result = _run_flow(settings, "pipeline", config_file=str(config) if config else None)
        except AiopsError as exc:
            fail(exc)
        print_demo_summary(settings, result, elapsed_s=time.monotonic() - t0)

    @app.command()
    def ingest(
        config: ConfigOption = None,
        start: Annotated[Optional[datetime], typer.Option(help="first instant (UTC)")] = None,
        end: Annotated[Optional[datetime], typer.Option(help="up to here (UTC, exclusive)")] = None,
        metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="metric (repeatable)")] = None,
        force: Annotated[bool, typer.Option(help="re-ingest windows already stored")] = False,
        output: OutputOption = "table",
    ) -> None:
        """Ingest metrics window by window (resumes: stored windows are skipped)."""
        settings = settings_or_exit(config)
        try:
            result = _run_flow(settings, "ingest", start=start, end=end, metrics=metric, force=force,
                               config_file=str(config) if config else None)
        except AiopsError as exc:
            fail(exc)
        emit(result, output)
        raise typer.Exit(EXIT_FAILED if result.get("quarantined") else EXIT_OK)

    @app.command()
    def features(config: ConfigOption = None, output: OutputOption = "table") -> None:
        """Build the feature tables from the stored raw series."""
        settings = settings_or_exit(config)
        try:
            result = _run_flow(settings, "features", config_file=str(config) if config else None)
        except AiopsError as exc:
            fail(exc)
        emit(result, output)

    @app.command()
    def status(config: ConfigOption = None, output: OutputOption = "table") -> None:
        """The data plane (series, rows, windows, gaps, quarantined batches, feature tables) and the actuator
        (who you are to it, mode, cluster, recommendations, freeze, audit head)."""
        settings = settings_or_exit(config)
        from aiops.cli.actions import actuator_status, print_actuator_status
        from aiops.summary import data_plane_status, print_status

        try:
            st = data_plane_status(settings)
        except AiopsError as exc:
            fail(exc)
        act = actuator_status(settings)
        if output == "table":
            print_status(settings, st)
            print_actuator_status(act)
        else:
            emit({**st, "actuator": act}, output)

    @app.command("settings")
    def show_settings(config: ConfigOption = None, output: OutputOption = "yaml") -> None:
        """Print the resolved settings (file, environment, defaults)."""
        settings = settings_or_exit(config)
        emit(json.loads(settings.model_dump_json()), output)

    @app.command()
    def ui(
        which: Annotated[str, typer.Argument(
            help="prefect (the flow runs of this data directory) | mlflow (its runs, models and aliases)")] = "prefect",
        config: ConfigOption = None,
        port: Annotated[Optional[int], typer.Option(
            help="port on 127.0.0.1 (default: 4200 for prefect, 5000 for mlflow)")] = None,
    ) -> None:
        """Open a UI on the embedded store: `aiops ui prefect` serves the Prefect UI of this data directory,
        `aiops ui mlflow` the MLflow UI of its tracking store and model registry."""
        settings = settings_or_exit(config)
        if which == "prefect":
            raise typer.Exit(_serve_prefect(settings, port or 4200))
        if which == "mlflow":
            raise typer.Exit(_serve_mlflow(settings, port or 5000))
        typer.secho(f"unknown UI {which!r}; known: prefect, mlflow", fg="red", err=True)
        raise typer.Exit(2)


def _serve_prefect(settings, port: int) -> int:
    from aiops.prefect_env import prefect_environment

    settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect does not create its home's parents
    env = {**os.environ, **prefect_environment(settings)}
    env.pop("PREFECT_API_URL", None)
    typer.echo(f"Prefect UI: http://127.0.0.1:{port}  (Ctrl-C to stop)", err=True)
    prefect = Path(sys.executable).with_name("prefect")
    return _serve([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env)


def _serve_mlflow(settings, port: int) -> int:
    uri = settings.resolved_mlflow_uri
    if uri.startswith(("http://", "https://")):
        # a tracking server already serves the UI; starting another on its store would bypass its artifact proxy
        typer.echo(f"MLflow UI: {uri}  (the tracking server in the settings serves it)", err=True)
        return EXIT_OK
    if uri.startswith("sqlite:"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # one worker and no job runner: the default starts ~10 processes, too many beside the flows on a small machine
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if settings.resolved_mlflow_artifacts:
        cmd[4:4] = ["--default-artifact-root", settings.resolved_mlflow_artifacts]
    typer.echo(f"MLflow UI: http://127.0.0.1:{port}  (store {uri}; Ctrl-C to stop)", err=True)
    return _serve(cmd, env)


def _serve(cmd: list[str], env: dict[str, str]) -> int:
    """Run a UI server in the foreground; stopping this command (Ctrl-C or SIGTERM) stops the server too."""
    import signal

    proc = subprocess.Popen(cmd, env=env)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)

