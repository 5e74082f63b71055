"""The one-shot Job the operator runs in a tenant's namespace on the tenant's behalf (a drift
check, a replay of captured requests, the purge of a retired version's artifacts): the only way it reads or writes tenant storage.

Every such Job runs under the token-less trainer ServiceAccount (it cannot talk to the API
server), with the restricted securityContext, no retries (a failure is reported and a later pass
decides), a deadline and a TTL, and reports through its termination message. Pure.
"""

from __future__ import annotations

from typing import Any

from mlkube.control.manifests import meta, training


def tenant_job(
    owner: dict[str, Any],
    *,
    name: str,
    labels: dict[str, str],
    container: dict[str, Any],
    deadline_seconds: int,
    ttl_seconds: int,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job ``name`` owned by ``owner`` in its namespace, running ``container`` (its
    name, image, command, args and env) with the termination message and securityContext added."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [meta.owner_reference(owner)],
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,  # a failure is reported; the owner's next pass decides whether to try again
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": ttl_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": training.TRAINER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            **container,
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": meta.restricted(),
                        }
                    ],
                },
            },
        },
    }
