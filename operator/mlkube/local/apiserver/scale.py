"""The `scale` subresource of Deployments, ReplicaSets and ReplicationControllers: `autoscaling/v1` Scale views of them.

Owns the Scale shape (spec.replicas, status.replicas, status.selector) and reading a requested
replica count out of a Scale body. Must not write: objects.py applies the count to the object.
"""

from __future__ import annotations

from typing import Any

from mlkube.local.apiserver import errors

GROUP, VERSION, KIND = "autoscaling", "v1", "Scale"


def _selector(obj: dict[str, Any]) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    # A LabelSelector (Deployment, ReplicaSet), or a ReplicationController's plain label map.
    labels = selector.get("matchLabels") or {} if {"matchLabels", "matchExpressions"} & set(selector) else selector
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def view(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": KIND,
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {
            key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if key in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": _selector(obj)},
    }


def replicas(scale: Any, *, name: str) -> int:
    """The requested replica count; 422 as upstream when it is missing, not an integer or negative."""
    value = ((scale or {}).get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.invalid(
            KIND,
            GROUP,
            name,
            [errors.Cause("FieldValueInvalid", f"Invalid value: {value!r}: must be greater than or equal to 0", "spec.replicas")],
        )
    return value
