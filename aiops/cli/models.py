"""The model commands: train, detect, models (the champions and their scores)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from aiops.cli.common import ConfigOption, emit, fail, settings_or_exit
from aiops.errors import AiopsError

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table | json | yaml")]


def _run(settings, name: str, **params):
    from aiops.cli.progress_bar import progress_bar
    from aiops.prefect_env import configure_prefect

    configure_prefect(settings)
    # the CLI is the entry point that starts flows (pyproject import rules allow it here)
    if name == "train":
        from flows.train import TrainParams as P, train as f
    else:
        from flows.detect import DetectParams as P, detect as f
    with progress_bar():
        return f(P(**params))


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: ConfigOption = None,
        task: Annotated[Optional[list[str]], typer.Option(help="task name (repeatable); default: every task")] = None,
        candidate: Annotated[Optional[list[str]], typer.Option(help="candidate model (repeatable)")] = None,
        output: OutputOption = "table",
    ) -> None:
        """Train the candidates of each task, judge them on the holdout, register the best, promote if it wins."""
        settings = settings_or_exit(config)
        try:
            res = _run(settings, "train", tasks=task, candidates=candidate,
                       config_file=str(config) if config else None)
        except AiopsError as exc:
            fail(exc)
        if output == "table":
            from aiops.summary_models import print_training

            print_training(res)
        else:
            emit(res, output)

    @app.command()
    def detect(config: ConfigOption = None, output: OutputOption = "table") -> None:
        """Score the data stored since the last run with the champion detectors; store the anomalies."""
        settings = settings_or_exit(config)
        try:
            res = _run(settings, "detect", config_file=str(config) if config else None)
        except AiopsError as exc:
            fail(exc)
        if output == "table":
            from aiops.summary_models import print_detection

            print_detection(res)
        else:
            emit(res, output)

    @app.command("models")
    def models_cmd(config: ConfigOption = None, output: OutputOption = "table") -> None:
        """The registered models: champion and challenger of each task, with their holdout scores."""
        settings = settings_or_exit(config)
        from aiops.summary_models import model_status, print_models

        status = model_status(settings)
        if output == "table":
            print_models(settings, status)
        else:
            emit(status, output)
