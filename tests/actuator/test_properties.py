"""Properties of the write path, whatever the recommendation and the guardrail settings (hypothesis).

(a) No applied change exceeds a guardrail: after every apply that succeeds, the object read back from the served
    API has values inside the bounds and step limits, relative to what it had before, and a significant change; an
    apply that is refused leaves the object exactly as it was.
(b) A dry-run never changes the cluster: the object (spec, status and resourceVersion: the clock is frozen) is
    identical before and after, whether asked for (`dry_run=True`), in `mode="dry-run"` (where `apply` is refused
    and a dry-run gives the same answer as in apply mode), or of a rollback.
(c) The rate limit is never exceeded: an apply succeeds only while fewer than `rate_limit_changes` changes were made
    to the object in the period, and one refused by it leaves the recommendation open and the object unchanged.

Each property is a `@given` function inside its test, so the test's fixtures are built once and the test can
assert, after all examples ran, that both sides of the property were exercised (not only refusals). Examples are
derandomised and kept in no example database, and each starts from the same objects (`reset`), so a run is
repeatable. The oracle reading the objects is this file's own: it does not use `aiops.actuator.changes` to judge
`aiops.actuator`.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity

from aiops.actuator.policy import GiB, MiB, Guardrails
from aiops.actuator.recommendation import HPAChange, ReplicasChange, ResourcesChange, State
from aiops.errors import Blocked, Conflict
from tests.actuator.conftest import deployment_target, hpa_target, proposal

KINDS = ("replicas", "resources", "hpa")
RESOURCE_FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
REPLICA_FIELDS = ("replicas", "min_replicas", "max_replicas")
SIZE_FIELDS = REPLICA_FIELDS + RESOURCE_FIELDS  # the fields the step limits apply to
CPU_RANGE = (1e-6, 1e4)  # cores
# bytes. Not below one byte, nor infinite: a proposal refuses those (test_guardrails checks it)
MEMORY_RANGE = (1.0, 1e15)
MAX_REPLICAS = 24  # keeps the shared simulated cluster small: no guardrail lets more replicas through
NO_RATE_LIMIT = {"rate_limit_changes": 10_000}
# guardrails that let every change `_modest` makes through
LOOSE = {**NO_RATE_LIMIT, "min_relative_change": 0.0, "cpu_request_min": 0.001, "memory_request_min": MiB,
         "max_replicas": MAX_REPLICAS}
# and ones that let most changes through to the server's dry-run (bounds still keep replicas small)
PERMISSIVE = {**LOOSE, "max_step_up": 1e6, "max_step_down": 0.999999, "cpu_request_min": CPU_RANGE[0],
              "cpu_request_max": CPU_RANGE[1], "memory_request_min": MEMORY_RANGE[0],
              "memory_request_max": MEMORY_RANGE[1]}


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    # the fixtures are shared by every example on purpose: one cluster, one set of workloads
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# --- the objects and this file's own reading of them -----------------------------------------------------------


@dataclass(frozen=True)
class Objects:
    plain: Any  # replicas changes
    sized: Any  # resources changes
    scaled: Any  # HPA changes (autoscaled workload)
    limited: Any  # the rate-limit property's deployment


@pytest.fixture(scope="module")
def objects(pool) -> Objects:
    return Objects(pool.take(), pool.take(), pool.take("autoscaled"), pool.take())


def _workload(objects: Objects, kind: str):
    return {"replicas": objects.plain, "resources": objects.sized, "hpa": objects.scaled}[kind]


def _target(sim, kind: str, w):
    if kind == "hpa":
        return hpa_target(sim, w)
    return deployment_target(w, container=kind == "resources")


def _read(sim, w) -> dict[str, Any]:
    """The workload's deployment (and HPA) as the API serves them: raw JSON, nothing dropped by model classes."""
    dep = sim.apps.read_namespaced_deployment(w.name, w.namespace, _preload_content=False)
    out = {"deployment": json.loads(dep.data)}
    if w.hpa is not None:
        h = sim.hpa.read_namespaced_horizontal_pod_autoscaler(sim.hpa_name(w), w.namespace, _preload_content=False)
        out["hpa"] = json.loads(h.data)
    return out


JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def reset(sim, objects):
    """Puts the objects back as they were when the test started (those that changed), through the served API as a
    person would. Each example starts from the same state, so the values it draws, relative to that state, stay
    valid and a failing example replays exactly."""
    workloads = (objects.plain, objects.sized, objects.scaled, objects.limited)
    base = {w.name: _read(sim, w) for w in workloads}

    def restore() -> None:
        for w in workloads:
            cur, was = _read(sim, w), base[w.name]
            if w.hpa is not None:  # the HPA owns the deployment's replicas: put back its spec only
                if cur["hpa"]["spec"] != was["hpa"]["spec"]:
                    sim.hpa.patch_namespaced_horizontal_pod_autoscaler(
                        sim.hpa_name(w), w.namespace, [{"op": "replace", "path": "/spec", "value": was["hpa"]["spec"]}],
                        _content_type=JSON_PATCH)
                continue
            ops = [{"op": "replace", "path": path, "value": value} for path, value in (
                ("/spec/replicas", was["deployment"]["spec"]["replicas"]),
                ("/spec/template/spec/containers/0/resources",
                 was["deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]))
                if _pointer(cur["deployment"], path) != value]
            if ops:
                sim.apps.patch_namespaced_deployment(w.name, w.namespace, ops, _content_type=JSON_PATCH)

    return restore


def _pointer(doc: Any, path: str) -> Any:
    for part in path.strip("/").split("/"):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _values(kind: str, state: dict[str, Any], w) -> dict[str, float | int | None]:
    if kind == "hpa":
        spec = state["hpa"]["spec"]
        cpu = [m for m in spec.get("metrics") or [] if m.get("type") == "Resource"
               and m["resource"]["name"] == "cpu"]
        beh = spec.get("behavior") or {}
        return {"min_replicas": spec.get("minReplicas", 1), "max_replicas": spec["maxReplicas"],
                "target_cpu_utilization": cpu[0]["resource"]["target"].get("averageUtilization") if cpu else None,
                "scale_up_stabilization_s": (beh.get("scaleUp") or {}).get("stabilizationWindowSeconds"),
                "scale_down_stabilization_s": (beh.get("scaleDown") or {}).get("stabilizationWindowSeconds")}
    spec = state["deployment"]["spec"]
    if kind == "replicas":
        return {"replicas": spec.get("replicas", 1)}
    ctr = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == w.container)
    res = ctr.get("resources") or {}
    out: dict[str, float | int | None] = {}
    for k in RESOURCE_FIELDS:
        r, sect = k.split("_")
        raw = (res.get(sect + "s") or {}).get(r)
        out[k] = None if raw is None else float(parse_quantity(raw))
    return out


def _set(change) -> dict[str, float | int]:
    return {k: v for k, v in change.model_dump().items() if k != "type" and v is not None}


def _rel(new: float, old: float | None) -> float:
    if old is None:
        return float("inf")
    if old == 0:
        return 0.0 if new == 0 else float("inf")
    return abs(new / old - 1)


def _as_asked(field: str, got: float | int | None, asked: float | int) -> bool:
    """`got` is `asked` to the resolution of a quantity: the millicore (at least 1m) for CPU, the byte for memory."""
    if got is None:
        return False
    if field.startswith("cpu"):
        return abs(got - max(asked, 0.001)) <= 0.0005 + 1e-12
    if field.startswith("memory"):
        return abs(got - asked) <= 0.5
    return got == asked


def violations(g: Guardrails, change, before: dict, after: dict) -> list[str]:
    """Every way the applied change (`before` -> `after`, read back) breaks a guardrail or was not made as asked."""
    out, asked = [], _set(change)
    for k, old in before.items():
        if k not in asked and after[k] != old:
            out.append(f"{k} moved {old} -> {after[k]} though the change does not set it")
    for k, v in asked.items():
        got, old = after[k], before[k]
        if not _as_asked(k, got, v):
            out.append(f"{k} is {got}, asked {v}")
        if k in REPLICA_FIELDS and not g.min_replicas <= got <= g.max_replicas:
            out.append(f"{k} {got} outside [{g.min_replicas}, {g.max_replicas}]")
        if k == "cpu_request" and not g.cpu_request_min <= got <= g.cpu_request_max:
            out.append(f"cpu_request {got} outside [{g.cpu_request_min}, {g.cpu_request_max}]")
        if k == "memory_request" and not g.memory_request_min <= got <= g.memory_request_max:
            out.append(f"memory_request {got} outside [{g.memory_request_min}, {g.memory_request_max}]")
        if k in SIZE_FIELDS and old is not None:
            hi, lo = old * (1 + g.max_step_up), old * (1 - g.max_step_down)
            if old == 0 and k in ("replicas", "min_replicas"):
                hi = 1
            if got > hi + max(1e-9, 1e-12 * hi) or got < lo - max(1e-9, 1e-12 * lo):
                out.append(f"{k} {old} -> {got} is outside the step limits [{lo}, {hi}]")
    largest = max(_rel(after[k], before[k]) for k in asked)
    if largest < g.min_relative_change - 1e-12:
        out.append(f"largest step {largest} below min_relative_change {g.min_relative_change}")
    for r in ("cpu", "memory"):
        req, lim = after.get(f"{r}_request"), after.get(f"{r}_limit")
        if req is not None and lim is not None and req > lim:
            out.append(f"{r} request {req} above its limit {lim}")
    if "min_replicas" in after and after["min_replicas"] > after["max_replicas"]:
        out.append(f"minReplicas {after['min_replicas']} above maxReplicas {after['max_replicas']}")
    return out


# --- strategies --------------------------------------------------------------------------------------------------


@st.composite
def guardrail_settings(draw, before: dict | None = None) -> dict[str, Any]:
    """Random limits: anywhere in a plausible range or, given the object's fields `before`, around them (so that
    changes near the current values pass as often as they fail)."""
    b = before or {}
    around = before is not None and draw(st.sampled_from([True, False]))

    def bounds(field: str, low: tuple[float, float], high: tuple[float, float]) -> tuple[float, float]:
        if around and b.get(field):
            under = draw(st.one_of(st.sampled_from([0.5, 0.8]), st.floats(0.3, 1.0)))
            over = draw(st.one_of(st.sampled_from([2.0, 1.5]), st.floats(1.0, 4.0)))
            return b[field] * under, b[field] * over
        return draw(st.floats(*low)), draw(st.floats(*high))

    cpu = bounds("cpu_request", (0.001, 0.05), (0.5, 4.0))
    mem = bounds("memory_request", (MiB, 64 * MiB), (GiB, 8 * GiB))
    counts = [b[k] for k in REPLICA_FIELDS if b.get(k) is not None]
    if around and counts:  # the current counts inside the bounds, with some room (or none) either side
        rmin = max(0, min(counts) - draw(st.one_of(st.sampled_from([1, 2]), st.integers(0, 3))))
        rmax = min(MAX_REPLICAS, max(counts) + draw(st.one_of(st.sampled_from([4, 2]), st.integers(0, 8))))
    else:
        rmin = draw(st.integers(0, 3))
        rmax = draw(st.integers(max(rmin, 1), MAX_REPLICAS))
    step = st.one_of(st.sampled_from([1.0, 0.5, 0.25]), st.floats(0.05, 3.0))
    return {**NO_RATE_LIMIT,
            "max_step_up": draw(step), "max_step_down": draw(step.map(lambda v: min(v, 0.95))),
            "min_relative_change": draw(st.one_of(st.just(0.05), st.floats(0.0, 0.3))),
            "min_replicas": rmin, "max_replicas": rmax,
            "cpu_request_min": cpu[0], "cpu_request_max": cpu[1],
            "memory_request_min": mem[0], "memory_request_max": mem[1]}


def _amount(old: float | None, lo: float, hi: float) -> st.SearchStrategy[float]:
    """Mostly near the old value (where step limits decide), sometimes anywhere, sometimes an extreme."""
    anywhere = st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]))
    if not old:
        return anywhere
    close = st.sampled_from([1.25, 0.8, 1.5, 0.6, 1.1, 0.9]).map(lambda f: old * f)
    near = st.floats(0.2, 3.0).map(lambda f: old * f)
    return st.one_of(close, close, near, anywhere)


