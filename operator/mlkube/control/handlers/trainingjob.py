"""TrainingJob controller: one batch/v1 Job per TrainingJob, and a status that follows it.

Reconciled on spec changes, on every change of its Job, on changes of its project's registry
(which gives the run its version), and on a short timer while running (live progress from
the trainer's log).
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf
import pydantic

from mlkube.api import errors
from mlkube.clients import k8s
from mlkube.control.handlers import setup
from mlkube.control.manifests import meta, training
from mlkube.control.policy import conditions, jobstate
from mlkube.control.reconcile import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "trainingjobs")
RETRY_SECONDS = 30
PROGRESS_SECONDS = 1.0
TRAININGJOB_LABEL = "mlkube.io/trainingjob"
# Namespaces whose trainer ServiceAccount this process has applied (applied again after a restart).
_service_accounts_applied: set[str] = set()



@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, dict(body))


@kopf.on.event("batch", "v1", "jobs", labels={meta.MANAGED_BY: "mlkube", meta.COMPONENT: "trainer"})
async def job_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    if not body.get("status"):
        return  # a Job nobody has started yet says nothing its TrainingJob does not already know
    owner = body["metadata"].get("labels", {}).get(TRAININGJOB_LABEL)
    tj = owner and await memo.k8s.get(k8s.TRAININGJOBS, owner, namespace)
    if tj:
        await reconcile(memo.k8s, tj)


@kopf.on.event("mlkube.io", "v1alpha1", "mlprojects")
async def registry_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, name: str, **_: Any) -> None:
    registered = {m.get("trainingJob") for m in (body.get("status") or {}).get("models", [])}
    for tj in await memo.k8s.list(k8s.TRAININGJOBS, namespace):
        tj_status = tj.get("status") or {}
        awaiting = tj_status.get("phase") == "Succeeded" and tj_status.get("modelVersion") is None
        if awaiting and tj["spec"].get("projectRef") == name and tj["metadata"]["name"] in registered:
            await reconcile(memo.k8s, tj)


@kopf.timer(*RESOURCE, interval=PROGRESS_SECONDS, initial_delay=PROGRESS_SECONDS,
            when=lambda status, **_: (status or {}).get("phase") == "Running")
async def running(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, dict(body), read_progress=True)


async def reconcile(client: k8s.Client, tj: dict[str, Any], *, read_progress: bool = False) -> None:
    """Bring the TrainingJob's Job into existence once, then mirror it into status."""
    name, namespace = tj["metadata"]["name"], tj["metadata"]["namespace"]
    generation = tj["metadata"].get("generation", 1)
    current = tj.get("status") or {}
    if current.get("phase") == "Failed" or current.get("modelVersion") is not None:
        await status.write(client, k8s.TRAININGJOBS, tj, with_up_to_date(current, generation, at=status.now()))
        return
    try:
        mlp = await refs.project(client, tj["spec"]["projectRef"], namespace)
        mlp_spec = refs.parsed_project(mlp)
        spec = training.effective_spec(tj["spec"], (mlp["spec"].get("training") or {}).get("template") or {})
        job = await client.get(k8s.JOBS, training.job_name(name), namespace)
        if job is None and not current.get("jobName"):
            job = await _start(client, tj, spec, mlp, mlp_spec)
            current = {**current, "jobName": job["metadata"]["name"], "jobGeneration": generation}
    except refs.MissingReference as missing:
        await _report_waiting(client, tj, missing.reason, missing.message)
        raise kopf.TemporaryError(missing.message, delay=RETRY_SECONDS) from missing
    except (pydantic.ValidationError, training.ResolutionError) as error:
        message = errors.describe(error) if isinstance(error, pydantic.ValidationError) else str(error)
        await _report_failed(client, tj, "InvalidSpec", message)
        return
    started = job is not None and ((job.get("status") or {}).get("startTime") or (job.get("status") or {}).get("conditions"))
    pods = await client.list(k8s.PODS, namespace, labels={"job-name": training.job_name(name)}) if started else []
    state = jobstate.observe(job, pods, container=training.TRAINER_CONTAINER, timeout=spec.timeout)
    if job is None:
        state = jobstate.JobState("Failed", "JobDeleted", f"Job {current.get('jobName')} was deleted before it finished")
    progress = None
    if read_progress and state.phase == "Running" and pods:
        newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        progress = jobstate.progress(await client.read_log(newest["metadata"]["name"], namespace, tail_lines=50))
    version = _registered_version(mlp, name, state)
    new = status_of(tj, current, state, progress=progress, version=version, now=status.now())
    await _announce(tj, current, new)
    await status.write(client, k8s.TRAININGJOBS, tj, new)


