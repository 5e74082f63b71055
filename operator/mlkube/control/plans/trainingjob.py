"""The TrainingJob plan: one run, one trainer Job, and a status that mirrors it.

From the TrainingJob and what its reconciler observed, :func:`plan` decides the pass: the trainers'
ServiceAccount is applied on every pass of an unfinished run (a deleted one comes back); the
trainer Job is created once and never replaced (a spec changed after the start is reported by the
UpToDate condition, never run silently); the status is computed whole as
:class:`~mlkube.api.training.TrainingJobStatus`; the Events (JobCreated, Started, Succeeded,
Failed, Registered, InvalidSpec) follow from comparing the stored status with the new one, so a
pass that is retried after a conflicting status write announces each transition once.

Must not: do I/O or read the clock; ``now`` is an argument and every read is in ``Observed``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from mlkube.api import base, errors, kinds, project, training
from mlkube.common import timestamps
from mlkube.control.manifests import meta
from mlkube.control.manifests import training as manifests
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, jobstate

RETRY_SECONDS = 30.0
"""How soon a run waiting for its project or its credentials Secret is looked at again."""


@dataclasses.dataclass(frozen=True)
class Observed:
    """Everything one pass read about a TrainingJob's world; the plan reads nothing else."""

    image: str
    """The image of trainer Jobs whose spec brings none (the operator's own)."""
    project: dict[str, Any] | plans.Unresolved
    """The MLProject named by spec.projectRef, with a valid spec; or why it cannot be used."""
    job: dict[str, Any] | None = None
    """The run's trainer Job (``manifests.training.job_name``), None when it does not exist."""
    pods: tuple[dict[str, Any], ...] = ()
    """The Job's pods, once the Job has started."""
    log: str | None = None
    """The tail of the newest pod's log, on progress passes (None: not read)."""
    secrets: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    """Referenced Secrets that exist, with their data keys; looked up only before the Job is
    created (``start_reads``)."""
    deployments: tuple[dict[str, Any], ...] = ()
    """The namespace's ModelDeployments; listed only before the Job is created, when the trainer
    input uses the project's captured traffic (``start_reads``)."""
    study_storage: str | None = None
    """The operator's default study database URL for trial pods (``tuning.workers`` > 1)."""


@dataclasses.dataclass(frozen=True)
class StartReads:
    """What must be read before the trainer Job can be created."""

    secret: str | None = None
    """The credentials Secret whose existence is checked."""
    study_secret: str | None = None
    """The Secret of ``tuning.storage.secretRef``, whose key is checked."""
    deployments: bool = False
    """Whether the project's ModelDeployments join the trainer input."""


