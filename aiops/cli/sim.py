"""`aiops sim ...`: the simulated cluster on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aiops.cli.common import EXIT_FAILED, ConfigOption, settings_or_exit

app = typer.Typer(help="The simulated cluster: serve its Kubernetes API, simulate to files.", no_args_is_help=True)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default: the API has no auth)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on; 0 picks a free one")] = 0,
    kubeconfig: Annotated[
        Optional[Path], typer.Option("--kubeconfig", help="kubeconfig to write (default <data_dir>/state/kubeconfig)")
    ] = None,
    speed: Annotated[float, typer.Option(min=0, help="simulated seconds per wall-clock second; 0 freezes the clock")]
    = 1.0,
    history_hours: Annotated[
        float, typer.Option(min=0, help="hours of simulated past to run before serving, so the cluster has a history")
    ] = 24.0,
) -> None:
    """Serve the simulated cluster's Kubernetes API (kubectl and the kubernetes client work against it)."""
    import signal
    from datetime import timedelta

    from aiops.errors import AiopsError
    from aiops.sim.apiserver import ApiServer
    from aiops.sim.generate import build_cluster
    from aiops.sim.kubeconfig import write_kubeconfig
    from aiops.sim.live import LiveCluster

    settings = settings_or_exit(config)
    spec = build_cluster(settings.sim, cluster_name=settings.cluster_name)
    typer.echo(f"simulating {len(spec.workloads)} workloads in {len(spec.namespaces)} namespaces; "
               f"fast-forwarding {history_hours:g} h of history ...", err=True)
    try:
        live = LiveCluster(spec, step_s=settings.sim.step_seconds, seed=settings.sim.seed, speed=speed,
                           history=timedelta(hours=history_hours))
        server = ApiServer(live, host=host, port=port, cluster=spec.name)
    except AiopsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_FAILED) from None
    path = write_kubeconfig(kubeconfig or settings.state_dir / "kubeconfig", server.url, cluster=spec.name)
    typer.echo(f"Kubernetes API of simulated cluster {spec.name!r} at {server.url} (speed {speed:g}x)")
    typer.echo(f"export KUBECONFIG={path}")
    typer.echo("Ctrl-C to stop", err=True)

    def _stopped(signum: int, _frame: object) -> None:
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: end cleanly then
        typer.echo(f"stopped ({signal.Signals(signum).name})", err=True)
        raise typer.Exit(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    server.serve_forever()