async def _start(client: k8s.Client, tj: dict[str, Any], spec: Any, mlp: dict[str, Any], mlp_spec: Any) -> dict[str, Any]:
    namespace = tj["metadata"]["namespace"]
    secret = training.credentials_secret(spec, mlp_spec)
    if secret and await client.get(k8s.SECRETS, secret, namespace) is None:
        raise refs.MissingReference("SecretNotFound", f"Secret {secret!r} (credentialsSecret) does not exist in namespace "
                                    f"{namespace!r}; create it with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    deployments = []
    if mlp_spec.retraining.include_feedback or mlp_spec.promotion.evaluate_on == "recent":
        deployments = [d["metadata"]["name"] for d in await client.list(k8s.MODELDEPLOYMENTS, namespace)
                       if d["spec"].get("projectRef") == mlp["metadata"]["name"]]
    document = training.trainer_input(tj, spec, mlp, mlp_spec, deployments=deployments,
                                      now=datetime.datetime.now(datetime.UTC))
    if namespace not in _service_accounts_applied:
        await client.apply(training.trainer_service_account(namespace))
        _service_accounts_applied.add(namespace)
    manifest = training.trainer_job(tj, spec, document, project_name=mlp["metadata"]["name"], image=setup.image(), secret=secret)
    try:
        job = await client.create(manifest)
    except k8s.Conflict:  # created by an earlier pass that did not get to write status
        job = await client.get(k8s.JOBS, manifest["metadata"]["name"], namespace) or manifest
    kopf.info(tj, reason="JobCreated", message=f"Created Job {job['metadata']['name']}")
    return job


def _registered_version(mlp: dict[str, Any], name: str, state: jobstate.JobState) -> int | None:
    if state.phase != "Succeeded" or state.result is None:
        return None
    for entry in (mlp.get("status") or {}).get("models", []):
        if entry.get("trainingJob") == name and entry.get("digest") == state.result.digest:
            return entry["version"]
    return None


def status_of(tj: dict[str, Any], current: dict[str, Any], state: jobstate.JobState, *,
              progress: dict[str, Any] | None, version: int | None, now: str) -> dict[str, Any]:
    """The TrainingJob's status from its Job's state. Pure."""
    generation = tj["metadata"].get("generation", 1)
    new = {**current, "phase": state.phase}
    for key, value in (("startTime", state.start_time), ("completionTime", state.completion_time)):
        if value:
            new[key] = value
    if progress:
        new["progress"] = progress
    result = state.result
    if state.phase == "Succeeded" and result is not None:
        new.update({k: v for k, v in {
            "bestAlgorithm": result.algorithm, "bestParams": result.params,
            "metrics": result.metrics.wire() if result.metrics else None,
            "successCriteriaMet": result.success_criteria_met, "artifactUri": result.artifact_uri, "digest": result.digest,
            "diagnostics": result.diagnostics.wire() if result.diagnostics else None,
            "comparison": result.comparison.wire() if result.comparison else None,
        }.items() if v is not None})
        if (new.get("progress") or {}).get("trialsTotal"):
            new["progress"] = {**new["progress"], "trialsCompleted": new["progress"]["trialsTotal"],
                               "summary": f"{new['progress']['trialsTotal']}/{new['progress']['trialsTotal']}"}
    if version is not None:
        new["modelVersion"] = version
    if state.phase == "Failed":
        new["message"] = state.message
    else:
        new.pop("message", None)
    ready = version is not None
    reason = "Registered" if ready else ("AwaitingRegistration" if state.phase == "Succeeded" else state.reason)
    message = f"Registered as version {version}" if ready else (
        "Waiting for the project to register the version" if state.phase == "Succeeded" else state.message)
    new = status.with_ready(new, ready=ready, reason=reason, message=message, generation=generation, at=now)
    return with_up_to_date(new, generation, at=now)


def with_up_to_date(current: dict[str, Any], generation: int, *, at: str) -> dict[str, Any]:
    """Say whether the spec that ran is the current one: a spec change never restarts a run silently."""
    ran = current.get("jobGeneration")
    if ran is None:
        return current
    same = ran == generation
    cond = conditions.condition(
        "UpToDate", same, "SpecRan" if same else "SpecChangedAfterStart",
        "The Job runs the current spec" if same else
        f"The spec changed after the Job started; the Job runs generation {ran}, not {generation}. "
        "Create a new TrainingJob to run the new spec.",
    )
    return {**current, "conditions": conditions.set_condition(current.get("conditions", []), cond, now=at)}


async def _announce(tj: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> None:
    """Events at the milestones: started, succeeded, failed, registered."""
    if new.get("phase") != old.get("phase"):
        if new["phase"] == "Running":
            kopf.info(tj, reason="Started", message="The trainer is running")
        elif new["phase"] == "Succeeded":
            kopf.info(tj, reason="Succeeded", message=f"Trained {new.get('bestAlgorithm')}; test metrics {(new.get('metrics') or {}).get('test')}")
        elif new["phase"] == "Failed":
            kopf.warn(tj, reason="Failed", message=new.get("message", "The trainer failed"))
    if new.get("modelVersion") is not None and old.get("modelVersion") is None:
        kopf.info(tj, reason="Registered", message=f"Registered as version {new['modelVersion']}")


async def _report_waiting(client: k8s.Client, tj: dict[str, Any], reason: str, message: str) -> None:
    current = tj.get("status") or {}
    new = status.with_ready({**current, "phase": current.get("phase") or "Pending", "message": message}, ready=False,
                            reason=reason, message=message, generation=tj["metadata"].get("generation", 1), at=status.now())
    await status.write(client, k8s.TRAININGJOBS, tj, new)


async def _report_failed(client: k8s.Client, tj: dict[str, Any], reason: str, message: str) -> None:
    current = tj.get("status") or {}
    new = status.with_ready({**current, "phase": "Failed", "message": message}, ready=False, reason=reason,
                            message=message, generation=tj["metadata"].get("generation", 1), at=status.now())
    if current.get("phase") != "Failed":
        kopf.warn(tj, reason=reason, message=message)
    await status.write(client, k8s.TRAININGJOBS, tj, new)
