"""Kubernetes REST paths and content negotiation: which resource a URL names, and whether a Table is wanted."""

from __future__ import annotations

from dataclasses import dataclass

from aiops.sim.apiserver import discovery as disc
from aiops.sim.apiserver.errors import ApiError, unknown_path


@dataclass
class Target:
    """A parsed resource path."""

    rt: disc.ResourceType
    namespace: str | None  # None: across all namespaces (or cluster-scoped)
    name: str | None
    sub: str | None


def _check_sub(rt: disc.ResourceType, sub: str | None) -> None:
    if sub is None or sub in rt.subresources:
        return
    if rt.plural == "pods" and sub in ("log", "exec", "attach", "portforward", "proxy", "eviction"):
        raise ApiError(404, "NotFound", f"the simulated cluster runs no containers: pods/{sub} is not served", {})
    raise unknown_path()


def parse_resource_path(group: str, version: str, rest: list[str]) -> Target:
    """`rest` is the path after `/api/v1` or `/apis/<group>/<version>`, split on '/'."""
    if rest and rest[0] == "namespaces" and len(rest) >= 3:
        rt = disc.find(group, version, rest[2])
        if rt is not None:
            if not rt.namespaced or len(rest) > 5:
                raise unknown_path()
            sub = rest[4] if len(rest) > 4 else None
            _check_sub(rt, sub)
            return Target(rt, rest[1], rest[3] if len(rest) > 3 else None, sub)
    if not rest or len(rest) > 3:
        raise unknown_path()
    rt = disc.find(group, version, rest[0])
    if rt is None:
        raise unknown_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if rt.namespaced and name is not None:
        raise unknown_path()
    _check_sub(rt, sub)
    return Target(rt, None if rt.namespaced else "", name, sub)


def table_version(accept: str) -> str | None:
    """meta.k8s.io Table version asked for in Accept, if any (kubectl asks v1, then v1beta1, then JSON)."""
    for part in accept.split(","):
        params = {kv.split("=", 1)[0].strip(): kv.split("=", 1)[1].strip()
                  for kv in part.split(";")[1:] if "=" in kv}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None