def plan(obj: dict[str, Any], observed: Observed, *, now: datetime.datetime) -> plans.Plan:
    """The pass for TrainingJob ``obj`` given what was ``observed`` at ``now``."""
    generation = obj["metadata"].get("generation", 1)
    stamp = timestamps.format(now)
    old = kinds.TRAININGJOB.parse_status(obj.get("status"))
    if is_finished(old):
        return plans.Plan(status=_with_up_to_date(old, generation, now=stamp))
    account = manifests.trainer_service_account(obj["metadata"]["namespace"])
    if isinstance(observed.project, plans.Unresolved):
        return _waiting(old, observed.project, generation=generation, now=stamp, apply=(account,))
    mlp = observed.project
    mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
    job, create = observed.job, ()
    try:
        spec = manifests.effective_spec(obj["spec"], _template(mlp))
        if _must_create(old, job):
            secret = manifests.credentials_secret(spec, mlp_spec)
            if secret and secret not in observed.secrets:
                missing = plans.Unresolved(
                    "SecretNotFound",
                    f"Secret {secret!r} (credentialsSecret) does not exist in namespace "
                    f"{obj['metadata']['namespace']!r}; create it with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                )
                return _waiting(old, missing, generation=generation, now=stamp, apply=(account,))
            study_missing = _study_secret_missing(spec, observed.secrets, obj["metadata"]["namespace"])
            if study_missing is not None:
                return _waiting(old, study_missing, generation=generation, now=stamp, apply=(account,))
            deployments = [
                d["metadata"]["name"] for d in observed.deployments if d["spec"].get("projectRef") == mlp["metadata"]["name"]
            ]
            document = manifests.trainer_input(obj, spec, mlp, mlp_spec, deployments=deployments, now=now)
            job = manifests.trainer_job(
                obj,
                spec,
                document,
                project_name=mlp["metadata"]["name"],
                image=observed.image,
                secret=secret,
                study_storage=observed.study_storage,
            )
            job = meta.queued(job, spec.queue_name or mlp_spec.queue_name)
            create = (job,)
    except (pydantic.ValidationError, manifests.ResolutionError) as error:
        return _invalid(old, error, generation=generation, now=stamp)
    current = old
    if job is not None and current.job_name is None:  # created now, or by a pass whose status write did not land
        ran = manifests.generation_of(job) or generation
        current = current.model_copy(update={"job_name": job["metadata"]["name"], "job_generation": ran})
    if job is None:
        state = jobstate.JobState("Failed", "JobDeleted", f"Job {current.job_name} was deleted before it finished")
    else:
        state = jobstate.observe(job, observed.pods, container=manifests.TRAINER_CONTAINER, timeout=spec.timeout)
    progress = None
    if observed.log is not None and state.phase == "Running" and observed.pods:
        progress = jobstate.progress(observed.log)
    version = _registered_version(mlp, obj["metadata"]["name"], state)
    new = _status_of(current, state, progress=progress, version=version, generation=generation, now=stamp)
    return plans.Plan(status=new, apply=(account,), create=create, events=_events(old, new))


def is_finished(status: training.TrainingJobStatus) -> bool:
    """Whether the run is over for good: it failed, or the registry gave it a version."""
    return status.phase == "Failed" or status.model_version is not None


def start_reads(obj: dict[str, Any], mlp: dict[str, Any], *, job: dict[str, Any] | None) -> StartReads:
    """What the reconciler reads before ``plan`` can create the Job: nothing once the Job exists or
    was recorded, or when the spec does not resolve (the plan then reports why)."""
    status = kinds.TRAININGJOB.parse_status(obj.get("status"))
    if is_finished(status) or not _must_create(status, job):
        return StartReads()
    try:
        mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
        spec = manifests.effective_spec(obj["spec"], _template(mlp))
        secret = manifests.credentials_secret(spec, mlp_spec)
    except (pydantic.ValidationError, manifests.ResolutionError):
        return StartReads()
    study = spec.tuning.storage
    return StartReads(
        secret=secret, study_secret=study.secret_ref.name if study is not None else None, deployments=_uses_traffic(mlp_spec)
    )


def awaits_registration(obj: dict[str, Any], mlp: dict[str, Any]) -> bool:
    """Whether TrainingJob ``obj`` succeeded without a version and project ``mlp``'s registry now
    lists it: a pass gives it its version."""
    status = kinds.TRAININGJOB.parse_status(obj.get("status"))
    if (
        status.phase != "Succeeded"
        or status.model_version is not None
        or obj["spec"].get("projectRef") != mlp["metadata"]["name"]
    ):
        return False
    registry = kinds.MLPROJECT.parse_status(mlp.get("status"))
    return any(entry.training_job == obj["metadata"]["name"] for entry in registry.models)


def _must_create(status: training.TrainingJobStatus, job: dict[str, Any] | None) -> bool:
    """A Job is created only for a run that never had one: a Job deleted mid-run fails the run."""
    return job is None and status.job_name is None


def _study_secret_missing(
    spec: training.TrainingJobSpec, secrets: Mapping[str, frozenset[str]], namespace: str
) -> plans.Unresolved | None:
    """Why the study database Secret of ``tuning.storage.secretRef`` cannot be used (None: it can):
    without it every trial pod would wait on the kubelet's config error instead."""
    study = spec.tuning.storage
    if study is None:
        return None
    ref = study.secret_ref
    keys = secrets.get(ref.name)
    if keys is not None and ref.key in keys:
        return None
    problem = f"does not exist in namespace {namespace!r}; create it" if keys is None else f"has no key {ref.key!r}; add it"
    return plans.Unresolved(
        "SecretNotFound",
        f"spec.tuning.storage.secretRef: Secret {ref.name!r} {problem} with the study database URL "
        f"(postgresql://user:password@host:5432/database) under key {ref.key!r}",
    )


def _template(mlp: dict[str, Any]) -> dict[str, Any]:
    """The project's training template as written (its defaults must not override the run's spec)."""
    return (mlp["spec"].get("training") or {}).get("template") or {}


def _uses_traffic(mlp_spec: project.MLProjectSpec) -> bool:
    return mlp_spec.retraining.include_feedback or mlp_spec.promotion.evaluate_on == "recent"


def _registered_version(mlp: dict[str, Any], name: str, state: jobstate.JobState) -> int | None:
    if state.phase != "Succeeded" or state.result is None:
        return None
    for entry in kinds.MLPROJECT.parse_status(mlp.get("status")).models:
        if entry.training_job == name and entry.digest == state.result.digest:
            return entry.version
    return None


def _status_of(
    current: training.TrainingJobStatus,
    state: jobstate.JobState,
    *,
    progress: training.Progress | None,
    version: int | None,
    generation: int,
    now: str,
) -> training.TrainingJobStatus:
    """The status from the Job's state, on top of what the stored status already says."""
    update: dict[str, Any] = {"phase": state.phase, "message": state.message if state.phase == "Failed" else None}
    if state.start_time:
        update["start_time"] = state.start_time
    if state.completion_time:
        update["completion_time"] = state.completion_time
    if progress:
        update["progress"] = progress
    result = state.result
    if state.phase == "Succeeded" and result is not None:
        outcome = {
            "best_algorithm": result.algorithm,
            "best_params": result.params,
            "metrics": result.metrics,
            "success_criteria_met": result.success_criteria_met,
            "artifact_uri": result.artifact_uri,
            "digest": result.digest,
            "diagnostics": result.diagnostics,
            "comparison": result.comparison,
            "lineage": result.lineage,
            "fairness": result.fairness,
        }
        update.update({key: value for key, value in outcome.items() if value is not None})
        done = update.get("progress", current.progress)
        if done is not None and done.trials_total:
            total = done.trials_total
            update["progress"] = done.model_copy(update={"trials_completed": total, "summary": f"{total}/{total}"})
    if version is not None:
        update["model_version"] = version
    new = current.model_copy(update=update)
    if version is not None:
        ready = (True, "Registered", f"Registered as version {version}")
    elif state.phase == "Succeeded":
        ready = (False, "AwaitingRegistration", "Waiting for the project to register the version")
    else:
        ready = (False, state.reason, state.message)
    new = conditions.with_ready(new, ready=ready[0], reason=ready[1], message=ready[2], generation=generation, now=now)
    return _with_up_to_date(new, generation, now=now)


def _with_up_to_date(status: training.TrainingJobStatus, generation: int, *, now: str) -> training.TrainingJobStatus:
    """Say whether the spec that ran is the current one: a spec change never restarts a run silently."""
    ran = status.job_generation
    if ran is None:
        return status
    same = ran == generation
    cond = conditions.condition(
        "UpToDate",
        same,
        "SpecRan" if same else "SpecChangedAfterStart",
        "The Job runs the current spec"
        if same
        else f"The spec changed after the Job started; the Job runs generation {ran}, not {generation}. "
        "Create a new TrainingJob to run the new spec.",
    )
    # Without observedGeneration, as this condition has always been written: it names both generations.
    merged = conditions.set_condition([c.wire() for c in status.conditions], cond, now=now)
    return status.model_copy(update={"conditions": [base.Condition.model_validate(c) for c in merged]})


def _waiting(
    old: training.TrainingJobStatus, missing: plans.Unresolved, *, generation: int, now: str, apply: tuple[dict[str, Any], ...]
) -> plans.Plan:
    """A run that cannot go on until a reference exists: not ready, retried later."""
    new = old.model_copy(update={"phase": old.phase or "Pending", "message": missing.message})
    new = conditions.with_ready(new, ready=False, reason=missing.reason, message=missing.message, generation=generation, now=now)
    return plans.Plan(status=new, apply=apply, retry_after=RETRY_SECONDS, retry_reason=missing.message)


def _invalid(old: training.TrainingJobStatus, error: Exception, *, generation: int, now: str) -> plans.Plan:
    """A run whose spec cannot be resolved fails for good, with a message naming the field."""
    message = errors.describe(error) if isinstance(error, pydantic.ValidationError) else str(error)
    new = old.model_copy(update={"phase": "Failed", "message": message})
    new = conditions.with_ready(new, ready=False, reason="InvalidSpec", message=message, generation=generation, now=now)
    events = () if old.phase == "Failed" else (plans.warning("InvalidSpec", message),)
    return plans.Plan(status=new, events=events)


def _events(old: training.TrainingJobStatus, new: training.TrainingJobStatus) -> tuple[plans.Event, ...]:
    """The milestones between two statuses: Job created, started, succeeded, failed, registered."""
    events = []
    if new.job_name is not None and old.job_name is None:
        events.append(plans.info("JobCreated", f"Created Job {new.job_name}"))
    if new.phase != old.phase:
        if new.phase == "Running":
            events.append(plans.info("Started", "The trainer is running"))
        elif new.phase == "Succeeded":
            test = new.metrics.test if new.metrics is not None else None
            events.append(plans.info("Succeeded", f"Trained {new.best_algorithm}; test metrics {test}"))
        elif new.phase == "Failed":
            events.append(plans.warning("Failed", new.message or "The trainer failed"))
    if new.model_version is not None and old.model_version is None:
        events.append(plans.info("Registered", f"Registered as version {new.model_version}"))
    return tuple(events)
