"""Carrying out a Plan, and the pass loop that observes, plans and executes.

Owns the order of a pass's writes and what a conflict means: the status is written with the
resourceVersion the plan was computed from, so a concurrent change makes the whole pass start
again from a fresh read (observe, plan, execute) instead of overwriting what it did not see.
Events are posted only after the status write succeeded, so a retried pass never repeats them.

Must not: decide anything. What to do is the plan's; this module only does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pydantic

from mlkube.api import base
from mlkube.clients import k8s
from mlkube.control.plans import plan as plans

ATTEMPTS = 5


class RetryLater(Exception):
    """The pass cannot finish now (a missing reference, an object that kept changing); the
    handler turns this into a delayed retry. ``message`` says what is awaited."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay


async def execute(client: k8s.Client, resource: k8s.Resource, obj: dict[str, Any], plan: plans.Plan) -> bool:
    """Do what ``plan`` says about ``obj`` (as read at the start of the pass); True if the status
    was written. Raises ``k8s.Conflict`` when ``obj`` changed since it was read."""
    for child in plan.apply:
        await client.apply(child)
    await _create_once(client, plan.create)
    for ref in plan.delete:
        await client.delete(k8s.resource_of({"apiVersion": ref.api_version, "kind": ref.kind}), ref.name, ref.namespace)
    for patch in plan.patch:
        target = patch.target
        resource_ = k8s.resource_of({"apiVersion": target.api_version, "kind": target.kind})
        try:
            await client.patch(resource_, target.name, target.namespace, patch.body)
        except k8s.NotFound:
            pass  # gone since it was observed: nothing left to correct
    written = False
    if plan.status is not None and not _is_stored(plan.status, obj.get("status")):
        written = await write_status(client, resource, obj, plan.status.wire())
    await _create_once(client, plan.create_after_status)
    for event in plan.events:
        await client.post_event(obj, type_=event.type, reason=event.reason, message=event.message)
    if plan.clear_annotations:
        meta = obj["metadata"]
        await client.patch(
            resource, meta["name"], meta.get("namespace"), {"metadata": {"annotations": dict.fromkeys(plan.clear_annotations)}}
        )
    if plan.retry_after is not None:
        raise RetryLater(plan.retry_reason, delay=plan.retry_after)
    return written


async def _create_once(client: k8s.Client, objects: tuple[dict[str, Any], ...]) -> None:
    for child in objects:
        try:
            await client.create(child)
        except k8s.Conflict:
            pass  # created by an earlier pass: created once, never updated


async def write_status(client: k8s.Client, resource: k8s.Resource, body: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch the status subresource if ``new`` differs from the stored status; True if written.

    The patch removes fields that ``new`` no longer has, so the stored status is exactly the
    computed one. It carries the resourceVersion ``body`` was read at: if the object changed since,
    the write fails with ``k8s.Conflict`` and the pass starts over (``converge``).
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


def _is_stored(new: base.StatusBase, stored: dict[str, Any] | None) -> bool:
    """Whether the stored status already says what ``new`` says (defaults aside)."""
    try:
        return type(new).model_validate(stored or {}).wire() == new.wire()
    except pydantic.ValidationError:
        return False


async def converge(
    client: k8s.Client,
    resource: k8s.Resource,
    name: str,
    namespace: str | None,
    step: Callable[[dict[str, Any]], Awaitable[plans.Plan | None]],
) -> None:
    """Read the object, let ``step`` observe and plan, execute; start over on a write conflict.

    ``step`` returns None when there is nothing to do this pass. An object that is gone or being
    deleted is left alone.
    """
    for _attempt in range(ATTEMPTS):
        obj = await client.get(resource, name, namespace)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        plan = await step(obj)
        if plan is None:
            return
        try:
            await execute(client, resource, obj, plan)
            return
        except k8s.Conflict:
            continue
    raise RetryLater(f"{resource.kind} {namespace}/{name} kept changing during the pass; retrying", delay=1)
