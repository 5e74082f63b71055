"""What a candidate's replay becomes: the replay request and the batch/v1 Job that runs it.

The contract itself is ``mlkube.api.replay``; this module fills a request from the deployment, its
project's storage, the stable version and the candidate's InferenceService address, and builds
the Job running ``python -m mlkube.replay`` in the deployment's namespace, exactly as the drift
check runs (``manifests.drift``): under the token-less trainers' ServiceAccount, with the
project's storage credentials by ``secretKeyRef`` (the operator never reads the capture store
or the credentials), the request in an environment variable and the answer in the termination
message. Pure.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlkube.api import project
from mlkube.api import replay as replay_api
from mlkube.control.manifests import meta, serving, tenantjob

COMPONENT = "replay"
CONTAINER = "replay"
COMMAND = ("python", "-m", "mlkube.replay")
DEADLINE_SECONDS = 600  # the Job controller fails a replay that runs longer (the budget below ends it first)
BUDGET_SECONDS = 300.0  # the replay sends no new request after this long
TIMEOUT_SECONDS = 10.0  # per replayed request
CONCURRENCY = 8  # replayed requests in flight at once
TTL_SECONDS = 3600  # a backstop: the deployment deletes its consumed replay Jobs itself


def job_name(mdep_name: str, *, candidate: int, since: str) -> str:
    """The replay Job of ``candidate`` in the rollout whose replay step began at ``since``: a
    retried pass finds the Job an earlier one created; a new rollout (even of the same version)
    gets a Job of its own."""
    key = hashlib.sha256(f"{candidate}/{since}".encode()).hexdigest()[:8]
    return meta.child_name(mdep_name, f"replay-v{candidate}-{key}")


def job_labels(mdep_name: str) -> dict[str, str]:
    """The labels selecting a deployment's replay Jobs (and their pods)."""
    return {meta.OWNER_KIND: "modeldeployment", meta.OWNER_NAME: mdep_name, meta.COMPONENT: COMPONENT}


def quality_metric(task: str) -> replay_api.QualityMetric | None:
    """The quality a replay scores against feedback for a project's ``problem.task``, as the A/B
    test does: accuracy (classification, and anomaly detection's flags), mae (regression), none
    (tasks without comparable labels)."""
    return {"classification": "accuracy", "anomaly_detection": "accuracy", "regression": "mae"}.get(task)


def replay_request(
    mdep: dict[str, Any],
    settings: replay_api.Replay,
    *,
    storage: project.Storage,
    stable: int,
    candidate: int,
    candidate_url: str,
    task: str,
) -> replay_api.ReplayRequest:
    """The replay of the newest ``settings.requests`` captured requests ``stable`` answered on
    ``candidate`` at ``candidate_url``; quality is scored as the A/B test scores it (accuracy for
    classification, mae for regression, none for other tasks)."""
    metric = quality_metric(task)
    return replay_api.ReplayRequest(
        capture=replay_api.Capture(
            uri=storage.uri.rstrip("/"),
            endpoint=storage.endpoint,
            namespace=mdep["metadata"]["namespace"],
            deployment=mdep["metadata"]["name"],
            version=stable,
            size=settings.requests,
        ),
        candidate=replay_api.Candidate(
            version=candidate, url=candidate_url, model=serving.isvc_name(mdep["metadata"]["name"], candidate)
        ),
        metric=metric,
        timeout_seconds=TIMEOUT_SECONDS,
        concurrency=CONCURRENCY,
        budget_seconds=BUDGET_SECONDS,
        default_credentials=storage.use_default_credentials and not storage.credentials_secret,
    )


def replay_job(
    mdep: dict[str, Any],
    request: replay_api.ReplayRequest,
    *,
    name: str,
    project_name: str,
    image: str,
    secret: str | None,
) -> dict[str, Any]:
    """The batch/v1 Job ``name`` running ``request`` in the deployment's namespace."""
    labels = {**meta.labels(mdep, project=project_name, component=COMPONENT), **job_labels(mdep["metadata"]["name"])}
    env = [{"name": replay_api.REQUEST_ENV, "value": request.model_dump_json(by_alias=True, exclude_none=True)}]
    env += meta.storage_env(secret)
    container = {"name": CONTAINER, "image": image, "command": list(COMMAND), "env": env}
    # A replay that cannot run is Inconclusive, not retried (the tenant Job has no retries).
    return tenantjob.tenant_job(
        mdep, name=name, labels=labels, container=container, deadline_seconds=DEADLINE_SECONDS, ttl_seconds=TTL_SECONDS
    )