def _count(old: int, top: int) -> st.SearchStrategy[int]:
    close = st.sampled_from([1, -1, 2]).map(lambda d: max(old + d, 0))
    return st.one_of(close, close, st.integers(0, 2 * old + 2), st.integers(0, top))


@st.composite
def change_for(draw, kind: str, before: dict):
    """A random change of `kind` to an object whose fields are `before`."""
    if kind == "replicas":
        return ReplicasChange(replicas=draw(_count(before["replicas"], 10_000)))
    if kind == "resources":
        one = st.sampled_from(RESOURCE_FIELDS).map(lambda k: {k})
        fields = draw(st.one_of(one, one, st.sets(st.sampled_from(RESOURCE_FIELDS), min_size=2)))
        v = {k: draw(_amount(before[k], *(CPU_RANGE if k.startswith("cpu") else MEMORY_RANGE))) for k in fields}
        for r in ("cpu", "memory"):
            req, lim, old_req, old_lim = v.get(f"{r}_request"), v.get(f"{r}_limit"), before[f"{r}_request"], \
                before[f"{r}_limit"]
            if req is not None and lim is not None and req > lim:
                v[f"{r}_request"], v[f"{r}_limit"] = lim, req
            elif req is not None and lim is None and old_lim is not None and req > old_lim and old_req \
                    and draw(st.sampled_from([True, False])):
                v[f"{r}_limit"] = req * old_lim / old_req  # as recommenders do: the limit keeps its ratio
        return ResourcesChange(**v)
    one = st.sampled_from(tuple(before)).map(lambda k: {k})
    fields = draw(st.one_of(one, one, st.sets(st.sampled_from(tuple(before)), min_size=2)))
    v = {}
    for k in fields:
        if k in ("min_replicas", "max_replicas"):
            v[k] = max(1, draw(_count(before[k], 1000)))
        elif k == "target_cpu_utilization":
            v[k] = draw(st.integers(1, 1000))
        else:
            v[k] = draw(st.integers(0, 3600))
    if v.get("min_replicas", 0) > v.get("max_replicas", 10**9):
        v["min_replicas"], v["max_replicas"] = v["max_replicas"], v["min_replicas"]
    return HPAChange(**v)


