"""Names, labels and owner references shared by every child object."""

from __future__ import annotations

import hashlib
from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"
PROJECT = "mlkube.io/project"
OWNER_KIND = "mlkube.io/owner-kind"
OWNER_NAME = "mlkube.io/owner-name"
COMPONENT = "app.kubernetes.io/component"
QUEUE_NAME = "kueue.x-k8s.io/queue-name"  # Kueue's label naming the LocalQueue a Job waits in

IMAGE = "ghcr.io/mlkube/mlkube:0.1.0"  # one image carries every component (images/Dockerfile)
MAX_NAME = 63  # children's names become label values (job-name), which are at most 63 characters


def child_name(owner: str, suffix: str) -> str:
    """``<owner>-<suffix>``, shortened with a stable hash when it would exceed 63 characters."""
    name = f"{owner}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{owner[: MAX_NAME - len(suffix) - 10].rstrip('-')}-{digest}-{suffix}"


def labels(owner: dict[str, Any], *, project: str, component: str) -> dict[str, str]:
    """The labels every child carries."""
    return {
        MANAGED_BY: "mlkube",
        PROJECT: project,
        OWNER_KIND: owner["kind"].lower(),
        OWNER_NAME: owner["metadata"]["name"],
        COMPONENT: component,
    }


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner``, so deleting it deletes the child."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


STORAGE_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
"""The keys of a project's storage credentials Secret."""

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The container securityContext of the Pod Security Standards' restricted profile."""


def storage_env(secret: str | None) -> list[dict[str, Any]]:
    """Environment entries that take the storage keys from ``secret`` by reference (the values
    never appear in a spec); none without a Secret."""
    if not secret:
        return []
    return [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for key in STORAGE_KEYS]


def restricted(**extra: Any) -> dict[str, Any]:
    """The restricted securityContext, with ``extra`` settings (e.g. readOnlyRootFilesystem)."""
    return {**RESTRICTED, **extra}


def queued(job: dict[str, Any], queue_name: str | None) -> dict[str, Any]:
    """``job`` handed to Kueue's LocalQueue ``queue_name``: labelled with it and created suspended,
    as Kueue expects (it unsuspends the Job once admitted); ``job`` itself without a queue."""
    if not queue_name:
        return job
    metadata = {**job["metadata"], "labels": {**job["metadata"].get("labels", {}), QUEUE_NAME: queue_name}}
    return {**job, "metadata": metadata, "spec": {**job["spec"], "suspend": True}}


def queue_of(job: dict[str, Any]) -> str | None:
    """The Kueue LocalQueue a Job waits in while it is suspended (None once admitted, or unqueued)."""
    if not (job.get("spec") or {}).get("suspend"):
        return None
    return ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_NAME)
