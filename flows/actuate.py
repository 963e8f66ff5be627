"""Actuate flow: dry-run or apply the open recommendations through the actuator (automation).

Thin: the work is `aiops.actuator.automation`. Whether anything is applied is the actuator's decision (mode, the
automation's role, guardrails), never this flow's.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from aiops.actuator.automation import act_on_open
from aiops.settings import load_settings


class ActuateParams(BaseModel):
    """Which open recommendations to act on, and how."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] | None = Field(None, description="only recommendations from these producers (e.g. prescale)")
    dry_run: bool | None = Field(None, description="force a dry-run; default: follow actuator.mode")
    config_file: str | None = Field(None, description="settings file (TOML/YAML); default: AIOPS_CONFIG")


@flow(name="actuate", log_prints=True)
def actuate(params: ActuateParams = ActuateParams()) -> list[dict]:
    logger = get_run_logger()
    settings = load_settings(params.config_file)

    def log(r: dict) -> None:
        level = logger.info if r["exit_code"] == 0 else logger.warning
        level("recommendation %s %s: %s (%s)", r["id"], r["target"], r["outcome"], r["reason"])

    results = act_on_open(settings, sources=tuple(params.sources) if params.sources else None,
                          dry_run=params.dry_run, on_result=log)
    logger.info("%d recommendation(s): %s", len(results),
                ", ".join(f"{o} {sum(r['outcome'] == o for r in results)}" for o in sorted({r["outcome"]
                                                                                           for r in results})) or "-")
    return results
