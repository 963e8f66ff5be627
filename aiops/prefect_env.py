"""Point Prefect at the right backend before it is imported.

Embedded default: no API URL, so Prefect runs flows against a temporary local server on SQLite under
`<data_dir>/prefect` (the same database `aiops ui prefect` later opens). With `prefect_api_url` set, flows
report to that server (SQLite or Postgres behind it). Prefect reads these variables when it is first
imported, so entry points call this first; it does not import Prefect itself.
"""

from __future__ import annotations

import os

from aiops.settings import Settings


def prefect_environment(settings: Settings) -> dict[str, str]:
    env = {
        "PREFECT_HOME": str(settings.prefect_home.resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        # flows already log per window; keep task-run chatter out of the terminal
        "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
    }
    if settings.prefect_api_url is not None:
        env["PREFECT_API_URL"] = str(settings.prefect_api_url).rstrip("/")
    return env


def configure_prefect(settings: Settings) -> None:
    """Set Prefect's environment for this process (and the processes it starts)."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    env = prefect_environment(settings)
    if "PREFECT_API_URL" not in env:
        os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(env)
