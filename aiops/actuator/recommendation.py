"""Recommendations: a typed change to one named object, with its reason, evidence, expected effect and state.

Planners (pre-scaling, the tuner, the cost optimiser) and people (`aiops propose -f`) produce them; only the
actuator acts on them. A recommendation is a value: its fields never change once proposed, only its state does
(kept by the store, each transition with an audit record).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationInfo, field_validator, model_serializer,
    model_validator,
)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class State(str, Enum):
    pending = "pending"
    dry_run_ok = "dry-run-ok"
    applying = "applying"  # transient: the write is under way (an intent, reconciled on restart if we die)
    applied = "applied"
    rejected = "rejected"
    rolled_back = "rolled-back"
    superseded = "superseded"  # a newer proposal from the same source for the same object and kind of change


OPEN_STATES = (State.pending, State.dry_run_ok)


class _Value(BaseModel):
    # no inf/NaN: JSON cannot hold them, so a stored recommendation would silently differ from the proposed one
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Target(_Value):
    """The object a change is made to."""

    cluster: str = Field(..., pattern=DNS_LABEL, description="cluster name (settings.cluster_name of the source)")
    namespace: str = Field(..., pattern=DNS_LABEL)
    kind: Literal["Deployment", "HorizontalPodAutoscaler", "MachineDeployment"]
    name: str = Field(..., pattern=DNS_NAME, max_length=253)
    container: str | None = Field(None, pattern=DNS_LABEL, description="for resource changes: the container")

    def __str__(self) -> str:
        c = f"[{self.container}]" if self.container else ""
        return f"{self.kind.lower()}/{self.name}{c} -n {self.namespace} ({self.cluster})"

    @property
    def object_key(self) -> str:
        """The object (not the container): what rate limits and concurrency are about."""
        return f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"


class ReplicasChange(_Value):
    """Set a Deployment's spec.replicas."""

    type: Literal["replicas"] = "replicas"
    replicas: int = Field(..., ge=0)


MAX_POLICIES = 4


class HPAPolicy(_Value):
    """One HPA scaling policy (autoscaling/v2 `HPAScalingPolicy`): at most `value` pods, or `value` percent of the
    current replicas, added (scale-up) or removed (scale-down) per `period_s` seconds."""

    type: Literal["Pods", "Percent"]
    value: int = Field(..., gt=0, description="pods, or percent of the current replicas")
    period_s: int = Field(..., ge=1, le=1800, description="the window the limit applies to (periodSeconds)")

    def __str__(self) -> str:
        return f"{self.type} {self.value}{'%' if self.type == 'Percent' else ''}/{self.period_s}s"


SelectPolicy = Literal["Max", "Min", "Disabled"]
# the HPA change's policy fields (added after the others: left out of its dump when unset, see `_compact`)
BEHAVIOR_FIELDS = ("scale_up_policies", "scale_down_policies", "scale_up_select", "scale_down_select")


class HPAChange(_Value):
    """Set fields of a HorizontalPodAutoscaler's spec (autoscaling/v2); unset fields stay as they are.

    The policies of a direction are replaced whole (as a JSON merge patch replaces a list); the select policy says
    which of them wins (`Max`: the largest change, `Min`: the smallest, `Disabled`: no scaling in that direction).
    """

    type: Literal["hpa"] = "hpa"
    min_replicas: int | None = Field(None, ge=1)
    max_replicas: int | None = Field(None, ge=1)
    target_cpu_utilization: int | None = Field(None, ge=1, le=1000, description="percent of the CPU request")
    scale_up_stabilization_s: int | None = Field(None, ge=0, le=3600)
    scale_down_stabilization_s: int | None = Field(None, ge=0, le=3600)
    scale_up_policies: tuple[HPAPolicy, ...] | None = Field(
        None, description=f"behavior.scaleUp.policies: 1 to {MAX_POLICIES}, replacing the current ones")
    scale_down_policies: tuple[HPAPolicy, ...] | None = Field(
        None, description=f"behavior.scaleDown.policies: 1 to {MAX_POLICIES}, replacing the current ones")
    scale_up_select: SelectPolicy | None = Field(None, description="behavior.scaleUp.selectPolicy")
    scale_down_select: SelectPolicy | None = Field(None, description="behavior.scaleDown.selectPolicy")

    @field_validator("scale_up_policies", "scale_down_policies")
    @classmethod
    def _policy_count(cls, v: tuple[HPAPolicy, ...] | None, info: ValidationInfo) -> tuple[HPAPolicy, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError(f"{info.field_name} is empty: Kubernetes needs at least one policy per direction; "
                             "leave it unset (null) to keep the current policies")
        if len(v) > MAX_POLICIES:
            raise ValueError(f"{info.field_name} has {len(v)} policies, at most {MAX_POLICIES} are accepted: "
                             "keep the ones that bind (e.g. one Percent and one Pods policy)")
        return v

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # unset behavior fields are left out, so an HPA change made before they existed dumps (and fingerprints)
        # exactly as it did: resubmitting it stays a no-op
        out = handler(self)
        for k in BEHAVIOR_FIELDS:
            if out.get(k, 0) is None:
                del out[k]
        return out

    @model_validator(mode="after")
    def _something(self) -> "HPAChange":
        if all(v is None for k, v in self if k != "type"):
            raise ValueError("an HPA change must set at least one field")
        if self.min_replicas is not None and self.max_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) above max_replicas ({self.max_replicas})")
        return self


