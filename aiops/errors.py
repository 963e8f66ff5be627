"""The small exception hierarchy every part of aiops raises from.

Messages name the input, say what was expected and what was received, and suggest a fix
(STYLE.md principle 14). Callers catch `AiopsError` at the flow or CLI boundary and log once.
"""

from __future__ import annotations


class AiopsError(Exception):
    """Base of every error aiops raises on purpose."""


class SettingsError(AiopsError):
    """A setting has a bad value; raised at start-up, before any work."""


class SchemaError(AiopsError):
    """A frame or document does not have the columns, types or values its contract requires."""


class UnknownNameError(AiopsError, KeyError):
    """A name (metric, model, workload, source) is not one of the known ones."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(self.known))}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


class SourceError(AiopsError):
    """A metric source (simulator, Prometheus, Kubernetes) failed or answered something unusable."""


class ValidationFailed(AiopsError):
    """A batch failed validation at the door; it was quarantined, not stored."""


class StoreError(AiopsError):
    """The operational data store could not read or write."""


class ActuatorError(AiopsError):
    """The actuator could not act on a recommendation; `exit_code` tells scripts which kind of refusal it was."""

    exit_code = 1


class Forbidden(ActuatorError):
    """The caller's role does not allow the action (audited)."""

    exit_code = 3


class Blocked(ActuatorError):
    """A guardrail, the mode or the recommendation's state stopped the change (audited)."""

    exit_code = 4


class Conflict(ActuatorError):
    """The object or the recommendation changed under us; nothing was overwritten. Re-read and retry."""

    exit_code = 5


class AuditBroken(ActuatorError):
    """The audit chain does not verify: a record was edited, deleted or reordered."""

    exit_code = 6


class InfeasibleBudget(SettingsError):
    """A namespace budget or quota (a setting) cannot hold its workloads at their risk targets and memory margins;
    the fix is a setting too: raise the limit or loosen a target (a limit is never dropped silently)."""
