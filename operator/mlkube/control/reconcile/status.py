"""Writing a computed status: once per pass, and only when it changed."""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.clients import k8s
from mlkube.control.policy import conditions


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_ready(status: dict[str, Any], *, ready: bool, reason: str, message: str, generation: int, at: str) -> dict[str, Any]:
    """``status`` with its Ready condition and observedGeneration set."""
    ready_condition = conditions.condition("Ready", ready, reason, message, generation=generation)
    return {
        **status,
        "observedGeneration": generation,
        "conditions": conditions.set_condition(status.get("conditions", []), ready_condition, now=at),
    }


async def write(client: k8s.Client, resource: k8s.Resource, body: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch the status subresource if ``new`` differs from the stored status; True if written.

    The patch removes fields that ``new`` no longer has, so the stored status is exactly the
    computed one. It carries the resourceVersion ``body`` was read at: if the object changed since,
    the write fails with ``k8s.Conflict`` and the pass starts over (``execute.converge``).
    """
    old = body.get("status") or {}
    if old == new:
        return False
    patch = merge_patch(old, new)
    meta = body["metadata"]
    await client.patch_status(resource, meta["name"], meta.get("namespace"), patch, resource_version=meta.get("resourceVersion"))
    return True


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch
