"""Kubernetes `Status` errors, shaped as the real API server returns them.

Clients (kubectl, the official Python client) read `reason`, `code` and `details` to decide what happened, so the
messages and reasons follow the apiserver's wording (`deployments.apps "web" not found`, ...).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        body["details"] = self.details if self.details is not None else {}
        return body


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or `pods` for the core group: how the apiserver names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, resource: str, group: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(name, resource, group))


def unknown_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def conflict(resource: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(name, resource, group),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', _details(name, resource, group)
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422: `causes` are (field, message) pairs, e.g. ("spec.replicas", "Invalid value: -1: must be ...")."""
    what = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{f}: {m}" if f else m for f, m in causes)
    msg = f'{what} "{name}" is invalid: {joined}' if len(causes) == 1 else f'{what} "{name}" is invalid: [{joined}]'
    details = {
        "name": name,
        **({"group": group} if group else {}),
        "kind": kind,
        "causes": [
            {"reason": "FieldValueInvalid", "message": m, "field": f} if f else {"reason": "FieldValueInvalid", "message": m}
            for f, m in causes
        ],
    }
    return ApiError(422, "Invalid", msg, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {})


def method_not_allowed(message: str | None = None) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", message or "the server does not allow this method on the requested resource", {}
    )


PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def unsupported_media_type(got: str, accepted: tuple[str, ...] = PATCH_TYPES) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType",
        f"the body of the request was in an unknown format ({got or 'no Content-Type'}) - accepted media types "
        f"include: {', '.join(accepted)}",
        {},
    )


def not_acceptable(accept: str) -> ApiError:
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: application/json (asked {accept})", {})
