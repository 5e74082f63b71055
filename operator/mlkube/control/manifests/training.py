"""What a TrainingJob becomes: the trainer's input document and the batch/v1 Job that runs it.

The trainer contract (see ``mlkube.trainer``): the resolved spec arrives as JSON in
``MLKUBE_TRAINING_SPEC`` and the image the container runs in ``MLKUBE_TRAINER_IMAGE``; progress
leaves as ``MLKUBE_PROGRESS {...}`` lines on stdout; the result is written to the termination
message; artifacts go to ``output.uri``. A bring-your-own image (``spec.image`` /
``spec.command``) gets exactly the same.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from mlkube.api import base, kinds, project, trainer, training
from mlkube.api import tuning as tuning_api
from mlkube.common import timestamps
from mlkube.control.manifests import meta

TRAINER_SERVICE_ACCOUNT = "mlkube-trainer"
TRAINER_CONTAINER = "trainer"
TRAININGJOB_LABEL = "mlkube.io/trainingjob"  # on the Job and its pods: the TrainingJob they run
GENERATION_ANNOTATION = "mlkube.io/trainingjob-generation"  # on the Job: the spec generation it runs
TRAINER_COMMAND = ("python", "-m", "mlkube.trainer")
SPEC_ENV = "MLKUBE_TRAINING_SPEC"
EXIT_INVALID_INPUT = 2  # the trainer's exit code for bad input: retrying cannot help


class ResolutionError(ValueError):
    """The TrainingJob cannot be resolved against its project; the message says what to fix."""


def effective_spec(tj_spec: dict[str, Any], template: dict[str, Any]) -> training.TrainingJobSpec:
    """The TrainingJob's spec with the project's template filling what the user left out."""
    return training.TrainingJobSpec.model_validate(deep_merge(template, tj_spec))


def deep_merge(base_: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base_``; nested mappings merge, everything else is replaced."""
    merged = copy.deepcopy(base_)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def output_uri(storage_uri: str, tj: dict[str, Any]) -> str:
    """A prefix only this run writes to: ``<storage>/runs/<name>-<uid8>/``."""
    meta_ = tj["metadata"]
    return f"{storage_uri.rstrip('/')}/runs/{meta_['name']}-{meta_['uid'][:8]}/"


def trainer_input(
    tj: dict[str, Any],
    spec: training.TrainingJobSpec,
    mlp: dict[str, Any],
    mlp_spec: project.MLProjectSpec,
    *,
    deployments: list[str],
    now: datetime.datetime,
) -> trainer.TrainerInput:
    """The document the trainer reads. ``deployments``: the project's ModelDeployments, whose
    captured and labeled traffic can join the training data or serve as the comparison holdout."""
    registry = kinds.MLPROJECT.parse_status(mlp.get("status"))
    champion_version = registry.champion_version
    champion = next((e for e in registry.models if e.version == champion_version), None)
    return trainer.TrainerInput(
        project=trainer.ProjectInfo(
            name=mlp["metadata"]["name"],
            namespace=mlp["metadata"]["namespace"],
            goal=mlp_spec.goal,
            problem=mlp_spec.problem,
            success_criteria=mlp_spec.success_criteria,
            fairness=mlp_spec.fairness,
        ),
        training_job=trainer.RunInfo(
            name=tj["metadata"]["name"],
            namespace=tj["metadata"]["namespace"],
            uid=tj["metadata"]["uid"],
            trigger=spec.trigger,
            parent_version=champion_version,
        ),
        data=spec.data or mlp_spec.data,
        preprocessing=spec.preprocessing,
        algorithms=spec.algorithms,
        tuning=spec.tuning,
        output=trainer.Output(uri=output_uri(mlp_spec.storage.uri, tj), endpoint=mlp_spec.storage.endpoint),
        champion=trainer.Champion(
            version=champion.version, artifact_uri=champion.artifact_uri, digest=champion.digest, metrics=champion.metrics
        )
        if champion
        else None,
        feedback=_feedback(mlp_spec, deployments, now),
        include_feedback=mlp_spec.retraining.include_feedback,
        evaluate_on=mlp_spec.promotion.evaluate_on,
    )


def _feedback(mlp_spec: project.MLProjectSpec, deployments: list[str], now: datetime.datetime) -> trainer.Feedback | None:
    wanted = mlp_spec.retraining.include_feedback or mlp_spec.promotion.evaluate_on == "recent"
    if not wanted or not deployments:
        return None
    since = now - base.parse_duration(mlp_spec.retraining.feedback_window)
    return trainer.Feedback(
        uri=mlp_spec.storage.uri.rstrip("/"),
        endpoint=mlp_spec.storage.endpoint,
        deployments=sorted(deployments),
        since=timestamps.format(since),
    )


