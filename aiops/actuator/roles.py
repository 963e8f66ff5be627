"""Who is acting, in which role, and whether that role may take an action.

Identity comes from settings (`actuator.user`) or, by default, the kubeconfig's current context (its user
name); the role from `actuator.role`, else `actuator.role_bindings` (by user, then by `context:<name>`), else
`actuator.default_role` (viewer). An unknown identity can therefore read and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from aiops.actuator.policy import Action, ActuatorSettings, Role


@dataclass(frozen=True)
class Caller:
    user: str
    role: Role
    source: str  # how the role was found: "settings", "binding user:<u>", "binding context:<c>", "default"

    def may(self, action: Action) -> bool:
        return self.role.rank >= action.least_role.rank


def kubeconfig_identity(path: Path, context: str | None = None) -> tuple[str | None, str | None]:
    """(user, context) named by a kubeconfig's current (or given) context; (None, None) when it cannot be read."""
    try:
        doc = yaml.safe_load(path.expanduser().read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None, None
    name = context or doc.get("current-context")
    for ctx in doc.get("contexts") or []:
        if isinstance(ctx, dict) and ctx.get("name") == name:
            return (ctx.get("context") or {}).get("user"), name
    return None, name


def resolve_caller(settings: ActuatorSettings, kubeconfig: Path, context: str | None = None) -> Caller:
    kc_user, kc_context = kubeconfig_identity(kubeconfig, context)
    user = settings.user or kc_user or "unknown"
    if settings.role is not None:
        return Caller(user, settings.role, "settings")
    if user in settings.role_bindings:
        return Caller(user, settings.role_bindings[user], f"binding user:{user}")
    if kc_context and f"context:{kc_context}" in settings.role_bindings:
        return Caller(user, settings.role_bindings[f"context:{kc_context}"], f"binding context:{kc_context}")
    return Caller(user, settings.default_role, "default")


def role_table() -> list[dict[str, str]]:
    """Each action with the least role allowed to take it (the README's table is generated from this)."""
    return [{"action": a.value, "least role": a.least_role.value,
             **{r.value: ("yes" if r.rank >= a.least_role.rank else "no") for r in Role}} for a in Action]
