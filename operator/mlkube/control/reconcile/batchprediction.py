"""The BatchPrediction reconciler: observe every read, plan (``plans.batchprediction``), execute.

A pass over a run reads its MLProject, its Job and (once started) the Job's pods; on progress
passes the log tails of the running shards; and only before the Job is created what starting
needs: the project's ModelVersions (the registry's source of truth, from which the version is
chosen), whether the credentials Secret exists, and the DriftMonitor the spec names with its
ModelDeployment. A pass over a schedule reads its runs. Passes over one BatchPrediction are
serialised in-process. Everything else, the ServiceAccount, the Job, a schedule's runs and
deletions, the status and the Events, is the plan's and the executor's.

Must not: decide anything, read the tenant's storage or the Secret's values, or write anything
but through ``execute``.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pydantic

from mlkube.api import kinds, modelversion
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.manifests import batch as manifests
from mlkube.control.plans import batchprediction as batchprediction_plan
from mlkube.control.plans import plan as plans
from mlkube.control.policy import jobstate
from mlkube.control.reconcile import execute, refs

LOG_LINES = 5  # a shard prints a progress line a second; the last one tells its rows
_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def reconcile(client: k8s.Client, name: str, namespace: str, *, image: str, read_progress: bool = False) -> None:
    """One pass over BatchPrediction ``namespace/name``; ``read_progress`` also reads the running
    shards' logs. Raises ``execute.RetryLater`` while the run waits for a reference or a version."""

    async def step(obj: dict[str, Any]) -> plans.Plan:
        observed = await observe(client, obj, image=image, read_progress=read_progress)
        return batchprediction_plan.plan(obj, observed, now=timestamps.now())

    async with _locks[f"{namespace}/{name}"]:
        await execute.converge(client, k8s.BATCHPREDICTIONS, name, namespace, step)


async def job_changed(client: k8s.Client, job: dict[str, Any], *, image: str) -> None:
    """A pass over the run a scoring Job belongs to, once the Job controller has reported on it."""
    owner = batchprediction_plan.awaited_by(job)
    if owner:
        await reconcile(client, owner, job["metadata"]["namespace"], image=image)


async def run_changed(client: k8s.Client, run: dict[str, Any], *, image: str) -> None:
    """A pass over the schedule that created ``run``: it mirrors its latest run and prunes its history."""
    schedule = manifests.schedule_of(run)
    if schedule:
        await reconcile(client, schedule, run["metadata"]["namespace"], image=image)


async def observe(client: k8s.Client, obj: dict[str, Any], *, image: str, read_progress: bool) -> batchprediction_plan.Observed:
    """Every read the plan of ``obj`` may need, and no more."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    observed = batchprediction_plan.Observed(image=image)
    try:
        spec = kinds.BATCHPREDICTION.parse_spec(obj.get("spec") or {})
    except pydantic.ValidationError:
        return observed  # the plan reports the invalid spec
    if spec.schedule is not None:
        runs = await client.list(k8s.BATCHPREDICTIONS, namespace, labels={manifests.SCHEDULE_LABEL: name})
        return batchprediction_plan.Observed(image=image, runs=tuple(runs))
    if batchprediction_plan.is_finished(kinds.BATCHPREDICTION.parse_status(obj.get("status"))):
        return observed
    try:
        mlp = await refs.project(client, spec.project_ref, namespace)
        project_spec = refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        return batchprediction_plan.Observed(image=image, project=plans.Unresolved(missing.reason, missing.message))
    job = await client.get(k8s.JOBS, manifests.job_name(name), namespace)
    versions: list[dict[str, Any]] = []
    secrets: frozenset[str] = frozenset()
    monitor = None
    if batchprediction_plan.must_start(obj, job=job):
        listed = await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: spec.project_ref})
        versions = [v for v in listed if (v.get("spec") or {}).get("projectRef") == spec.project_ref]
        named = {spec.input.credentials_secret, spec.output.credentials_secret, project_spec.storage.credentials_secret} - {None}
        secrets = frozenset([s for s in sorted(named) if await client.get(k8s.SECRETS, s, namespace) is not None])
        if spec.monitor.drift_monitor_ref:
            monitor = await _monitor(client, spec.monitor.drift_monitor_ref, namespace)
    pods: list[dict[str, Any]] = []
    if jobstate.has_started(job):
        pods = await client.list(k8s.PODS, namespace, labels={"job-name": manifests.job_name(name)})
    logs: dict[int, str] = {}
    if read_progress:
        for pod in pods:
            index = manifests.index_of(pod)
            if index is not None and (pod.get("status") or {}).get("phase") == "Running":
                logs[index] = await client.read_log(pod["metadata"]["name"], namespace, tail_lines=LOG_LINES)
    return batchprediction_plan.Observed(
        image=image,
        project=mlp,
        versions=tuple(versions),
        job=job,
        pods=tuple(pods),
        logs=logs,
        secrets=secrets,
        monitor=monitor,
    )


async def _monitor(
    client: k8s.Client, name: str, namespace: str
) -> tuple[dict[str, Any], dict[str, Any] | None] | plans.Unresolved:
    """The DriftMonitor ``name`` and the ModelDeployment it watches (None when that does not exist)."""
    dmon = await client.get(k8s.DRIFTMONITORS, name, namespace)
    if dmon is None:
        return plans.Unresolved(
            "DriftMonitorNotFound",
            f"spec.monitor.driftMonitorRef: DriftMonitor {name!r} does not exist in namespace {namespace!r}; create it or fix the reference",
        )
    deployment = (dmon.get("spec") or {}).get("deploymentRef")
    mdep = await client.get(k8s.MODELDEPLOYMENTS, deployment, namespace) if isinstance(deployment, str) and deployment else None
    return dmon, mdep