def _modest(kind: str, before: dict):
    """A change every guard in LOOSE lets through: one replica, a quarter of the CPU request (never above its
    limit), ten points of HPA target utilisation."""
    if kind == "replicas":
        n = before["replicas"]
        return ReplicasChange(replicas=n + 1 if n < 6 else n - 1)
    if kind == "resources":
        cpu, lim = before["cpu_request"], before["cpu_limit"]
        up = cpu * 1.25 <= 2 and (lim is None or cpu * 1.25 <= lim)
        return ResourcesChange(cpu_request=cpu * 1.25 if up else cpu * 0.8)
    t = before["target_cpu_utilization"] or 80
    return HPAChange(target_cpu_utilization=t + 10 if t < 100 else t - 10)


# --- (a) guardrails --------------------------------------------------------------------------------------------


def test_no_applied_change_ever_exceeds_a_guardrail(make_actuator, sim, objects, reset, tmp_path):
    seen: Counter[str] = Counter()
    befores = {k: _values(k, _read(sim, _workload(objects, k)), _workload(objects, k)) for k in KINDS}

    @_settings(20)
    @given(data=st.data())
    def prop(data):
        reset()
        # one set of guardrails, and a change of each kind judged by them
        g = data.draw(guardrail_settings({**befores["replicas"], **befores["hpa"], **befores["resources"]}),
                      label="guardrails")
        act = make_actuator(guardrails=g, data_dir=tmp_path / "a")
        for kind in KINDS:
            w, before = _workload(objects, kind), befores[kind]
            state = _read(sim, w)
            assert _values(kind, state, w) == before
            change = data.draw(change_for(kind, before), label=f"{kind} change")
            rec, _ = act.propose(proposal(_target(sim, kind, w), change))
            try:
                out = act.apply(rec.id)
            except (Blocked, Conflict) as exc:
                assert _read(sim, w) == state, f"a refused apply ({exc}) changed the object"
                assert act.store.get(rec.id).state in (State.pending, State.rejected)
                seen["refused by the server" if "server" in str(exc) else "blocked"] += 1
                continue
            assert out.state == "applied" and act.store.get(rec.id).state is State.applied
            after = _values(kind, _read(sim, w), w)
            assert not violations(Guardrails(**g), change, before, after), (before, after)
            seen[f"applied {kind}"] += 1

    prop()
    # both sides were exercised, for every kind of change
    applied = sum(seen[f"applied {k}"] for k in KINDS)
    assert seen["blocked"] >= 5 and applied >= 6 and all(seen[f"applied {k}"] for k in KINDS), seen


# --- (b) dry-run -----------------------------------------------------------------------------------------------


