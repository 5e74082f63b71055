"""Small pure helpers over Kubernetes objects shared by the runtime's controllers.

Owns timestamps, owner references, conditions, label selectors, the pod-template hash and
the merge patch that turns one status into another. No I/O.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any


def now() -> str:
    """The current time in the API's ``Time`` format (RFC 3339, seconds, ``Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_since(value: str | None) -> float:
    if not value:
        return 0.0
    return (datetime.datetime.now(datetime.UTC) - parse_time(value)).total_seconds()


def key(obj: dict) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def owner_reference(owner: dict, *, controller: bool = True) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict) -> str | None:
    """The uid of the object's controlling owner, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def is_terminating(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def matches(selector: dict | None, labels: dict[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a LabelSelector (matchLabels + matchExpressions).

    A missing or empty selector matches nothing, as for a Service or a controller.
    """
    if not selector:
        return False
    labels = labels or {}
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}  # a Service's plain map selector
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expression in selector.get("matchExpressions") or []:
        k, op, values = expression["key"], expression["operator"], expression.get("values") or []
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and k in labels and labels[k] in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def condition(
    type_: str, status: bool, reason: str, message: str = "", *, previous: list[dict] | None = None, at: str | None = None
) -> dict:
    """A status condition; ``lastTransitionTime`` is kept from ``previous`` when the
    status did not change."""
    value = "True" if status else "False"
    at = at or now()
    for old in previous or []:
        if old.get("type") == type_ and old.get("status") == value:
            at = old.get("lastTransitionTime") or at
    return {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": at}


def find_condition(obj: dict, type_: str) -> dict | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_true(obj: dict, type_: str) -> bool:
    cond = find_condition(obj, type_)
    return bool(cond and cond.get("status") == "True")


def template_hash(template: dict) -> str:
    """A short stable hash of a pod template (the ``pod-template-hash`` label)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning ``old`` into ``new`` (None when they are equal).

    Lists are replaced whole; keys that disappear become ``null``.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for k in old.keys() - new.keys():
        patch[k] = None
    for k, value in new.items():
        if k not in old:
            patch[k] = value
        elif old[k] != value:
            patch[k] = merge_patch(old[k], value) if isinstance(value, dict) and isinstance(old[k], dict) else value
    return patch or None
