"""Guardrails: every limit a change must pass before it is dry-run or applied. They fail closed.

Each guard looks at one `Situation` (the change with the values it would really send, the object's current
fields, annotations, owner, the time and the recent history) and returns None to pass or the reason it blocks.
A guard that raises blocks the change too, with the error as its reason: the opposite of the VPA's capping
post-processor, which lets the uncapped value through when it fails (STYLE.md principle 9).

`permanent` guards reject the recommendation (it can never pass as proposed); the others (freeze, change window,
rate limit) only hold it: it stays open and can be applied later.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.actuator.changes import significant, wanted
from aiops.actuator.policy import WEEKDAYS, ChangeWindow, Guardrails
from aiops.actuator.recommendation import Change, HPAChange, NodePoolChange, ReplicasChange, ResourcesChange, Target


@dataclass(frozen=True)
class Situation:
    target: Target
    change: Change
    before: dict[str, Any]
    annotations: dict[str, str]  # of the workload the opt-in is read from
    now: datetime
    applied_recently: int = 0  # changes applied to the object within the rate-limit period
    hpa_owner: str | None = None  # name of the HPA that scales this deployment, if any
    frozen: str | None = None  # the admin's freeze reason
    cluster: str | None = None  # the cluster the actuator is connected to (settings.cluster_name)


@dataclass(frozen=True)
class Verdict:
    guard: str
    reason: str
    permanent: bool

    def as_dict(self) -> dict[str, Any]:
        return {"guard": self.guard, "reason": self.reason, "permanent": self.permanent}


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.verdicts

    @property
    def permanent(self) -> bool:
        return any(v.permanent for v in self.verdicts)

    def summary(self) -> str:
        return "; ".join(f"{v.guard}: {v.reason}" for v in self.verdicts)


Guard = Callable[[Guardrails, Situation], "str | None"]


def _freeze(g: Guardrails, s: Situation) -> str | None:
    return f"all changes are frozen by an admin: {s.frozen}" if s.frozen is not None else None


def _cluster(g: Guardrails, s: Situation) -> str | None:
    if s.cluster is not None and s.target.cluster != s.cluster:
        return (f"the recommendation is for cluster {s.target.cluster!r} but the actuator is connected to "
                f"{s.cluster!r} (settings.cluster_name): point AIOPS_KUBECONFIG/AIOPS_KUBE_CONTEXT and "
                "AIOPS_CLUSTER_NAME at the right cluster")
    return None


def _namespace(g: Guardrails, s: Situation) -> str | None:
    ns = s.target.namespace
    if any(fnmatch.fnmatchcase(ns, p) for p in g.denied_namespaces):
        return f"namespace {ns!r} is denied (guardrails.denied_namespaces {list(g.denied_namespaces)})"
    if not any(fnmatch.fnmatchcase(ns, p) for p in g.allowed_namespaces):
        return f"namespace {ns!r} is not in guardrails.allowed_namespaces {list(g.allowed_namespaces)}"
    return None


def _opt_in(g: Guardrails, s: Situation) -> str | None:
    if not g.require_opt_in:
        return None
    value = s.annotations.get(g.opt_in_annotation)
    if value != "true":
        got = "it is absent" if value is None else f"it is {value!r}"
        return (f"the workload has not opted in: annotation {g.opt_in_annotation}=\"true\" is required and {got} "
                f"(kubectl annotate {s.target.kind.lower()} {s.target.name} -n {s.target.namespace} "
                f"{g.opt_in_annotation}=true)")
    return None


def _owner(g: Guardrails, s: Situation) -> str | None:
    if isinstance(s.change, ReplicasChange) and s.hpa_owner:
        return (f"HorizontalPodAutoscaler {s.hpa_owner} owns this deployment's replicas and would undo the change; "
                "change the HPA's minReplicas/maxReplicas instead")
    return None


def _bounds(g: Guardrails, s: Situation) -> str | None:
    w = wanted(s.change)
    out = []

    def check(name: str, v: float, lo: float, hi: float, unit: str = "") -> None:
        if not lo <= v <= hi:
            out.append(f"{name} {v:g}{unit} outside [{lo:g}, {hi:g}]{unit}")

    if isinstance(s.change, (ReplicasChange, HPAChange)):
        for k in ("replicas", "min_replicas", "max_replicas"):
            if k in w:
                check(k, w[k], g.min_replicas, g.max_replicas)
    if isinstance(s.change, ResourcesChange):
        if "cpu_request" in w:
            check("cpu_request", w["cpu_request"], g.cpu_request_min, g.cpu_request_max, " cores")
        if "memory_request" in w:
            check("memory_request", w["memory_request"], g.memory_request_min, g.memory_request_max, " bytes")
        for r in ("cpu", "memory"):  # request above limit (new or left in place): the apiserver would refuse it
            if f"{r}_request" not in w and f"{r}_limit" not in w:
                continue
            req = w.get(f"{r}_request", s.before.get(f"{r}_request"))
            lim = w.get(f"{r}_limit", s.before.get(f"{r}_limit"))
            if req is not None and lim is not None and req > lim:
                out.append(f"{r}_request {req:g} above the {r}_limit {lim:g}")
    if isinstance(s.change, NodePoolChange):
        for k in ("min_nodes", "max_nodes"):
            if k in w:
                check(k, w[k], g.min_nodes, g.max_nodes)
        lo, hi = w.get("min_nodes", s.before.get("min_nodes")), w.get("max_nodes", s.before.get("max_nodes"))
        if lo is not None and hi is not None and lo > hi:
            out.append(f"min_nodes {lo} above max_nodes {hi}")
    if isinstance(s.change, HPAChange):
        lo = w.get("min_replicas", s.before.get("min_replicas"))
        hi = w.get("max_replicas", s.before.get("max_replicas"))
        if lo is not None and hi is not None and lo > hi:
            out.append(f"min_replicas {lo} above max_replicas {hi}")
    return "; ".join(out) or None


_SIZE_FIELDS = ("replicas", "min_replicas", "max_replicas", "cpu_request", "cpu_limit", "memory_request",
                "memory_limit", "min_nodes", "max_nodes")


def _step(g: Guardrails, s: Situation) -> str | None:
    out = []
    for k, v in wanted(s.change).items():
        old = s.before.get(k)
        if k not in _SIZE_FIELDS or old is None:
            continue
        hi, lo = old * (1 + g.max_step_up), old * (1 - g.max_step_down)
        if old == 0 and v > 0 and k in ("replicas", "min_replicas", "min_nodes"):
            hi = 1  # from zero, one step means one
        if v > hi + 1e-9:
            out.append(f"{k} {old:g} -> {v:g} is a step of +{_pct(v, old)}, above max_step_up "
                       f"{g.max_step_up:.0%} (at most {hi:g})")
        elif v < lo - 1e-9:
            out.append(f"{k} {old:g} -> {v:g} is a step of -{_pct(v, old)}, above max_step_down "
                       f"{g.max_step_down:.0%} (at least {lo:g})")
    return "; ".join(out) or None


def _pct(v: float, old: float) -> str:
    return "inf" if old == 0 else f"{abs(v / old - 1):.0%}"


def _significant(g: Guardrails, s: Situation) -> str | None:
    step = significant(s.change, s.before)
    if step < g.min_relative_change:
        return (f"the change is too small to be worth making: largest step {step:.1%} < min_relative_change "
                f"{g.min_relative_change:.0%}")
    return None


def in_window(w: ChangeWindow, now: datetime) -> bool:
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(w.timezone))
    day, t = WEEKDAYS[local.weekday()], local.timetz().replace(tzinfo=None)
    if w.start <= w.end:
        return day in w.days and w.start <= t <= w.end
    # spans midnight: the part after midnight belongs to the previous day's window
    prev = WEEKDAYS[(local.weekday() - 1) % 7]
    return (day in w.days and t >= w.start) or (prev in w.days and t <= w.end)


def _window(g: Guardrails, s: Situation) -> str | None:
    if not g.change_windows or any(in_window(w, s.now) for w in g.change_windows):
        return None
    shown = ", ".join(f"{'/'.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M} {w.timezone}" for w in g.change_windows)
    return f"{s.now:%a %H:%M} UTC is outside every change window ({shown})"


def _rate(g: Guardrails, s: Situation) -> str | None:
    if s.applied_recently >= g.rate_limit_changes:
        return (f"{s.applied_recently} change(s) already applied to this object in the last "
                f"{g.rate_limit_minutes:g} min (rate_limit_changes {g.rate_limit_changes})")
    return None


# (name, guard, permanent): in the order they are reported
GUARDS: tuple[tuple[str, Guard, bool], ...] = (
    ("freeze", _freeze, False),
    ("cluster", _cluster, False),  # held: the right kubeconfig context lets it through
    ("namespace", _namespace, True),
    ("opt-in", _opt_in, False),  # held, not rejected: annotating the workload lets it through
    ("owner", _owner, True),
    ("bounds", _bounds, True),
    ("max-step", _step, True),
    ("min-change", _significant, True),
    ("change-window", _window, False),
    ("rate-limit", _rate, False),
)


def check(g: Guardrails, s: Situation, *, skip: tuple[str, ...] = ()) -> Report:
    """Run every guard (except `skip`); a guard that raises blocks, naming its error."""
    report = Report()
    for name, guard, permanent in GUARDS:
        if name in skip:
            continue
        try:
            reason = guard(g, s)
        except Exception as exc:  # noqa: BLE001 - fail closed: any error in a guard blocks the change
            reason = f"the guard failed ({type(exc).__name__}: {exc}), so the change is blocked"
        if reason is None:
            report.passed.append(name)
        else:
            report.verdicts.append(Verdict(name, reason, permanent))
    return report
