"""The Plan: what one reconcile pass will do, as data.

A kind's ``plan(obj, observed, *, now)`` returns one; ``reconcile.execute`` carries it out in a
fixed order: apply the children, create the once-only objects, delete, patch others, write the
status once (only when it changed), create the records of what the status commits, then post the
Events and clear the consumed annotations. Because the
Events are posted only after the status write succeeded, a pass that is retried after a write
conflict never repeats them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from mlkube.api import base


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event about the reconciled object."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """An object to delete: its apiVersion, kind, name and namespace."""

    api_version: str
    kind: str
    name: str
    namespace: str | None


@dataclasses.dataclass(frozen=True)
class Patch:
    """A JSON merge patch (RFC 7386) of another object's main resource."""

    target: ObjectRef
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """A reference the pass could not follow (a missing or invalid project, deployment or Secret,
    no champion yet): the Ready condition's CamelCase reason and a message saying what to fix."""

    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """One pass's intent. ``status`` is the whole new status (None: leave the stored one)."""

    status: base.StatusBase | None = None
    apply: tuple[dict[str, Any], ...] = ()
    """Children in full, server-side applied on every pass (a deleted one comes back)."""
    create: tuple[dict[str, Any], ...] = ()
    """Objects created once and never updated (a run's Job, a retraining TrainingJob): an
    existing one is left as it is."""
    create_after_status: tuple[dict[str, Any], ...] = ()
    """Objects created once, after the status write: records of what the status commits (the
    ModelVersion of a version the status registers). A pass whose status write conflicts creates
    none of them; one interrupted after the write is completed by the next pass, which plans them
    again from the stored status."""
    delete: tuple[ObjectRef, ...] = ()
    patch: tuple[Patch, ...] = ()
    """Merge patches of other objects (an alias the user moved, removed from its old holder);
    an object that is gone is skipped."""
    events: tuple[Event, ...] = ()
    clear_annotations: tuple[str, ...] = ()
    """Annotations of the reconciled object consumed by this pass (a manual action)."""
    retry_after: float | None = None
    """Ask for another pass after this many seconds, with ``retry_reason`` (a missing reference)."""
    retry_reason: str = ""


def info(reason: str, message: str) -> Event:
    return Event(reason, message, "Normal")


def warning(reason: str, message: str) -> Event:
    return Event(reason, message, "Warning")