class ResourcesChange(_Value):
    """Set a container's requests and limits: CPU in cores, memory in bytes; unset fields stay as they are."""

    type: Literal["resources"] = "resources"
    cpu_request: float | None = Field(None, gt=0)
    cpu_limit: float | None = Field(None, gt=0)
    memory_request: float | None = Field(None, ge=1, description="bytes")
    memory_limit: float | None = Field(None, ge=1, description="bytes")

    @model_validator(mode="after")
    def _something(self) -> "ResourcesChange":
        if all(v is None for k, v in self if k != "type"):
            raise ValueError("a resources change must set at least one of cpu/memory request/limit")
        for r in ("cpu", "memory"):
            req, lim = getattr(self, f"{r}_request"), getattr(self, f"{r}_limit")
            if req is not None and lim is not None and req > lim:
                raise ValueError(f"{r}_request ({req}) above {r}_limit ({lim})")
        return self


class NodePoolChange(_Value):
    """Set a node pool's size bounds (the cluster-autoscaler's min and max; equal values pin the size)."""

    type: Literal["node_pool"] = "node_pool"
    min_nodes: int | None = Field(None, ge=0)
    max_nodes: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _something(self) -> "NodePoolChange":
        if self.min_nodes is None and self.max_nodes is None:
            raise ValueError("a node pool change must set min_nodes or max_nodes")
        if self.min_nodes is not None and self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise ValueError(f"min_nodes ({self.min_nodes}) above max_nodes ({self.max_nodes})")
        return self


Change = Annotated[Union[ReplicasChange, HPAChange, ResourcesChange, NodePoolChange], Field(discriminator="type")]
_KIND_OF = {"replicas": "Deployment", "resources": "Deployment", "hpa": "HorizontalPodAutoscaler",
            "node_pool": "MachineDeployment"}


class Evidence(_Value):
    """Why the producer believes in the change: the model (name and registry version) or optimiser, and its numbers."""

    source: str = Field(..., min_length=1, description="producer: prescale, tune, cost, a person's name, ...")
    model: str | None = Field(None, description="registered model name")
    model_version: str | None = Field(None, description="registered model version")
    details: dict[str, Any] = Field(default_factory=dict, description="forecast quantiles, optimiser result, ...")


class Proposal(_Value):
    """What a producer submits: everything but the id, state and times the store assigns."""

    target: Target
    change: Change
    reason: str = Field(..., min_length=1, max_length=2000)
    evidence: Evidence
    expected_effect: str = Field("", max_length=2000, description="e.g. 'p99 latency stays under the SLO at 14:00'")
    run_id: str | None = Field(None, description="the producing run; with it, resubmitting is a no-op")

    @model_validator(mode="after")
    def _kind_fits(self) -> "Proposal":
        want = _KIND_OF[self.change.type]
        if self.target.kind != want:
            raise ValueError(f"a {self.change.type} change applies to a {want}, not a {self.target.kind}")
        if self.change.type == "resources" and not self.target.container:
            raise ValueError("a resources change needs target.container")
        return self

    def fingerprint(self) -> str:
        """Identity of the proposal for idempotent submission: same run, target and change, same fingerprint."""
        doc = {"run": self.run_id, "target": self.target.model_dump(mode="json"),
               "change": self.change.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


class Recommendation(Proposal):
    """A stored proposal: its id, state and times."""

    id: int
    state: State
    created_at: datetime
    updated_at: datetime
    applied_audit_seq: int | None = Field(None, description="the audit record of the apply (what rollback undoes)")
