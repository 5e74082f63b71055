"""The BatchPrediction plan: one run, one Indexed Job of scoring shards, a status that sums them;
or, for a BatchPrediction with a ``schedule``, one run per tick.

A run starts once: the version is chosen as a ModelDeployment chooses it (``selection.select``
over the project's ModelVersions: a pinned version or an alias must be eligible or approved, the
champion is read now and recorded in ``status.modelVersion``), the Secret and the DriftMonitor the
spec names must exist, and the Job is created with the version's registered digest
(``manifests.batch``). From then on the Job is the run: its shards' answers and progress become
the status (``policy.shards``), and its end is final: a Succeeded or Failed run is never started
again. A Job deleted before it finished fails the run.

A schedule never scores itself. Each due tick (``policy.schedule``, missed ticks collapse into the
latest) creates a run named after the tick, so a tick can never start two; finished runs beyond the
history limits are deleted; the schedule's status mirrors its latest run.

Events follow from comparing the stored status with the new one (Started, Succeeded, Failed,
RunCreated, InvalidSpec), so a pass retried after a conflicting status write announces each
transition once.

Must not: do I/O or read the clock; ``now`` is an argument and every read is in ``Observed``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from mlkube.api import base, batch, errors, kinds
from mlkube.common import timestamps
from mlkube.control.manifests import batch as manifests
from mlkube.control.manifests import meta, training
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, registry, schedule, selection, shards

RETRY_SECONDS = 15.0
"""How soon a run waiting for its project, version, Secret or DriftMonitor is looked at again."""


@dataclasses.dataclass(frozen=True)
class Observed:
    """Everything one pass read about a BatchPrediction's world; the plan reads nothing else."""

    image: str
    """The image the shards run (the operator's own)."""
    project: dict[str, Any] | plans.Unresolved | None = None
    """The MLProject named by spec.projectRef, with a valid spec; or why it cannot be used (None: not
    read, for a schedule or a finished run)."""
    versions: tuple[dict[str, Any], ...] = ()
    """The project's ModelVersions (the registry's source of truth); read before the Job exists."""
    job: dict[str, Any] | None = None
    """The run's Job (``manifests.batch.job_name``), None when it does not exist."""
    pods: tuple[dict[str, Any], ...] = ()
    """The Job's pods, once it has started."""
    logs: Mapping[int, str] = dataclasses.field(default_factory=dict)
    """The log tails of the running shards by index, on progress passes."""
    secrets: frozenset[str] = frozenset()
    """Referenced Secrets that exist; looked up only before the Job is created."""
    monitor: tuple[dict[str, Any], dict[str, Any] | None] | plans.Unresolved | None = None
    """spec.monitor.driftMonitorRef's DriftMonitor and its ModelDeployment, or why not (None: no
    monitor, or not read); read before the Job is created."""
    runs: tuple[dict[str, Any], ...] = ()
    """A schedule's runs (the BatchPredictions it created)."""


def plan(obj: dict[str, Any], observed: Observed, *, now: datetime.datetime) -> plans.Plan:
    """The pass for BatchPrediction ``obj`` given what was ``observed`` at ``now``."""
    generation = obj["metadata"].get("generation", 1)
    stamp = timestamps.format(now)
    old = kinds.BATCHPREDICTION.parse_status(obj.get("status"))
    try:
        spec = kinds.BATCHPREDICTION.parse_spec(obj["spec"])
    except pydantic.ValidationError as error:
        return _invalid(old, errors.describe(error), generation=generation, now=stamp)
    if spec.schedule is not None:
        return _scheduled(obj, spec, old, observed, generation=generation, now=now)
    if is_finished(old):
        return plans.Plan(status=old)
    account = training.trainer_service_account(obj["metadata"]["namespace"])
    if observed.project is None or isinstance(observed.project, plans.Unresolved):
        missing = observed.project or plans.Unresolved("ProjectNotRead", "Waiting to read spec.projectRef")
        return _waiting(old, missing, generation=generation, now=stamp, apply=(account,))
    job, create, current = observed.job, (), old
    if job is None and old.job_name is None:
        started = _start(obj, spec, observed, now=now)
        if isinstance(started, plans.Unresolved):
            return _waiting(old, started, generation=generation, now=stamp, apply=(account,))
        if isinstance(started, str):
            return _invalid(old, started, generation=generation, now=stamp)
        job, create = started, (started,)
    if job is not None and current.job_name is None:  # created now, or by a pass whose status write did not land
        current = current.model_copy(
            update={
                "job_name": job["metadata"]["name"],
                "model_version": manifests.version_of(job),
                "output_uri": spec.output.uri,
            }
        )
    if job is None:
        state = shards.RunState("Failed", "JobDeleted", f"Job {current.job_name} was deleted before it finished")
    else:
        state = shards.observe(
            job,
            observed.pods,
            logs=observed.logs,
            total=spec.parallelism,
            max_failed_rows=spec.max_failed_rows,
            timeout=spec.timeout,
        )
    new = _status_of(current, state, total=spec.parallelism, generation=generation, now=stamp)
    return plans.Plan(status=new, apply=(account,), create=create, events=_events(old, new, spec))


