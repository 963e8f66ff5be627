"""The actuator: role check, guardrails, server-side dry-run, apply, audit and rollback of recommendations.

For each recommendation, in this order: the caller's role must allow the action; the recommendation must be open;
the object is read and every guardrail checked (fail closed); the change is dry-run on the server (`dryRun=All`)
and the server's answer must be exactly the change; only then, in `apply` mode, is it written, with the
resourceVersion read as precondition. Every decision, whatever its outcome, appends an audit record in the same
transaction as the recommendation's new state.

Before writing, the state becomes `applying` with an intent record (before, after, who, which process); if the
process dies there, `recover()` (run by every later command) reads the object and settles the state from what
the cluster really has, so state, audit and cluster agree.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiops.actuator import changes as ch
from aiops.actuator.audit import load_key
from aiops.actuator.diff import unified
from aiops.actuator.guardrails import GUARDS, Report, Situation, check
from aiops.actuator.kube import Cluster, NotFound, Refused
from aiops.actuator.policy import Action
from aiops.actuator.recovery import abandoned, in_flight
from aiops.actuator.recommendation import OPEN_STATES, Change, Proposal, Recommendation, State, Target
from aiops.actuator.roles import Caller, resolve_caller
from aiops.actuator.store import ActionStore, Entry, since
from aiops.errors import ActuatorError, Blocked, Conflict, Forbidden
from aiops.settings import Settings

CONFLICT_RETRIES = 3
ROLLBACK_GUARDS = ("freeze", "cluster", "namespace", "opt-in", "owner")  # a rollback restores a known state: no size limits


@dataclass
class Outcome:
    """What happened to one recommendation: the CLI prints it, scripts read `outcome` and the exit code."""

    recommendation: int
    outcome: str
    state: str
    reason: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    diff: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Actuator:
    """Acts for one caller on one cluster with one store. Build it with `Actuator.open(settings)`."""

    def __init__(self, settings: Settings, store: ActionStore, caller: Caller,
                 cluster_factory: Callable[[], Cluster], *, clock: Callable[[], datetime] | None = None):
        self.settings, self.store, self.caller = settings, store, caller
        self.policy = settings.actuator
        self._cluster_factory = cluster_factory
        self._cluster: Cluster | None = None
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    @classmethod
    def open(cls, settings: Settings) -> "Actuator":
        a = settings.actuator
        key = load_key(a.audit_key_file or settings.state_dir / "audit.key")
        store = ActionStore(settings.resolved_actuator_db, key)
        kubeconfig = settings.resolved_kubeconfig
        caller = resolve_caller(a, kubeconfig, settings.kube_context)
        return cls(settings, store, caller,
                   lambda: Cluster(kubeconfig, settings.kube_context, timeout_s=a.request_timeout_s))

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:  # lazily: reading recommendations needs no cluster
            self._cluster = self._cluster_factory()
        return self._cluster

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        self.store.close()

    # --- the checks every action starts with ------------------------------------------------------------------

    def _entry(self, action: str, outcome: str, reason: str, rec: Recommendation | None = None,
               target: Target | None = None, **kw: Any) -> Entry:
        t = rec.target if rec is not None else target
        return Entry(self.caller.user, self.caller.role.value, action, outcome, reason,
                     rec.id if rec is not None else None, t.object_key if t is not None else None, **kw)

    def authorize(self, action: Action, rec: Recommendation | None = None, target: Target | None = None) -> None:
        """Raise Forbidden (and audit the denial) unless the caller's role allows `action`."""
        if self.caller.may(action):
            return
        why = (f"{self.caller.user} has role {self.caller.role.value} ({self.caller.source}); {action.value} needs "
               f"{action.least_role.value} or above")
        self.store.record(self._entry(action.value, "denied", why, rec, target))
        raise Forbidden(f"forbidden: {why}")

    # --- proposing, rejecting, freezing -----------------------------------------------------------------------

    def propose(self, p: Proposal, *, supersede: bool = False) -> tuple[Recommendation, bool]:
        """Store `p` as a pending recommendation; with `supersede`, a new one closes the open recommendations from
        the same source for the same object and kind of change (a proposer replacing its own older plan)."""
        self.authorize(Action.propose, target=p.target)
        return self.store.propose(p, self.caller.user, self.caller.role.value, supersede=supersede)

    def reject(self, rec_id: int, reason: str) -> Outcome:
        rec = self.store.get(rec_id)
        self.authorize(Action.reject, rec)
        if rec.state not in OPEN_STATES:
            raise self._not_open(rec, Action.reject)
        a = self._transition(rec, OPEN_STATES, State.rejected,
                             self._entry("reject", "rejected", reason or "rejected by an operator", rec))
        return Outcome(rec.id, "rejected", State.rejected.value, a["reason"], audit_seq=a["seq"])

    def freeze(self, reason: str) -> dict[str, Any]:
        self.authorize(Action.configure)
        return self.store.set_frozen(reason, self._entry("configure", "frozen", reason))

    def unfreeze(self, reason: str = "") -> dict[str, Any]:
        self.authorize(Action.configure)
        return self.store.set_frozen(None, self._entry("configure", "unfrozen", reason or "changes allowed again"))

    def _not_open(self, rec: Recommendation, action: Action) -> Blocked:
        verb = {Action.apply: "applied", Action.dry_run: "dry-run", Action.reject: "rejected"}.get(action, action.value)
        why = f"recommendation {rec.id} is {rec.state.value}: only pending or dry-run-ok ones can be {verb}"
        self.store.record(self._entry(action.value, "blocked", why, rec))
        return Blocked(why)

    # --- apply and dry-run ------------------------------------------------------------------------------------

    def apply(self, rec_id: int, *, dry_run: bool = False) -> Outcome:
        """Dry-run (`dry_run`) or apply one recommendation; raises Forbidden, Blocked or Conflict when refused."""
        self.recover()
        rec = self.store.get(rec_id)
        action = Action.dry_run if dry_run else Action.apply
        self.authorize(action, rec)
        if rec.state not in OPEN_STATES:
            raise self._not_open(rec, action)
        if not dry_run and self.policy.mode != "apply":
            why = ("actuator.mode is dry-run, so nothing is applied: see the change with `aiops apply "
                   f"{rec.id} --dry-run`, or set AIOPS_ACTUATOR__MODE=apply")
            self.store.record(self._entry(action.value, "blocked", why, rec))
            raise Blocked(why)
        change = ch.normalise(rec.change)
        return self._write(rec, change, action, dry_run=dry_run, guards=(), from_states=OPEN_STATES,
                           done=State.applied, undone=State.pending)

    def rollback(self, rec_id: int, *, dry_run: bool = False) -> Outcome:
        """Undo an applied recommendation from its audit record, if the object still has what was applied."""
        self.recover()
        rec = self.store.get(rec_id)
        self.authorize(Action.dry_run if dry_run else Action.rollback, rec)
        if rec.state is not State.applied or rec.applied_audit_seq is None:
            why = f"recommendation {rec.id} is {rec.state.value}: only an applied one can be rolled back"
            self.store.record(self._entry("rollback", "blocked", why, rec))
            raise Blocked(why)
        if not dry_run and self.policy.mode != "apply":
            why = "actuator.mode is dry-run, so nothing is rolled back: set AIOPS_ACTUATOR__MODE=apply"
            self.store.record(self._entry("rollback", "blocked", why, rec))
            raise Blocked(why)
        applied = self.store.audit_record(rec.applied_audit_seq, verified=True)
        try:
            back = ch.inverse(rec.change, applied["before"])
        except ValueError as exc:
            self.store.record(self._entry("rollback", "blocked", str(exc), rec))
            raise Blocked(str(exc)) from None
        return self._write(rec, back, Action.rollback, dry_run=dry_run, guards=ROLLBACK_GUARDS,
                           from_states=(State.applied,), done=State.rolled_back, undone=State.applied,
                           expect_before=applied["after"])

    def _situation(self, rec: Recommendation, change: Change, obj: dict[str, Any]) -> Situation:
        t = rec.target
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        hpa_owner = None
        if t.kind == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == "Deployment":  # the workload opts in, not its autoscaler
                annotations = (self.cluster.read_deployment(t.namespace, ref["name"]).get("metadata") or {}).get(
                    "annotations") or {}
        if t.kind == "Deployment" and change.type == "replicas":
            hpa_owner = self.cluster.hpa_for(t.namespace, t.name)
        return Situation(t, change, ch.fields(change, obj, t), annotations, self.clock(),
                         applied_recently=self.store.applied_since(t.object_key, since(
                             self.policy.guardrails.rate_limit_minutes)),
                         hpa_owner=hpa_owner, frozen=self.store.frozen(), cluster=self.settings.cluster_name)

    def _write(self, rec: Recommendation, change: Change, action: Action, *, dry_run: bool,
               guards: tuple[str, ...], from_states: tuple[State, ...], done: State, undone: State,
               expect_before: dict[str, Any] | None = None) -> Outcome:
        name, t = action.value, rec.target
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                obj = self.cluster.read(t)
            except NotFound as exc:
                return self._refuse(rec, name, str(exc), permanent=action is Action.apply, states=from_states)
            before = ch.fields(change, obj, t)
            if expect_before is not None:
                drift = {k: (v, before.get(k)) for k, v in expect_before.items()
                         if k in ch.wanted(change) and before.get(k) != v}
                if drift:
                    why = "the object changed since the change was applied (" + ", ".join(
                        f"{k}: applied {a}, now {b}" for k, (a, b) in drift.items()) + "): a rollback would overwrite it"
                    self.store.record(self._entry(name, "conflict", why, rec, before=before))
                    raise Conflict(why)
            sit = self._situation(rec, change, obj)
            skip = tuple(g for g, *_ in GUARDS if g not in guards) if guards else ()
            report = check(self.policy.guardrails, sit, skip=skip)
            if not report.ok:
                return self._blocked(rec, name, report, before, change, from_states)
            after = ch.projected(change, before)
            body, ctype = ch.patch(change, obj, t)
            try:
                answer = self.cluster.patch(t, body, ctype, dry_run=True)
            except Conflict:
                continue  # the object moved between read and dry-run: read again
            except Refused as exc:
                return self._refuse(rec, name, f"the server's dry-run refused the change: {exc}",
                                    permanent=True, states=from_states, before=before, after=after)
            got = ch.fields(change, answer.obj, t)
            if any(got.get(k) != v for k, v in ch.wanted(change).items()):
                why = f"the server's dry-run would set {got}, not {after}: the change would not take effect as made"
                return self._refuse(rec, name, why, permanent=True, states=from_states, before=before, after=got,
                                    warnings=answer.warnings)
            diff = unified(obj, answer.obj, f"{t.kind.lower()}/{t.name}")
            if dry_run:
                new = State.dry_run_ok if from_states == OPEN_STATES else rec.state
                a = self._transition(rec, from_states, new, self._entry(
                    "dry-run", "dry-run-ok", rec.reason, rec, before=before, after=after, diff=diff,
                    details={"warnings": answer.warnings, "guards": report.passed,
                             "resourceVersion": obj["metadata"]["resourceVersion"]}))
                return Outcome(rec.id, "dry-run-ok", new.value, rec.reason, before, after, diff, answer.warnings,
                               a["seq"])
            return self._commit(rec, change, action, obj, body, ctype, before, after, diff, answer.warnings,
                                from_states, done, undone, report)
        why = f"the object kept changing while being read ({CONFLICT_RETRIES + 1} attempts)"
        self.store.record(self._entry(name, "conflict", why, rec))
        raise Conflict(why)

    def _commit(self, rec: Recommendation, change: Change, action: Action, obj: dict, body: dict, ctype: str,
                before: dict, after: dict, diff: str, warnings: list[str], from_states: tuple[State, ...],
                done: State, undone: State, report: Report) -> Outcome:
        t, name = rec.target, action.value
        intent = {"host": socket.gethostname(), "pid": os.getpid(), "action": name,
                  "resourceVersion": obj["metadata"]["resourceVersion"], "guards": report.passed,
                  "done": done.value, "undone": undone.value}
        claim = self._transition(rec, from_states, State.applying, self._entry(
            name, "applying", rec.reason, rec, before=before, after=after, diff=diff, details=intent))
        with in_flight(claim["seq"]):
            return self._send(rec, change, name, body, ctype, before, diff, warnings, done, undone)

    def _send(self, rec: Recommendation, change: Change, name: str, body: dict, ctype: str, before: dict,
              diff: str, warnings: list[str], done: State, undone: State) -> Outcome:
        t = rec.target
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                answer = self.cluster.patch(t, body, ctype, dry_run=False)
                break
            except Conflict as exc:
                # the object's resourceVersion moved: a status update is harmless, a change to our fields is not
                try:
                    cur = self.cluster.read(t)
                except ActuatorError as exc2:
                    self._settle(rec, name, "failed", f"{exc}; then {exc2}", undone)
                    raise
                now = ch.fields(change, cur, t)
                if now != before or attempt == CONFLICT_RETRIES:
                    why = (f"conflict: someone changed {t} meanwhile (now {now}, was {before}); nothing was "
                           "overwritten and the recommendation stays open: review it and apply again")
                    self._settle(rec, name, "conflict", why, undone, before=now)
                    raise Conflict(why) from None
                body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            except Refused as exc:
                self._settle(rec, name, "refused", str(exc), undone)
                raise Blocked(str(exc)) from None
            except ActuatorError as exc:
                # unknown whether it landed (e.g. a timeout): leave it applying; recover() settles it from the cluster
                raise ActuatorError(f"{exc}; the change may or may not have been applied: the next command "
                                    "reconciles it with the cluster") from None
        got = ch.fields(change, answer.obj, t)
        a = self.store.transition(rec.id, (State.applying,), done, self._entry(
            name, done.value if done is State.rolled_back else "applied", rec.reason, rec, before=before, after=got,
            diff=diff, details={"warnings": answer.warnings + warnings,
                                "resourceVersion": answer.obj["metadata"]["resourceVersion"]}),
            applied=done is State.applied)
        return Outcome(rec.id, a["outcome"], done.value, rec.reason, before, got, diff, answer.warnings + warnings,
                       a["seq"])

    def _transition(self, rec: Recommendation, states: tuple[State, ...], new: State, e: Entry,
                    **kw: Any) -> dict[str, Any]:
        """`store.transition`, and when someone else moved the recommendation first, that refusal audited too."""
        try:
            return self.store.transition(rec.id, states, new, e, **kw)
        except Conflict as exc:
            self.store.record(Entry(e.actor, e.role, e.action, "conflict", str(exc), e.recommendation_id,
                                    e.object_key, before=e.before, after=e.after))
            raise

    def _settle(self, rec: Recommendation, name: str, outcome: str, why: str, state: State, **kw: Any) -> dict:
        return self.store.transition(rec.id, (State.applying,), state, self._entry(name, outcome, why, rec, **kw))

    def _blocked(self, rec: Recommendation, name: str, report: Report, before: dict, change: Change,
                 states: tuple[State, ...]) -> Outcome:
        why = report.summary()
        details = {"blocked_by": [v.as_dict() for v in report.verdicts], "passed": report.passed}
        e = self._entry(name, "blocked", why, rec, before=before, after=ch.projected(change, before), details=details)
        if report.permanent and states == OPEN_STATES:
            self.store.transition(rec.id, states, State.rejected, e)
        else:
            self.store.record(e)  # a held change stays open: a later window or a lifted freeze lets it through
        raise Blocked(f"blocked by guardrails: {why}")

    def _refuse(self, rec: Recommendation, name: str, why: str, *, permanent: bool, states: tuple[State, ...],
                **kw: Any) -> Outcome:
        e = self._entry(name, "refused", why, rec, **kw)
        if permanent and states == OPEN_STATES:
            self.store.transition(rec.id, states, State.rejected, e)
        else:
            self.store.record(e)
        raise Blocked(why)

    # --- recovery ---------------------------------------------------------------------------------------------

    def recover(self) -> list[Outcome]:
        """Settle recommendations left `applying` by a process that died, from what the cluster really has."""
        out = []
        for rec in self.store.list((State.applying,)):
            intents = [r for r in self.store.audit_records(recommendation_id=rec.id) if r["outcome"] == "applying"]
            if not intents:
                continue
            intent = intents[-1]
            d = intent["details"] or {}
            if not self._abandoned(d, intent["time"], intent["seq"]):
                continue
            done, undone = State(d.get("done", "applied")), State(d.get("undone", "pending"))
            try:
                obj = self.cluster.read(rec.target)
                if obj["metadata"]["resourceVersion"] == d.get("resourceVersion"):
                    # the write may still be on its way (a proxy, a socket buffer) with a valid precondition:
                    # move the resourceVersion on first, so a late write gets 409 instead of landing unrecorded
                    fence = {"metadata": {"resourceVersion": d["resourceVersion"],
                                          "annotations": {"aiops.dev/recovered": str(intent["seq"])}}}
                    self.cluster.patch(rec.target, fence, ch.MERGE, dry_run=False)
                    obj = self.cluster.read(rec.target)
                now = ch.fields(rec.change, obj, rec.target)
            except ActuatorError:
                continue  # cannot see (or fence) the cluster: settle it next time rather than guess
            before, after = intent["before"] or {}, intent["after"] or {}
            changed = [k for k, v in after.items() if before.get(k) != v]
            if changed and all(now.get(k) == after[k] for k in changed):
                state, outcome = done, ("applied" if done is State.applied else done.value)
                why = "recovered: the process that applied it stopped before recording it; the cluster has the change"
            else:
                state, outcome = undone, "not-applied"
                why = f"recovered: the process stopped before the change landed; the cluster has {now}"
            e = Entry(intent["actor"], intent["role"], d.get("action", "apply"), outcome, why, rec.id,
                      rec.target.object_key, before=intent["before"], after=now,
                      details={"recovered_by": self.caller.user, "intent_seq": intent["seq"]})
            try:
                a = self.store.transition(rec.id, (State.applying,), state, e, applied=state is State.applied)
            except Conflict:
                continue  # someone else settled it first
            out.append(Outcome(rec.id, outcome, state.value, why, intent["before"], now, audit_seq=a["seq"]))
        return out

    def _abandoned(self, intent: dict[str, Any], at: str, seq: int) -> bool:
        max_age = timedelta(seconds=(CONFLICT_RETRIES + 2) * self.policy.request_timeout_s + 60)
        return abandoned(intent, datetime.fromisoformat(at), seq, max_age)
