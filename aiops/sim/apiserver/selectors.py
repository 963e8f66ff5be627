"""Label and field selectors, with the apiserver's syntax, supported fields and error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiops.sim.apiserver.errors import bad_request

_KEY = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and v in self.values
        # "!=" and "notin" match objects without the label, as in Kubernetes
        return not has or v not in self.values


def _split_top(s: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, whole: str) -> None:
    if not _KEY.match(key):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {whole!r}: name part "
                          "must consist of alphanumeric characters, '-', '_' or '.'")


def parse_label_selector(s: str | None) -> list[Requirement]:
    if not s:
        return []
    reqs: list[Requirement] = []
    for part in _split_top(s):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            _check_key(key, s)
            values = tuple(v.strip() for v in vals.split(",") if v.strip())
            if not values:
                raise bad_request(f"unable to parse requirement: for 'in', 'notin' operators, values set can't be "
                                  f"empty (selector {s!r})")
            reqs.append(Requirement(key, op, values))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, s)
            reqs.append(Requirement(key, "!exists"))
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", part)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            _check_key(key, s)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        if re.match(r"^[^=!\s()]+$", part):
            _check_key(part, s)
            reqs.append(Requirement(part, "exists"))
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt "
                          f"(selector {s!r})")
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


# field selectors: the fields each resource supports (as the apiserver registers them), beyond metadata.*
FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
               "reportingComponent", "source", "type"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "replicasets": ("status.replicas",),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


def parse_field_selector(s: str | None, resource: str) -> list[FieldRequirement]:
    if not s:
        return []
    allowed = ("metadata.name", "metadata.namespace") + FIELDS.get(resource, ())
    out = []
    for part in _split_top(s):
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid field selector: {part!r}: expected field=value, field==value or field!=value")
        field, op, value = m.group(1), m.group(2), m.group(3).strip()
        if field not in allowed:
            raise bad_request(f'field label not supported: {field} (supported for {resource}: {", ".join(allowed)})')
        out.append(FieldRequirement(field, value, op == "!="))
    return out


def _field_value(obj: dict[str, Any], field: str) -> str:
    if field == "source":
        field = "source.component"
    cur: Any = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    for r in reqs:
        equal = _field_value(obj, r.field) == r.value
        if equal == r.negate:
            return False
    return True
