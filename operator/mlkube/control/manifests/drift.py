"""What a due DriftMonitor analysis becomes: the drift-check request and the batch/v1 Job that runs it.

The contract itself (request and result) is ``mlkube.api.driftcheck``; this module fills a request
from the monitor, its project's storage and the served version (with the registry's digest of it),
and builds the Job running ``python -m mlkube.driftcheck`` in the monitor's namespace: under the
token-less trainers' ServiceAccount, with the project's storage credentials by ``secretKeyRef`` (the
operator never reads them), the request in an environment variable and the answer in the
termination message. Pure: ``now`` is an argument.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from mlkube.api import base, driftcheck, monitor, project
from mlkube.common import timestamps
from mlkube.control.manifests import meta, tenantjob

COMPONENT = "driftcheck"
CONTAINER = "driftcheck"
COMMAND = ("python", "-m", "mlkube.driftcheck")
DEADLINE_SECONDS = 600  # an analysis that takes longer is failed by the Job controller
TTL_SECONDS = 3600  # a backstop: the monitor deletes its consumed check Jobs itself
CHECK_TIME = "mlkube.io/check-time"  # on a check Job: the time of its check, the monitor's lastCheckTime once answered


def drift_request(
    dmon: dict[str, Any],
    spec: monitor.DriftMonitorSpec,
    *,
    storage: project.Storage,
    entry: project.ModelEntry,
    primary_metric: str,
    now: datetime.datetime,
) -> driftcheck.DriftCheckRequest:
    """The analysis of the window ending at ``now`` of ``spec.deploymentRef``'s traffic (or ``spec.batchPredictionRef``'s scored rows), against the
    reference of the served version ``entry`` pinned to its registered digest; the report is named
    after ``now``."""
    root = storage.uri.rstrip("/")
    namespace, name = dmon["metadata"]["namespace"], dmon["metadata"]["name"]
    stamp = timestamps.format(now).replace("-", "").replace(":", "")
    return driftcheck.DriftCheckRequest(
        reference=driftcheck.Reference(uri=entry.artifact_uri, endpoint=storage.endpoint, digest=entry.digest),
        traffic=driftcheck.Traffic(
            uri=root,
            endpoint=storage.endpoint,
            namespace=namespace,
            deployment=spec.source,
            versions=[entry.version] if spec.scope == "stable" else None,
            size=spec.window.size,
            since=timestamps.format(now - base.parse_duration(spec.window.duration)),
        ),
        min_samples=spec.min_samples,
        data_drift=spec.data_drift,
        prediction_drift=spec.prediction_drift,
        concept_drift=driftcheck.ConceptDrift(
            metric=spec.concept_drift.metric or primary_metric,
            max_drop=spec.concept_drift.max_drop,
            min_labeled=spec.concept_drift.min_labeled,
        ),
        explainability=spec.explainability,
        fairness=spec.fairness,
        report=driftcheck.Report(uri=f"{root}/reports/{namespace}/{name}/{stamp}.html"),
        default_credentials=storage.use_default_credentials and not storage.credentials_secret,
    )


def check_job_name(dmon: dict[str, Any], *, version: int) -> str:
    """The Job of the monitor's next analysis: one name per (spec generation, served version, last
    check), so a retried pass finds the Job an earlier one created, and a new spec, a new stable
    version or a consumed result makes the next check a new Job."""
    last = (dmon.get("status") or {}).get("lastCheckTime") or "never"
    key = f"{dmon['metadata'].get('generation', 1)}/{version}/{last}"
    return meta.child_name(dmon["metadata"]["name"], f"check-{hashlib.sha256(key.encode()).hexdigest()[:8]}")


def check_time(dmon: dict[str, Any], *, now: datetime.datetime) -> str:
    """The time of a check started at ``now``: ``now``, or a second after the last check when that was
    within this second, so that every check has a time (and a Job name) of its own."""
    last = (dmon.get("status") or {}).get("lastCheckTime")
    if last and timestamps.parse(last) >= now:
        return timestamps.format(timestamps.parse(last) + datetime.timedelta(seconds=1))
    return timestamps.format(now)


def check_time_of(job: dict[str, Any]) -> str | None:
    """The time of the check a Job runs (None for a Job without one)."""
    return ((job.get("metadata") or {}).get("annotations") or {}).get(CHECK_TIME)


def check_labels(dmon: dict[str, Any]) -> dict[str, str]:
    """The labels selecting a monitor's check Jobs (and their pods)."""
    return {meta.OWNER_KIND: "driftmonitor", meta.OWNER_NAME: dmon["metadata"]["name"], meta.COMPONENT: COMPONENT}


def check_job(
    dmon: dict[str, Any],
    request: driftcheck.DriftCheckRequest,
    *,
    name: str,
    checked_at: str,
    project_name: str,
    image: str,
    secret: str | None,
) -> dict[str, Any]:
    """The batch/v1 Job ``name`` running the drift check of ``dmon`` at ``checked_at`` in its namespace."""
    labels = {**meta.labels(dmon, project=project_name, component=COMPONENT), **check_labels(dmon)}
    env = [{"name": driftcheck.REQUEST_ENV, "value": request.model_dump_json(by_alias=True, exclude_none=True)}]
    env += meta.storage_env(secret)
    container = {"name": CONTAINER, "image": image, "command": list(COMMAND), "env": env}
    return tenantjob.tenant_job(
        dmon,
        name=name,
        labels=labels,
        container=container,
        deadline_seconds=DEADLINE_SECONDS,
        ttl_seconds=TTL_SECONDS,
        annotations={CHECK_TIME: checked_at},
    )
