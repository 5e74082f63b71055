"""What a BatchPrediction becomes: the scoring request and the Indexed Job of its shards, and, for a
schedule, the run of one tick.

The contract with the pods is ``mlkube.api.scoring``: every pod of the Indexed Job runs
``python -m mlkube.batch`` with the same request in its environment, its shard in
``JOB_COMPLETION_INDEX`` (set by the Job controller) and the version's registered digest in
``api.artifact.DIGEST_ENV``, as the model server gets it. Like the drift check, the pods run under
the token-less trainers' ServiceAccount (they never call the API) with a restricted security
context, and get the storage keys by ``secretKeyRef`` from the one Secret the spec names (the
operator never reads them). The version is recorded on the Job, so a pass that lost its status
write still knows which version the run scores. Pure.
"""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.api import artifact, base, batch, monitor, project, scoring
from mlkube.common import timestamps
from mlkube.control.manifests import meta, training

COMPONENT = "batchscoring"
CONTAINER = "scorer"
COMMAND = ("python", "-m", "mlkube.batch")
RUN_LABEL = "mlkube.io/batchprediction"  # on the Job and its pods: the BatchPrediction they score
VERSION_ANNOTATION = "mlkube.io/model-version"  # on the Job: the version it scores
SCHEDULE_LABEL = "mlkube.io/schedule"  # on a run: the scheduled BatchPrediction that created it
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"  # on each pod of an Indexed Job


class ResolutionError(ValueError):
    """The BatchPrediction cannot be resolved against its project; the message says what to fix."""


def job_name(bp_name: str) -> str:
    """The Job of a run: deterministic, so a restarted operator finds it instead of making another."""
    return meta.child_name(bp_name, "score")


def credentials_secret(spec: batch.BatchPredictionSpec, storage: project.Storage) -> str | None:
    """The one Secret holding the pods' S3 keys: input, output and the project's storage (where the
    version is) name the same one or none."""
    named = {
        field: secret
        for field, secret in (
            ("spec.input.credentialsSecret", spec.input.credentials_secret),
            ("spec.output.credentialsSecret", spec.output.credentials_secret),
            ("the project's spec.storage.credentialsSecret", storage.credentials_secret),
        )
        if secret
    }
    if len(set(named.values())) > 1:
        listed = ", ".join(f"{field} ({secret})" for field, secret in named.items())
        raise ResolutionError(f"{listed} differ; the scoring pods read one set of S3 credentials, so use one Secret for all")
    return next(iter(named.values()), None)


def capture(
    dmon: dict[str, Any], dmon_spec: monitor.DriftMonitorSpec, *, project_name: str, storage: project.Storage
) -> scoring.Capture:
    """Where the scored rows join the inference log read by DriftMonitor ``dmon``: the log of its
    ModelDeployment, or its own BatchPrediction's, in the project's storage; at most its window's
    size of rows."""
    return scoring.Capture(
        uri=storage.uri.rstrip("/"),
        endpoint=storage.endpoint,
        namespace=dmon["metadata"]["namespace"],
        deployment=dmon_spec.source,
        project=project_name,
        rows=dmon_spec.window.size,
    )


def scoring_request(
    bp: dict[str, Any],
    spec: batch.BatchPredictionSpec,
    *,
    entry: project.ModelEntry,
    storage: project.Storage,
    capture_to: scoring.Capture | None,
    now: datetime.datetime,
) -> scoring.ScoringRequest:
    """The request every shard of run ``bp`` reads, scoring with the registered version ``entry``."""
    meta_ = bp["metadata"]
    return scoring.ScoringRequest(
        run=scoring.Run(name=meta_["name"], namespace=meta_["namespace"], uid=meta_["uid"], started_at=timestamps.format(now)),
        model=scoring.Model(version=entry.version, uri=entry.artifact_uri, endpoint=storage.endpoint),
        input=spec.input,
        output=spec.output,
        shards=spec.parallelism,
        max_failed_rows=spec.max_failed_rows,
        postprocessing=spec.postprocessing,
        capture=capture_to,
        default_credentials=storage.use_default_credentials and not credentials_secret(spec, storage),
    )


def scoring_job(
    bp: dict[str, Any],
    spec: batch.BatchPredictionSpec,
    request: scoring.ScoringRequest,
    *,
    digest: str,
    project_name: str,
    image: str,
    secret: str | None,
) -> dict[str, Any]:
    """The Indexed Job of ``spec.parallelism`` shards scoring run ``bp``, annotated with its version."""
    labels = {**meta.labels(bp, project=project_name, component=COMPONENT), RUN_LABEL: bp["metadata"]["name"]}
    env = [
        {"name": scoring.REQUEST_ENV, "value": request.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": artifact.DIGEST_ENV, "value": digest},
    ]
    env += meta.storage_env(secret)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": list(COMMAND),
        "env": env,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": meta.restricted(),
    }
    if spec.resources:
        container["resources"] = spec.resources.wire()
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(bp["metadata"]["name"]),
            "namespace": bp["metadata"]["namespace"],
            "labels": labels,
            "annotations": {VERSION_ANNOTATION: str(request.model.version)},
            "ownerReferences": [meta.owner_reference(bp)],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.parallelism,
            "parallelism": spec.parallelism,
            "backoffLimit": spec.retries,
            "activeDeadlineSeconds": int(base.parse_duration(spec.timeout).total_seconds()) or 1,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [scoring.EXIT_INVALID_INPUT]},
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": training.TRAINER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                },
            },
        },
    }


def run(bp: dict[str, Any], spec: batch.BatchPredictionSpec, *, name: str, tick: datetime.datetime) -> dict[str, Any]:
    """The run of schedule ``bp`` for ``tick``: a BatchPrediction named ``name`` with the schedule's
    spec (without the schedule), ``{date}`` in its URIs replaced by the tick's UTC date, owned by the
    schedule (deleting it deletes its runs)."""
    date = timestamps.format(tick)[:10]
    wire = spec.model_dump(by_alias=True, exclude_unset=True, mode="json")
    for section in ("input", "output"):
        wire[section]["uri"] = wire[section]["uri"].replace(batch.DATE_PLACEHOLDER, date)
    for field in ("schedule", "successfulRunsHistoryLimit", "failedRunsHistoryLimit"):
        wire.pop(field, None)
    labels = {meta.MANAGED_BY: "mlkube", meta.PROJECT: spec.project_ref, SCHEDULE_LABEL: bp["metadata"]["name"]}
    return {
        "apiVersion": base.API_VERSION,
        "kind": "BatchPrediction",
        "metadata": {
            "name": name,
            "namespace": bp["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [meta.owner_reference(bp)],
        },
        "spec": wire,
    }


def batchprediction_of(job: dict[str, Any]) -> str | None:
    """The name of the BatchPrediction a scoring Job runs (None for a Job that is not one)."""
    return ((job.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)


def schedule_of(run_: dict[str, Any]) -> str | None:
    """The name of the schedule that created run ``run_`` (None for a BatchPrediction made by hand)."""
    return ((run_.get("metadata") or {}).get("labels") or {}).get(SCHEDULE_LABEL)


def version_of(job: dict[str, Any]) -> int | None:
    """The version a scoring Job scores (None for a Job without the annotation)."""
    value = ((job.get("metadata") or {}).get("annotations") or {}).get(VERSION_ANNOTATION)
    return int(value) if value and value.isdigit() else None


def index_of(pod: dict[str, Any]) -> int | None:
    """The shard a pod of an Indexed Job scores (its completion index)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION)
    return int(value) if value and value.isdigit() else None
