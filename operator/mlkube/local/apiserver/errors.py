"""Kubernetes `Status` errors: one exception type and the builders for each reason.

Owns the exact wording and shape of kube-apiserver error responses (reason, code,
details.causes) so that kubectl, Kopf and the kubernetes client render them as they would
against a real cluster. Must not know about HTTP routing or storage.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class APIError(Exception):
    """An error answered as a `kind: Status` body with `code` as the HTTP status."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        """The Status body with upstream's field order and `omitempty` (clients such as the kubernetes
        package's `create_from_yaml` print it verbatim): ..., reason, details, code."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = {key: value for key, value in self.details.items() if value not in ("", None, [])}
        body["code"] = self.code
        return body


def success_status(*, name: str, group: str, kind: str, uid: str = "") -> dict[str, Any]:
    details = {key: value for key, value in (("name", name), ("group", group), ("kind", kind), ("uid", uid)) if value}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def qualified(resource: str, group: str) -> str:
    """`widgets.example.com`, or `configmaps` for the core group."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', {"name": name, "group": group, "kind": resource}
    )


def path_not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, group: str, name: str, why: str = "") -> APIError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        {"name": name, "group": group, "kind": resource},
    )


@dataclasses.dataclass(frozen=True)
class Cause:
    """One `details.causes` entry; mirrors schema.Cause so either can be passed to invalid()."""

    reason: str
    message: str
    field: str


def invalid(kind: str, group: str, name: str, causes: list[Any]) -> APIError:
    """422 as upstream `errors.NewInvalid`: `Kind.group "name" is invalid: field: message`."""
    rendered = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    text = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qualified_kind = f"{kind}.{group}" if group else kind
    return APIError(
        422,
        "Invalid",
        f'{qualified_kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        },
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(
        403,
        "Forbidden",
        f'{qualified(resource, group)} "{name}" is forbidden: {why}',
        {"name": name, "group": group, "kind": resource},
    )


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str], *, prefix: str = "") -> APIError:
    message = f"{prefix}the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return APIError(415, "UnsupportedMediaType", message)


def expired(requested: int, oldest: int) -> APIError:
    return APIError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def request_too_large(limit: int, size: int | None = None) -> APIError:
    """413 for a request body over kube-apiserver's limit (upstream wording, then the size seen)."""
    seen = f"; this body has {size} bytes" if size else ""
    return APIError(
        413,
        "RequestEntityTooLarge",
        f"Request entity too large: limit is {limit}{seen} (3 MiB, as kube-apiserver): send smaller objects",
    )


def object_too_large(resource: str, group: str, name: str, *, size: int, limit: int) -> APIError:
    """413 for an object whose stored form is over etcd's request limit."""
    return APIError(
        413,
        "RequestEntityTooLarge",
        f'{qualified(resource, group)} "{name}" is too large to store: {size} bytes, the limit is {limit} bytes '
        "(1.5 MiB, etcd's default --max-request-bytes): keep large data outside the object",
        {"name": name, "group": group, "kind": resource},
    )