def is_finished(status: batch.BatchPredictionStatus) -> bool:
    """Whether the run is over for good."""
    return status.phase in ("Succeeded", "Failed")


def must_start(obj: dict[str, Any], *, job: dict[str, Any] | None) -> bool:
    """Whether a pass over ``obj`` may create its Job (and so must read what starting needs): a run
    that never had one. A Job deleted mid-run fails the run; it is never made again."""
    status = kinds.BATCHPREDICTION.parse_status(obj.get("status"))
    return job is None and status.job_name is None and not is_finished(status)


def _start(
    obj: dict[str, Any], spec: batch.BatchPredictionSpec, observed: Observed, *, now: datetime.datetime
) -> dict[str, Any] | plans.Unresolved | str:
    """The run's Job, or what it waits for, or why the spec cannot run (str)."""
    mlp = observed.project
    mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
    mlp_status = kinds.MLPROJECT.parse_status(mlp.get("status"))
    known = registry.known(observed.versions, mlp_status.models, criteria=mlp_spec.success_criteria)
    chosen = selection.select(
        spec.model,
        project_name=spec.project_ref,
        champion=mlp_status.champion_version,
        known=known,
        objects=observed.versions,
        criteria=mlp_spec.success_criteria,
    )
    if isinstance(chosen, selection.Refused):
        return plans.Unresolved(chosen.reason, chosen.message)
    entry = next(m for m in known if m.version == chosen)
    try:
        secret = manifests.credentials_secret(spec, mlp_spec.storage)
    except manifests.ResolutionError as error:
        return str(error)
    namespace = obj["metadata"]["namespace"]
    if secret and secret not in observed.secrets:
        return plans.Unresolved(
            "SecretNotFound",
            f"Secret {secret!r} (credentialsSecret) does not exist in namespace {namespace!r}; "
            "create it with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    capture_to = None
    if spec.monitor.drift_monitor_ref:
        found = _monitored(spec, observed.monitor, bp_name=obj["metadata"]["name"])
        if not isinstance(found, tuple):
            return found
        dmon, dmon_spec = found
        capture_to = manifests.capture(dmon, dmon_spec, project_name=spec.project_ref, storage=mlp_spec.storage)
    request = manifests.scoring_request(obj, spec, entry=entry, storage=mlp_spec.storage, capture_to=capture_to, now=now)
    job = manifests.scoring_job(
        obj, spec, request, digest=entry.digest, project_name=spec.project_ref, image=observed.image, secret=secret
    )
    return meta.queued(job, spec.queue_name or mlp_spec.queue_name)


def _monitored(
    spec: batch.BatchPredictionSpec,
    monitor: tuple[dict[str, Any], dict[str, Any] | None] | plans.Unresolved | None,
    *,
    bp_name: str,
) -> tuple[dict[str, Any], Any] | plans.Unresolved | str:
    """spec.monitor.driftMonitorRef's DriftMonitor and its parsed spec, once it watches a
    deployment of the same project, or this BatchPrediction (``bp_name``) itself."""
    ref = spec.monitor.drift_monitor_ref
    if monitor is None:
        return plans.Unresolved("DriftMonitorNotRead", f"Waiting to read DriftMonitor {ref!r}")
    if isinstance(monitor, plans.Unresolved):
        return monitor
    dmon, mdep = monitor
    try:
        dmon_spec = kinds.DRIFTMONITOR.parse_spec(dmon.get("spec") or {})
    except pydantic.ValidationError as error:
        return plans.Unresolved(
            "DriftMonitorInvalid", f"spec.monitor.driftMonitorRef: DriftMonitor {ref!r} is invalid: {errors.describe(error)}"
        )
    if dmon_spec.batch_prediction_ref is not None:
        if dmon_spec.batch_prediction_ref != bp_name:
            return (
                f"spec.monitor.driftMonitorRef: DriftMonitor {ref!r} watches BatchPrediction "
                f"{dmon_spec.batch_prediction_ref!r}, not this one; name a DriftMonitor whose batchPredictionRef is {bp_name!r}"
            )
        return dmon, dmon_spec
    if mdep is None:
        return plans.Unresolved(
            "DeploymentNotFound",
            f"spec.monitor.driftMonitorRef: DriftMonitor {ref!r} watches ModelDeployment {dmon_spec.deployment_ref!r}, "
            "which does not exist; the scored rows join that deployment's inference log",
        )
    served = (mdep.get("spec") or {}).get("projectRef")
    if served != spec.project_ref:
        return (
            f"spec.monitor.driftMonitorRef: DriftMonitor {ref!r} watches ModelDeployment {dmon_spec.deployment_ref!r} of "
            f"project {served!r}, not of {spec.project_ref!r}; name a DriftMonitor of this project"
        )
    return dmon, dmon_spec


def _status_of(
    current: batch.BatchPredictionStatus, state: shards.RunState, *, total: int, generation: int, now: str
) -> batch.BatchPredictionStatus:
    """The status from the run's state, on top of what the stored status already says."""
    update: dict[str, Any] = {
        "phase": state.phase,
        "message": state.message if state.phase == "Failed" else None,
        "shards": batch.Shards(done=state.done, total=total),
        "rows_scored": state.rows_scored,
        "rows_failed": state.rows_failed,
        "failure_reasons": [batch.FailureReason(reason=r.reason, rows=r.rows) for r in state.reasons],
    }
    if state.start_time:
        update["start_time"] = state.start_time
    if state.completion_time:
        update["completion_time"] = state.completion_time
    new = current.model_copy(update=update)
    if state.phase == "Succeeded":
        ready = (True, "Scored", f"{state.message} with version {new.model_version} into {new.output_uri}")
    else:
        ready = (False, state.reason, state.message)
    return conditions.with_ready(new, ready=ready[0], reason=ready[1], message=ready[2], generation=generation, now=now)


def _waiting(
    old: batch.BatchPredictionStatus,
    missing: plans.Unresolved,
    *,
    generation: int,
    now: str,
    apply: tuple[dict[str, Any], ...] = (),
) -> plans.Plan:
    """A run that cannot start until a reference exists or a version is usable: not ready, retried later."""
    new = old.model_copy(update={"phase": old.phase or "Pending", "message": missing.message})
    new = conditions.with_ready(new, ready=False, reason=missing.reason, message=missing.message, generation=generation, now=now)
    return plans.Plan(status=new, apply=apply, retry_after=RETRY_SECONDS, retry_reason=missing.message)


def _invalid(old: batch.BatchPredictionStatus, message: str, *, generation: int, now: str) -> plans.Plan:
    """A spec that cannot run fails for good, with a message naming the field."""
    new = old.model_copy(update={"phase": "Failed", "message": message})
    new = conditions.with_ready(new, ready=False, reason="InvalidSpec", message=message, generation=generation, now=now)
    events = () if old.phase == "Failed" else (plans.warning("InvalidSpec", message),)
    return plans.Plan(status=new, events=events)


def _events(
    old: batch.BatchPredictionStatus, new: batch.BatchPredictionStatus, spec: batch.BatchPredictionSpec
) -> tuple[plans.Event, ...]:
    """The milestones between two statuses: the run started (its Job created), succeeded or failed."""
    events = []
    if new.job_name is not None and old.job_name is None:
        events.append(
            plans.info(
                "Started",
                f"Scoring {spec.input.uri} with version {new.model_version} in {spec.parallelism} shards "
                f"(Job {new.job_name}) into {spec.output.uri}",
            )
        )
    if new.phase != old.phase and new.phase == "Succeeded":
        failed = f"; {new.rows_failed} rows failed validation" if new.rows_failed else ""
        events.append(
            plans.info(
                "Succeeded", f"Scored {new.rows_scored} rows with version {new.model_version} into {new.output_uri}{failed}"
            )
        )
    elif new.phase != old.phase and new.phase == "Failed":
        events.append(plans.warning("Failed", new.message or "The run failed"))
    return tuple(events)


# -- schedules --------------------------------------------------------------------------------


def _scheduled(
    obj: dict[str, Any],
    spec: batch.BatchPredictionSpec,
    old: batch.BatchPredictionStatus,
    observed: Observed,
    *,
    generation: int,
    now: datetime.datetime,
) -> plans.Plan:
    """A schedule's pass: the run of a due tick, the history limits, the latest run's state."""
    stamp = timestamps.format(now)
    if not schedule.is_valid(spec.schedule):
        return _invalid(
            old, f"spec.schedule: {spec.schedule!r} is not a valid five-field cron expression", generation=generation, now=stamp
        )
    created = timestamps.parse(obj["metadata"]["creationTimestamp"])
    last = timestamps.parse(old.last_schedule_time) if old.last_schedule_time else None
    tick = schedule.due_tick(spec.schedule, last=last, since=created, now=now)
    update: dict[str, Any] = {"next_schedule_time": timestamps.format(schedule.next_tick(spec.schedule, after=now))}
    create: tuple[dict[str, Any], ...] = ()
    events: list[plans.Event] = []
    runs = list(observed.runs)
    if tick is not None:
        name = schedule.run_name(obj["metadata"]["name"], tick)
        run = manifests.run(obj, spec, name=name, tick=tick)
        create = (run,)
        update.update(last_schedule_time=timestamps.format(tick), last_run=name)
        events.append(plans.info("RunCreated", f"Created BatchPrediction {name} for the tick of {timestamps.format(tick)}"))
        if all(r["metadata"]["name"] != name for r in runs):
            runs.append(run)
    latest = max(runs, key=lambda r: r["metadata"]["name"], default=None)
    if latest is not None:
        update.update(_mirrored(latest))
    new = old.model_copy(update=update)
    message = f"Next run at {update['next_schedule_time']}" + (f"; latest run {new.last_run}" if new.last_run else "")
    new = conditions.with_ready(new, ready=True, reason="Scheduled", message=message, generation=generation, now=stamp)
    return plans.Plan(status=new, create=create, delete=_pruned(spec, observed.runs), events=tuple(events))


def _mirrored(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of a schedule's status that show its latest run."""
    status = kinds.BATCHPREDICTION.parse_status(run.get("status"))
    return {
        "last_run": run["metadata"]["name"],
        "phase": status.phase or "Pending",
        "model_version": status.model_version,
        "shards": status.shards,
        "rows_scored": status.rows_scored,
        "rows_failed": status.rows_failed,
        "failure_reasons": status.failure_reasons,
        "output_uri": status.output_uri,
        "message": status.message,
    }


def _pruned(spec: batch.BatchPredictionSpec, runs: tuple[dict[str, Any], ...]) -> tuple[plans.ObjectRef, ...]:
    """The oldest finished runs beyond the history limits (names sort by tick)."""
    refs = []
    for phase, limit in (("Succeeded", spec.successful_runs_history_limit), ("Failed", spec.failed_runs_history_limit)):
        finished = sorted((r for r in runs if (r.get("status") or {}).get("phase") == phase), key=lambda r: r["metadata"]["name"])
        for run in finished[: max(0, len(finished) - limit)]:
            refs.append(
                plans.ObjectRef(base.API_VERSION, "BatchPrediction", run["metadata"]["name"], run["metadata"]["namespace"])
            )
    return tuple(refs)


def awaited_by(job: dict[str, Any]) -> str | None:
    """The BatchPrediction a scoring Job's change concerns (once the Job controller has reported on it)."""
    return manifests.batchprediction_of(job) if job.get("status") else None
