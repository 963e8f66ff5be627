"""A readable before/after diff of an object, as `kubectl diff` shows it (unified diff of YAML)."""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

# server-maintained fields: they change on every write and say nothing about the change
_NOISE_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for k in _NOISE_META:
        meta.pop(k, None)
    return out


def unified(before: dict[str, Any], after: dict[str, Any], name: str) -> str:
    a = yaml.safe_dump(_clean(before), sort_keys=True).splitlines(keepends=True)
    b = yaml.safe_dump(_clean(after), sort_keys=True).splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{name} (live)", f"{name} (after)", n=3))
