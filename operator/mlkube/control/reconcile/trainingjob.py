"""The TrainingJob reconciler: observe every read, plan (``plans.trainingjob``), execute.

A pass reads the run's project, its trainer Job and (once started) the Job's pods; on progress
passes the tail of the newest pod's log; and only before the Job is created, the Secrets it
names (the storage credentials, the study database's) and the project's ModelDeployments
(``plans.trainingjob.start_reads``). Everything else, the ServiceAccount, the Job, the status and the Events, is the plan's and the executor's; after
the pass, the phase it moved the run into is counted (``clients.metrics``).

Must not: decide anything, or write anything but through ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlkube.api import kinds
from mlkube.api import training as training_api
from mlkube.clients import k8s, metrics
from mlkube.common import timestamps
from mlkube.control.manifests import training
from mlkube.control.plans import plan as plans
from mlkube.control.plans import trainingjob as trainingjob_plan
from mlkube.control.policy import jobstate
from mlkube.control.reconcile import execute, refs

LOG_LINES = 50  # the trainer prints a progress line per trial; the last ones tell the state


async def reconcile(
    client: k8s.Client, name: str, namespace: str, *, image: str, read_progress: bool = False, study_storage: str | None = None
) -> None:
    """One pass over TrainingJob ``namespace/name``; ``read_progress`` also reads the trainer's log.
    ``study_storage``: the operator's default study database for trial pods. Raises
    ``execute.RetryLater`` while a reference is missing."""

    executed: list[tuple[dict[str, Any], plans.Plan]] = []

    async def step(obj: dict[str, Any]) -> plans.Plan:
        executed.clear()  # only the last attempt's plan is the one carried out
        observed = await observe(client, obj, image=image, read_progress=read_progress, study_storage=study_storage)
        planned = trainingjob_plan.plan(obj, observed, now=timestamps.now())
        executed.append((obj, planned))
        return planned

    await execute.converge(client, k8s.TRAININGJOBS, name, namespace, step)
    for obj, planned in executed:
        record_metrics(obj, planned)


def record_metrics(obj: dict[str, Any], planned: plans.Plan) -> None:
    """Count the phase the executed pass moved the run into (and a finished run's duration): the
    transition from the status it read to the one it wrote, so a retried pass counts it once."""
    before = (obj.get("status") or {}).get("phase")
    after = planned.status
    if not isinstance(after, training_api.TrainingJobStatus) or after.phase in (None, before):
        return
    seconds = None
    if after.start_time and after.completion_time:
        seconds = (timestamps.parse(after.completion_time) - timestamps.parse(after.start_time)).total_seconds()
    project = (obj.get("spec") or {}).get("projectRef") or ""
    metrics.record_training(obj["metadata"]["namespace"], project, after.phase, seconds=seconds)


async def reconcile_owner(client: k8s.Client, job: dict[str, Any], *, image: str, study_storage: str | None = None) -> None:
    """A pass over the TrainingJob a trainer Job runs, once the Job controller has reported on it
    (a Job nobody has started yet says nothing its TrainingJob does not already know)."""
    owner = training.trainingjob_of(job)
    if job.get("status") and owner:
        await reconcile(client, owner, job["metadata"]["namespace"], image=image, study_storage=study_storage)


async def reconcile_awaiting(
    client: k8s.Client, mlp: dict[str, Any], runs: Iterable[str], *, image: str, study_storage: str | None = None
) -> None:
    """A pass over each of ``runs`` (TrainingJobs of project ``mlp``, by name) that succeeded and
    that its registry now lists. The caller names the candidates (the handlers' index of finished
    runs without a version), so a project event reads only those, never every run."""
    listed = {entry.training_job for entry in kinds.MLPROJECT.parse_status(mlp.get("status")).models}
    for name in runs:
        if name not in listed:
            continue
        tj = await client.get(k8s.TRAININGJOBS, name, mlp["metadata"]["namespace"])
        if tj is not None and trainingjob_plan.awaits_registration(tj, mlp):
            await reconcile(client, tj["metadata"]["name"], tj["metadata"]["namespace"], image=image, study_storage=study_storage)


async def observe(
    client: k8s.Client, obj: dict[str, Any], *, image: str, read_progress: bool, study_storage: str | None = None
) -> trainingjob_plan.Observed:
    """Every read the plan of ``obj`` may need."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    try:
        mlp = await refs.project(client, obj["spec"]["projectRef"], namespace)
        refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        return trainingjob_plan.Observed(
            image=image, project=plans.Unresolved(missing.reason, missing.message), study_storage=study_storage
        )
    job = await client.get(k8s.JOBS, training.job_name(name), namespace)
    pods: list[dict[str, Any]] = []
    if jobstate.has_started(job):
        pods = await client.list(k8s.PODS, namespace, labels={"job-name": training.job_name(name)})
    newest, log = jobstate.newest(jobstate.leaders(pods)), None
    if read_progress and newest is not None:
        log = await client.read_log(newest["metadata"]["name"], namespace, tail_lines=LOG_LINES)
    wanted = trainingjob_plan.start_reads(obj, mlp, job=job)
    secrets: dict[str, frozenset[str]] = {}
    for secret in {wanted.secret, wanted.study_secret} - {None}:
        found = await client.get(k8s.SECRETS, secret, namespace)
        if found is not None:
            secrets[secret] = frozenset((found.get("data") or {}) | (found.get("stringData") or {}))
    deployments = await client.list(k8s.MODELDEPLOYMENTS, namespace) if wanted.deployments else []
    return trainingjob_plan.Observed(
        image=image,
        project=mlp,
        job=job,
        pods=tuple(pods),
        log=log,
        secrets=secrets,
        deployments=tuple(deployments),
        study_storage=study_storage,
    )
