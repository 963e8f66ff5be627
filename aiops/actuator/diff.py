"""A readable before/after diff of an object, as `kubectl diff` shows it (unified diff of YAML).

HPA scaling policies are written one per line (`- {type: Pods, value: 4, periodSeconds: 15}`), so a changed,
added or removed policy is one `-`/`+` line instead of three lines that sorting by key scatters.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

# server-maintained fields: they change on every write and say nothing about the change
_NOISE_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")
_POLICY_KEYS = ("type", "value", "periodSeconds")  # the order kubectl and the docs use


class _Policy(dict):
    """A scaling policy, dumped on one line with its keys in their usual order."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_policy(dumper: yaml.SafeDumper, p: _Policy) -> yaml.Node:
    keys = [k for k in _POLICY_KEYS if k in p] + sorted(k for k in p if k not in _POLICY_KEYS)
    pairs = [(dumper.represent_data(k), dumper.represent_data(p[k])) for k in keys]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=True)


_Dumper.add_representer(_Policy, _represent_policy)


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for k in _NOISE_META:
        meta.pop(k, None)
    behavior = (out.get("spec") or {}).get("behavior")
    for rules in (behavior or {}).values() if isinstance(behavior, dict) else ():
        if isinstance(rules, dict) and isinstance(rules.get("policies"), list):
            rules["policies"] = [_Policy(p) if isinstance(p, dict) else p for p in rules["policies"]]
    return out


def _yaml(obj: dict[str, Any]) -> list[str]:
    return yaml.dump(_clean(obj), Dumper=_Dumper, sort_keys=True).splitlines(keepends=True)


def unified(before: dict[str, Any], after: dict[str, Any], name: str) -> str:
    """The unified diff of two versions of an object, without status and server-maintained metadata."""
    return "".join(difflib.unified_diff(_yaml(before), _yaml(after), f"{name} (live)", f"{name} (after)", n=3))
