"""Conditions in the Kubernetes shape, computed purely.

``set_condition`` keeps ``lastTransitionTime`` when the status of a condition does not
change, as controllers do, so that writing the same conditions twice is a no-op.
No I/O here; the caller passes the time.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mlkube.api import base

StatusT = TypeVar("StatusT", bound=base.StatusBase)


def condition(type_: str, status: bool | str, reason: str, message: str = "", *, generation: int | None = None) -> dict[str, Any]:
    """A condition dict; ``status`` may be a bool or "True"/"False"/"Unknown"."""
    if isinstance(status, bool):
        status = "True" if status else "False"
    cond = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any], *, now: str) -> list[dict[str, Any]]:
    """Conditions with ``new`` replacing the one of the same type.

    The transition time moves only when the status changes.
    """
    result = []
    replaced = False
    for old in conditions:
        if old.get("type") != new["type"]:
            result.append(old)
            continue
        changed = old.get("status") != new["status"]
        result.append({**new, "lastTransitionTime": now if changed else old.get("lastTransitionTime", now)})
        replaced = True
    if not replaced:
        result.append({**new, "lastTransitionTime": now})
    return result


def find(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    """Whether the condition of ``type_`` is present and True."""
    found = find(conditions, type_)
    return found is not None and found.get("status") == "True"


def with_condition(
    status: StatusT, type_: str, value: bool, reason: str, message: str = "", *, generation: int | None, now: str
) -> StatusT:
    """A copy of the typed ``status`` with condition ``type_`` set; its transition time moves only
    when its status changes. ``generation`` None leaves the condition's observedGeneration out."""
    new = condition(type_, value, reason, message, generation=generation)
    current = [c.wire() for c in status.conditions]
    merged = [base.Condition.model_validate(c) for c in set_condition(current, new, now=now)]
    return status.model_copy(update={"conditions": merged})


def with_ready(status: StatusT, *, ready: bool, reason: str, message: str, generation: int, now: str) -> StatusT:
    """A copy of the typed ``status`` with its Ready condition and ``observedGeneration`` set."""
    updated = with_condition(status, "Ready", ready, reason, message, generation=generation, now=now)
    return updated.model_copy(update={"observed_generation": generation})
