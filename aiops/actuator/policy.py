"""The actuator's settings: mode, identity and roles, where its records live, and the guardrails.

Pure pydantic (no Kubernetes or database imports) so `aiops.settings` can embed it. Roles are a guard against
mistakes and automation overreach inside aiops; the cluster's own RBAC still decides what the credentials in the
kubeconfig may do.
"""

from __future__ import annotations

from datetime import time
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MiB = 2**20
GiB = 2**30


class Role(str, Enum):
    """Who may do what, each role including the one before (table in README, Actuator section)."""

    viewer = "viewer"  # read recommendations, audit, status and reports
    developer = "developer"  # + propose recommendations and run dry-runs
    operator = "operator"  # + apply, reject and roll back changes; automation
    admin = "admin"  # + platform configuration: freeze and unfreeze all changes

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class Action(str, Enum):
    """Everything the actuator can be asked to do, with the least role allowed to do it."""

    read = "read"
    propose = "propose"
    dry_run = "dry-run"
    apply = "apply"
    reject = "reject"
    rollback = "rollback"
    configure = "configure"

    @property
    def least_role(self) -> Role:
        return _LEAST_ROLE[self]


_LEAST_ROLE = {Action.read: Role.viewer, Action.propose: Role.developer, Action.dry_run: Role.developer,
               Action.apply: Role.operator, Action.reject: Role.operator, Action.rollback: Role.operator,
               Action.configure: Role.admin}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeWindow(_Frozen):
    """A weekly window in which changes may be applied, e.g. weekdays 09:00-17:00 Europe/Berlin."""

    days: tuple[Weekday, ...] = Field(WEEKDAYS, min_length=1, description="days of the week the window opens")
    start: time = Field(time(0, 0), description="opening time (local to `timezone`)")
    end: time = Field(time(23, 59, 59), description="closing time; before `start` means the window spans midnight")
    timezone: str = Field("UTC", description="IANA time zone of start and end")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. UTC, Europe/Berlin)") from None
        return v


class Guardrails(_Frozen):
    """Limits every change must pass; any error while checking one blocks the change (fail closed)."""

    allowed_namespaces: tuple[str, ...] = Field(
        ("*",), description="namespaces (glob patterns) the actuator may change; empty: none")
    denied_namespaces: tuple[str, ...] = Field(
        ("kube-system", "kube-public", "kube-node-lease"), description="namespaces never changed, even if allowed")
    opt_in_annotation: str = Field(
        "aiops.dev/actuate", min_length=1,
        description="annotation a workload needs, with value \"true\", before the actuator changes it")
    require_opt_in: bool = Field(True, description="refuse workloads without the opt-in annotation")
    max_step_up: float = Field(1.0, gt=0, description="largest relative increase per change (1.0: at most double)")
    max_step_down: float = Field(0.5, gt=0, lt=1, description="largest relative decrease per change (0.5: at most halve)")
    min_relative_change: float = Field(
        0.05, ge=0, lt=1, description="changes smaller than this relative step are skipped as insignificant")
    min_replicas: int = Field(1, ge=0, description="no change sets replicas (or HPA minReplicas) below this")
    max_replicas: int = Field(50, ge=1, description="no change sets replicas (or HPA maxReplicas) above this")
    cpu_request_min: float = Field(0.01, gt=0, description="CPU request floor, cores")
    cpu_request_max: float = Field(16.0, gt=0, description="CPU request ceiling, cores")
    memory_request_min: float = Field(32 * MiB, gt=0, description="memory request floor, bytes")
    memory_request_max: float = Field(64 * GiB, gt=0, description="memory request ceiling, bytes")
    min_nodes: int = Field(0, ge=0, description="no change sets a node pool's size below this")
    max_nodes: int = Field(100, ge=1, description="no change sets a node pool's size above this")
    change_windows: tuple[ChangeWindow, ...] = Field(
        (), description="when changes may be applied; empty: at any time")
    rate_limit_changes: int = Field(3, ge=0, description="changes applied to one object per rate-limit period")
    rate_limit_minutes: float = Field(60.0, gt=0, description="the rate-limit period in minutes")

    @model_validator(mode="after")
    def _ordered(self) -> "Guardrails":
        for lo, hi in (("min_replicas", "max_replicas"), ("cpu_request_min", "cpu_request_max"),
                       ("memory_request_min", "memory_request_max"), ("min_nodes", "max_nodes")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) must not exceed {hi} ({getattr(self, hi)})")
        return self


class ActuatorSettings(_Frozen):
    """How the one write path to a cluster behaves (`AIOPS_ACTUATOR__*`)."""

    mode: Literal["dry-run", "apply"] = Field(
        "dry-run", description="apply: changes that pass every check are applied; dry-run: they are only dry-run")
    user: str | None = Field(None, description="who acts; default: the kubeconfig context's user")
    role: Role | None = Field(None, description="role of `user`; default: looked up in role_bindings")
    role_bindings: dict[str, Role] = Field(
        default_factory=dict,
        description="identity -> role; keys are user names, or `context:<name>` for a kubeconfig context")
    default_role: Role = Field(Role.viewer, description="role of an identity with no binding")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the recommendation and audit store (postgresql+psycopg://...); "
        "unset: SQLite at <data_dir>/state/actuator.db")
    audit_key_file: Path | None = Field(
        None, description="file with the secret that signs audit records (HMAC); unset: <data_dir>/state/audit.key, "
        "created on first use")
    request_timeout_s: float = Field(30.0, gt=0, le=600, description="timeout of one Kubernetes API request")
    guardrails: Guardrails = Field(default_factory=Guardrails)