def credentials_secret(spec: training.TrainingJobSpec, mlp_spec: project.MLProjectSpec) -> str | None:
    """The one Secret holding the trainer's S3 credentials, if any."""
    data = (spec.data or mlp_spec.data).credentials_secret
    storage = mlp_spec.storage.credentials_secret
    if data and storage and data != storage:
        raise ResolutionError(
            f"data.credentialsSecret ({data}) and spec.storage.credentialsSecret ({storage}) differ; the trainer "
            "reads one set of S3 credentials, so use one Secret for both"
        )
    return data or storage


def job_name(tj_name: str) -> str:
    """The Job of a TrainingJob: deterministic, so a restarted operator finds it instead of making another."""
    return meta.child_name(tj_name, "train")


def trainer_job(
    tj: dict[str, Any],
    spec: training.TrainingJobSpec,
    document: trainer.TrainerInput,
    *,
    project_name: str,
    image: str,
    secret: str | None,
    study_storage: str | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job running the trainer for one TrainingJob, annotated with the generation of
    the spec it runs; the container is told its own image (``api.trainer.IMAGE_ENV``) for the lineage.

    With ``tuning.workers`` > 1 the Job is Indexed, one trial pod per index all running at once
    (``JOB_COMPLETION_INDEX``; index 0 writes the version), each index retried ``spec.retries``
    times (``backoffLimitPerIndex``; the local runtime counts ``backoffLimit`` over all of them),
    and every pod gets the study database's URL in ``api.trainer.STUDY_STORAGE_ENV``: from the
    ``tuning.storage`` Secret by ``secretKeyRef`` (never in the spec), else ``study_storage``, the
    operator's default; with neither, ResolutionError naming tuning.storage."""
    labels = {**meta.labels(tj, project=project_name, component="trainer"), TRAININGJOB_LABEL: tj["metadata"]["name"]}
    runs = spec.image or image
    env = [
        {"name": SPEC_ENV, "value": document.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": trainer.IMAGE_ENV, "value": runs},
        {
            "name": trainer.MEMORY_LIMIT_ENV,
            "valueFrom": {"resourceFieldRef": {"containerName": TRAINER_CONTAINER, "resource": "limits.memory"}},
        },
    ]
    env += meta.storage_env(secret)
    env += _study_env(spec.tuning, study_storage)
    workers = spec.tuning.workers
    container: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": runs,
        "command": list(spec.command or TRAINER_COMMAND),
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
            "name": job_name(tj["metadata"]["name"]),
            "namespace": tj["metadata"]["namespace"],
            "labels": labels,
            "annotations": {GENERATION_ANNOTATION: str(tj["metadata"].get("generation", 1))},
            "ownerReferences": [meta.owner_reference(tj)],
        },
        "spec": {
            **(_indexed(workers, spec.retries) if workers > 1 else {}),
            "backoffLimit": spec.retries * workers,
            "activeDeadlineSeconds": int(base.parse_duration(spec.timeout).total_seconds()) or 1,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": TRAINER_CONTAINER, "operator": "In", "values": [EXIT_INVALID_INPUT]},
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": TRAINER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                },
            },
        },
    }


def _indexed(workers: int, retries: int) -> dict[str, Any]:
    return {"completionMode": "Indexed", "completions": workers, "parallelism": workers, "backoffLimitPerIndex": retries}


def _study_env(tuning: tuning_api.Tuning, default: str | None) -> list[dict[str, Any]]:
    """The study database of trial pods: the tuning.storage Secret's key, else the operator's default."""
    if tuning.storage is not None:
        ref = tuning.storage.secret_ref
        return [{"name": trainer.STUDY_STORAGE_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]
    if tuning.workers == 1:
        return []
    if not default:
        raise ResolutionError(
            f"tuning.workers: {tuning.workers} trial pods share one Optuna study and this operator has no default study "
            "database; set tuning.storage.secretRef to a Secret whose key holds a database URL "
            "(postgresql://user:password@host:5432/db), or set tuning.workers: 1"
        )
    return [{"name": trainer.STUDY_STORAGE_ENV, "value": default}]


def trainer_service_account(namespace: str) -> dict[str, Any]:
    """The trainers' ServiceAccount: bound to no role, since the trainer never calls the API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": TRAINER_SERVICE_ACCOUNT, "namespace": namespace, "labels": {meta.MANAGED_BY: "mlkube"}},
        "automountServiceAccountToken": False,
    }


def trainingjob_of(job: dict[str, Any]) -> str | None:
    """The name of the TrainingJob a trainer Job runs (None for a Job that is not one)."""
    return ((job.get("metadata") or {}).get("labels") or {}).get(TRAININGJOB_LABEL)


def generation_of(job: dict[str, Any]) -> int | None:
    """The TrainingJob generation a trainer Job runs (None for a Job made before it was recorded)."""
    value = ((job.get("metadata") or {}).get("annotations") or {}).get(GENERATION_ANNOTATION)
    return int(value) if value and value.isdigit() else None
