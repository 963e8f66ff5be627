"""Just enough of the Kubernetes protobuf encoding to read what kubectl's typed clients send as protobuf.

kubectl 1.32 POSTs a few built-in kinds as `application/vnd.kubernetes.protobuf` (`auth can-i`'s
SelfSubjectAccessReview, `autoscale`'s autoscaling/v1 HorizontalPodAutoscaler). The wire format is the 4-byte
magic `k8s\\0`, then a `runtime.Unknown` message whose field 2 holds the object's own protobuf bytes; field
numbers below are those of k8s.io/api's generated.proto. Every other request, and every response, is JSON
(clients accept JSON responses).
"""

from __future__ import annotations

from typing import Any

from aiops.sim.apiserver.errors import bad_request

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise bad_request("malformed protobuf body: truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(buf: bytes) -> dict[int, list[Any]]:
    """field number → values (ints for varints, bytes for length-delimited); other wire types are skipped."""
    out: dict[int, list[Any]] = {}
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise bad_request(f"malformed protobuf body: unsupported wire type {wire}")
        out.setdefault(num, []).append(v)
    return out


def _strings(buf: bytes, names: dict[int, str]) -> dict[str, str]:
    f = fields(buf)
    return {name: f[num][-1].decode() for num, name in names.items() if num in f}


def decode_access_review(body: bytes) -> dict[str, Any]:
    """A protobuf SelfSubjectAccessReview as its JSON form (spec only)."""
    spec = fields(_object(body).get(2, [b""])[-1])
    out: dict[str, Any] = {}
    if 1 in spec:
        out["resourceAttributes"] = _strings(spec[1][-1], {1: "namespace", 2: "verb", 3: "group", 4: "version",
                                                           5: "resource", 6: "subresource", 7: "name"})
    if 2 in spec:
        out["nonResourceAttributes"] = _strings(spec[2][-1], {1: "path", 2: "verb"})
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": out}


def _map(entries: list[bytes]) -> dict[str, str]:
    out = {}
    for e in entries:
        f = fields(e)
        out[f.get(1, [b""])[-1].decode()] = f.get(2, [b""])[-1].decode()
    return out


def _object(body: bytes) -> dict[int, list[Any]]:
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body without the k8s\\0 magic prefix")
    return fields(fields(body[len(MAGIC):]).get(2, [b""])[-1])


def _object_meta(buf: bytes) -> dict[str, Any]:
    f = fields(buf)
    meta: dict[str, Any] = _strings(buf, {1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"})
    if 11 in f:
        meta["labels"] = _map(f[11])
    if 12 in f:
        meta["annotations"] = _map(f[12])
    return meta


def decode_hpa_v1(body: bytes) -> dict[str, Any]:
    """A protobuf autoscaling/v1 HorizontalPodAutoscaler as its JSON form (metadata and spec)."""
    obj = _object(body)
    out: dict[str, Any] = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1",
                           "metadata": _object_meta(obj[1][-1]) if 1 in obj else {}}
    if 2 in obj:
        spec = fields(obj[2][-1])
        js: dict[str, Any] = {}
        if 1 in spec:
            js["scaleTargetRef"] = _strings(spec[1][-1], {1: "kind", 2: "name", 3: "apiVersion"})
        for num, name in ((2, "minReplicas"), (3, "maxReplicas"), (4, "targetCPUUtilizationPercentage")):
            if num in spec:
                js[name] = spec[num][-1]
        out["spec"] = js
    return out
