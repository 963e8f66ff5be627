"""The actuator for automation (flows, notebooks): propose many recommendations and act on the open ones.

Each recommendation is handled on its own: a refusal (role, guardrail, conflict) is a result with its exit code
and reason, not an exception that stops the others. The automation's identity and role come from the settings
like anyone's (e.g. `actuator.user = "aiops-prescale"` bound to operator), so its actions are audited as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiops.actuator.actuator import Actuator
from aiops.actuator.recommendation import OPEN_STATES, Proposal, Recommendation
from aiops.errors import ActuatorError, UnknownNameError
from aiops.settings import Settings

Result = dict[str, Any]


def _act(act: Actuator, rec: Recommendation, dry_run: bool) -> Result:
    base = {"id": rec.id, "target": str(rec.target), "change": rec.change.model_dump(mode="json")}
    try:
        o = act.apply(rec.id, dry_run=dry_run)
    except (ActuatorError, UnknownNameError) as exc:
        return {**base, "outcome": type(exc).__name__.lower(), "exit_code": getattr(exc, "exit_code", 2),
                "state": act.store.get(rec.id).state.value, "reason": str(exc)}
    return {**base, "outcome": o.outcome, "exit_code": 0, "state": o.state, "reason": o.reason,
            "before": o.before, "after": o.after}


def propose_all(settings: Settings, proposals: Iterable[Proposal], *, act: bool = False,
                dry_run: bool | None = None, on_result: Callable[[Result], None] | None = None,
                supersede: bool = False) -> list[Result]:
    """Propose each (a resubmission is a no-op); with `act`, dry-run or apply the new ones at once.

    `dry_run` None follows `actuator.mode` (apply mode applies, dry-run mode dry-runs). `supersede`: each new
    recommendation closes the older open ones from its source for the same object and kind of change.
    """
    dry = settings.actuator.mode != "apply" if dry_run is None else dry_run
    out: list[Result] = []
    a = Actuator.open(settings)
    try:
        for p in proposals:
            rec, created = a.propose(p, supersede=supersede)
            r = (_act(a, rec, dry) if act and created and rec.state in OPEN_STATES else
                 {"id": rec.id, "target": str(rec.target), "outcome": "proposed" if created else "exists",
                  "exit_code": 0, "state": rec.state.value, "reason": rec.reason})
            out.append(r)
            if on_result:
                on_result(r)
    finally:
        a.close()
    return out


def act_on_open(settings: Settings, *, sources: tuple[str, ...] | None = None, dry_run: bool | None = None,
                on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Dry-run or apply every open recommendation (optionally only from `sources`, e.g. ("prescale",))."""
    dry = settings.actuator.mode != "apply" if dry_run is None else dry_run
    out: list[Result] = []
    a = Actuator.open(settings)
    try:
        for rec in a.store.list(OPEN_STATES):
            if sources and rec.evidence.source not in sources:
                continue
            if dry and rec.state.value == "dry-run-ok":
                continue  # already dry-run: doing it again adds an audit record and nothing else
            r = _act(a, rec, dry)
            out.append(r)
            if on_result:
                on_result(r)
    finally:
        a.close()
    return out
