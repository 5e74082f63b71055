"""The Job that deletes a retired ModelVersion's artifacts: ``python -m mlkube.purge`` in its namespace.

The operator never reads or writes a tenant's storage itself. Like the drift check, the deletion
runs in the version's namespace under the token-less trainers' ServiceAccount, with the project's
storage credentials by ``secretKeyRef`` (the operator never reads their values), the artifact
prefix and the project's storage root as arguments (the entry point refuses a prefix that is not
strictly inside the root's ``runs/``), and its one-line answer in the termination message.
One Job per ModelVersion, named after it and owned by it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

from mlkube.api import project
from mlkube.control.manifests import meta, tenantjob

COMPONENT = "purge"
CONTAINER = "purge"
COMMAND = ("python", "-m", "mlkube.purge")
DEADLINE_SECONDS = 600  # a deletion that takes longer is failed by the Job controller (and tried again)
TTL_SECONDS = 3600  # a backstop: the ModelVersion deletes its Job itself once it has read the outcome


def job_name(mv: dict[str, Any]) -> str:
    """The purge Job of ModelVersion ``mv``: one name per version, so a retried pass finds the Job
    an earlier one created."""
    return meta.child_name(mv["metadata"]["name"], COMPONENT)


def arguments(artifact_uri: str, storage: project.Storage) -> list[str]:
    """``python -m mlkube.purge``'s arguments for the prefix ``artifact_uri`` of a project stored in ``storage``.

    Without a credentials Secret the default AWS identity of the pod is used only when the project
    opted in (``spec.storage.useDefaultCredentials``), as for drift analysis."""
    args = [artifact_uri, "--storage", storage.uri]
    if storage.endpoint:
        args += ["--endpoint", storage.endpoint]
    if storage.use_default_credentials and not storage.credentials_secret:
        args.append("--default-credentials")
    return args


def purge_job(
    mv: dict[str, Any], *, artifact_uri: str, storage: project.Storage, project_name: str, image: str
) -> dict[str, Any]:
    """The batch/v1 Job deleting every object under ``artifact_uri``, the artifacts of ModelVersion ``mv``."""
    labels = meta.labels(mv, project=project_name, component=COMPONENT)
    container = {
        "name": CONTAINER,
        "image": image,
        "command": list(COMMAND),
        "args": arguments(artifact_uri, storage),
        "env": meta.storage_env(storage.credentials_secret),
    }
    return tenantjob.tenant_job(
        mv,
        name=job_name(mv),
        labels=labels,
        container=container,
        deadline_seconds=DEADLINE_SECONDS,
        ttl_seconds=TTL_SECONDS,
    )