def test_a_dry_run_never_changes_the_cluster(make_actuator, sim, objects, reset, tmp_path):
    seen: Counter[str] = Counter()
    data_dir = tmp_path / "b"
    applier = make_actuator(guardrails=LOOSE, data_dir=data_dir)
    befores = {k: _values(k, _read(sim, _workload(objects, k)), _workload(objects, k)) for k in KINDS}

    def dry_run(act, rec, how: str, asked: dict, kind: str, w) -> str:
        """Dry-run `rec` (a rollback's when `how` is "rollback"); the cluster must be exactly as it was."""
        state, open_before = _read(sim, w), act.store.get(rec.id).state
        try:
            if how == "mode=dry-run":
                with pytest.raises(Blocked, match="actuator.mode is dry-run"):
                    act.apply(rec.id)
                assert _read(sim, w) == state and act.store.get(rec.id).state is open_before
            out = act.rollback(rec.id, dry_run=True) if how == "rollback" else act.apply(rec.id, dry_run=True)
        except (Blocked, Conflict):
            result = "refused"
        else:
            # it reports the object as it is and the change as it would be made; only the record's state moved
            assert out.outcome == "dry-run-ok" and out.before == _values(kind, state, w)
            assert all(_as_asked(k, out.after[k], v) for k, v in asked.items()), (asked, out.after)
            assert act.store.get(rec.id).state is (State.applied if how == "rollback" else State.dry_run_ok)
            result = "dry-run-ok"
        assert _read(sim, w) == state, f"a dry-run ({how}) changed the cluster"
        seen[f"{result} {how}"] += 1
        return result

    @_settings(15)
    @given(data=st.data())
    def prop(data):
        reset()
        kind = data.draw(st.sampled_from(KINDS), label="kind")
        w, before = _workload(objects, kind), befores[kind]
        g = data.draw(st.one_of(st.just(PERMISSIVE), guardrail_settings(before)), label="guardrails")
        change = data.draw(change_for(kind, before), label="change")
        # the same change asked for as a dry-run, and applied with the actuator in dry-run mode: same answer
        results = set()
        for mode, how in (("apply", "dry_run=True"), ("dry-run", "mode=dry-run")):
            act = make_actuator(mode=mode, guardrails=g, data_dir=data_dir)
            rec, _ = act.propose(proposal(_target(sim, kind, w), change))
            results.add(dry_run(act, rec, how, _set(change), kind, w))
        assert len(results) == 1, "a dry-run's answer depended on the mode"
        if data.draw(st.booleans(), label="and a rollback"):  # apply a change for real, then dry-run undoing it
            rec, _ = applier.propose(proposal(_target(sim, kind, w), _modest(kind, before)))
            applier.apply(rec.id)
            act = make_actuator(guardrails=g, data_dir=data_dir)
            assert dry_run(act, rec, "rollback", {k: before[k] for k in _set(rec.change)}, kind, w) == "dry-run-ok"

    prop()
    assert seen["dry-run-ok dry_run=True"] >= 3 and seen["dry-run-ok rollback"] >= 1, seen


# --- (c) rate limit --------------------------------------------------------------------------------------------


def test_the_rate_limit_is_never_exceeded(make_actuator, sim, objects, reset, tmp_path):
    w = objects.limited
    fresh = itertools.count()
    seen: Counter[str] = Counter()

    @_settings(12)
    @given(limit=st.integers(0, 2),
           ops=st.lists(st.sampled_from(["replicas", "resources", "rollback"]), min_size=1, max_size=4))
    def prop(limit, ops):
        reset()
        # a store of its own: the count starts at zero
        act = make_actuator(guardrails={**LOOSE, "rate_limit_changes": limit}, data_dir=tmp_path / f"c{next(fresh)}")
        made, applied = 0, []  # changes made to the object in the period (applies and rollbacks), undo stack
        for op in ops:
            if op == "rollback":
                if applied:  # a rollback restores a known state: not held by the rate limit, but counted by it
                    assert act.rollback(applied.pop().id).state == "rolled-back"
                    made += 1
                continue
            state = _read(sim, w)
            rec, _ = act.propose(proposal(_target(sim, op, w), _modest(op, _values(op, state, w))))
            if made < limit:
                assert act.apply(rec.id).state == "applied"
                applied.append(rec)
                made += 1
                seen["applied"] += 1
                continue
            with pytest.raises(Blocked, match=rf"rate-limit: .*\(rate_limit_changes {limit}\)") as exc:
                act.apply(rec.id)
            assert f"{made} change(s) already applied" in str(exc.value)
            assert _read(sim, w) == state and act.store.get(rec.id).state is State.pending  # held, not rejected
            seen["held"] += 1
        applies = [r for r in act.store.audit_records() if r["action"] == "apply" and r["outcome"] == "applied"]
        assert len(applies) <= limit

    prop()
    assert seen["applied"] >= 3 and seen["held"] >= 3, seen
