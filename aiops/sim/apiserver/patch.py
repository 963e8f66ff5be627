"""The three patch types the apiserver accepts: JSON merge (RFC 7386), strategic merge, JSON patch (RFC 6902).

Strategic merge follows the patch strategies Kubernetes declares on its types: lists of objects with a merge
key (containers by `name`, container ports by `containerPort`, ...) merge element by element; other lists are
replaced; `$patch: delete | replace | merge`, `$retainKeys`, `$setElementOrder/<list>` and
`$deleteFromPrimitiveList/<list>` directives are honoured. The merge keys are looked up by field name, which is
unambiguous for the kinds this server writes (Deployment, HorizontalPodAutoscaler, Scale, metadata).
"""

from __future__ import annotations

import copy
from typing import Any

from aiops.sim.apiserver.errors import ApiError, bad_request

# field name → merge key, from the `patchMergeKey` tags of k8s.io/api
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resizePolicy": "resourceName",
    "conditions": "type",
    "ownerReferences": "uid",
    "claims": "name",
    "resourceClaims": "name",
}
# lists of scalars with patchStrategy "merge" (set union)
MERGE_PRIMITIVE_LISTS = frozenset({"finalizers"})


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise bad_request(f"strategic merge patch: expected a JSON object, got {type(patch).__name__}")
    return _merge_map(target if isinstance(target, dict) else {}, patch)


def _merge_map(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive not in (None, "merge"):
        raise bad_request(f"strategic merge patch: unknown $patch directive {directive!r} in a map; "
                          "expected replace, delete or merge")
    out = copy.deepcopy(original)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            continue  # ordering only; applied below
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = set(map(_hashable, value or []))
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if _hashable(x) not in drop]
            continue
        if value is None:
            out.pop(key, None)
            continue
        cur = out.get(key)
        if isinstance(value, dict):
            merged = _merge_map(cur if isinstance(cur, dict) else {}, value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(key, cur if isinstance(cur, list) else [], value)
        else:
            out[key] = copy.deepcopy(value)
    for key, order in patch.items():
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = _apply_order(field, out[field], order)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _hashable(x: Any) -> Any:
    return repr(x) if isinstance(x, (dict, list)) else x


def _merge_list(field: str, original: list[Any], patch: list[Any]) -> list[Any]:
    mk = MERGE_KEYS.get(field)
    if mk is None or not all(isinstance(e, dict) for e in patch):
        if field in MERGE_PRIMITIVE_LISTS:
            out = list(original)
            for e in patch:
                if e not in out:
                    out.append(e)
            return out
        # no merge strategy: the list is replaced (directive elements dropped)
        return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and "$patch" in e and len(e) == 1)]
    if any(e.get("$patch") == "replace" for e in patch):
        return [copy.deepcopy({k: v for k, v in e.items()}) for e in patch if "$patch" not in e]
    out = copy.deepcopy(original)
    for elem in patch:
        directive = elem.get("$patch")
        if mk not in elem:
            raise bad_request(f"strategic merge patch: an element of {field!r} has no merge key {mk!r}: {elem}")
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(mk) == elem[mk]), None)
        if directive == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if directive not in (None, "merge"):
            raise bad_request(f"strategic merge patch: unknown $patch directive {directive!r} in list {field!r}")
        body = {k: v for k, v in elem.items() if k != "$patch"}
        if idx is None:
            out.append(_merge_map({}, body))
        else:
            out[idx] = _merge_map(out[idx], body)
    return out


def _apply_order(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    mk = MERGE_KEYS.get(field)
    if mk is None:
        return items

    def rank(item: Any) -> int:
        for i, o in enumerate(order):
            if isinstance(o, dict) and isinstance(item, dict) and o.get(mk) == item.get(mk):
                return i
        return len(order)

    return sorted(items, key=rank)


# --- RFC 6902 JSON patch ----------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch: path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise _unprocessable(f"json patch: path {path!r}: key {p!r} does not exist")
            cur = cur[p]
        elif isinstance(cur, list):
            cur = cur[_index(cur, p, path, allow_end=False)]
        else:
            raise _unprocessable(f"json patch: path {path!r}: {p!r} is not inside an object or array")
    return cur


def _index(lst: list[Any], p: str, path: str, *, allow_end: bool) -> int:
    if p == "-" and allow_end:
        return len(lst)
    if not p.isdigit():
        raise _unprocessable(f"json patch: path {path!r}: {p!r} is not an array index")
    i = int(p)
    if i > len(lst) or (i == len(lst) and not allow_end):
        raise _unprocessable(f"json patch: path {path!r}: index {i} out of range (length {len(lst)})")
    return i


def _unprocessable(msg: str) -> ApiError:
    return ApiError(422, "Invalid", msg, {})


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), copy.deepcopy(value))
    else:
        raise _unprocessable(f"json patch: path {path!r}: parent is not an object or array")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        raise _unprocessable("json patch: cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"json patch: remove {path!r}: no such key")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path, allow_end=False))
    raise _unprocessable(f"json patch: path {path!r}: parent is not an object or array")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json patch: expected a JSON array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json patch: each operation needs 'op' and 'path', got {op!r}")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind == "add":
            doc = _add(doc, parts, op.get("value"), path)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind == "replace":
            _walk(doc, parts, path)  # must exist
            if parts:
                _remove(doc, parts, path)
            doc = _add(doc, parts, op.get("value"), path)
        elif kind in ("move", "copy"):
            src = op.get("from")
            if src is None:
                raise bad_request(f"json patch: {kind} needs 'from'")
            sparts = _pointer(src)
            value = copy.deepcopy(_walk(doc, sparts, src))
            if kind == "move":
                _remove(doc, sparts, src)
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise _unprocessable(f"json patch: test failed at {path!r}")
        else:
            raise bad_request(f"json patch: unknown operation {kind!r}; expected add, remove, replace, move, copy, test")
    return doc


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a patch of the given media type (parameters after ';' ignored)."""
    ct = content_type.split(";")[0].strip().lower()
    if ct == "application/merge-patch+json":
        if not isinstance(patch, dict):
            raise bad_request("merge patch: expected a JSON object")
        return json_merge_patch(target, patch)
    if ct == "application/strategic-merge-patch+json":
        return strategic_merge_patch(target, patch)
    if ct == "application/json-patch+json":
        out = json_patch(target, patch)
        if not isinstance(out, dict):
            raise _unprocessable("json patch: the result is not a JSON object")
        return out
    raise AssertionError(ct)
