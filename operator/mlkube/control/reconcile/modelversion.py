"""ModelVersion reconciler: read the version's project, siblings and the deployments, plan, execute.

The MLProject's passes create the ModelVersions and decide the champion; this pass derives each
version's status from them (``plans.modelversion``). A project pass is followed by a pass over
each of its versions (``project_changed``), so champion and aliases show on the versions at once;
a timer refreshes which deployments serve each version and what retention retires.

A retired version's artifacts are deleted by its purge Job (``manifests.purge``) in the version's
namespace, never by the operator: the pass reads that Job (and, once it failed, its pods) and
whether the project's credentials Secret exists, and every change of the Job brings a pass
(``job_changed``) that reads its outcome.

Must not: decide, or read the tenant's storage or Secret values. What a pass does is the plan's.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from typing import Any

import pydantic

from mlkube.api import kinds, modelversion
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.manifests import meta, purge
from mlkube.control.plans import modelversion as modelversion_plan
from mlkube.control.plans import plan as plans
from mlkube.control.policy import jobstate
from mlkube.control.policy import purge as purge_policy
from mlkube.control.reconcile import execute

_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def reconcile(client: k8s.Client, name: str, namespace: str, *, image: str) -> None:
    """Bring ModelVersion ``namespace/name``'s status up to date (a no-op once it is gone);
    ``image`` runs its purge Job (the operator's own)."""

    async def step(mv: dict[str, Any]) -> plans.Plan:
        now = timestamps.now()
        return modelversion_plan.plan(mv, await observe(client, mv, image=image, now=now), now=now)

    async with _locks[f"{namespace}/{name}"]:
        await execute.converge(client, k8s.MODELVERSIONS, name, namespace, step)


async def project_changed(client: k8s.Client, project: str, namespace: str, *, image: str) -> None:
    """A pass over every ModelVersion of MLProject ``namespace/project``."""
    for mv in await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: project}):
        await reconcile(client, mv["metadata"]["name"], namespace, image=image)


async def job_changed(client: k8s.Client, job: dict[str, Any], *, image: str) -> None:
    """A pass over the ModelVersion whose purge Job ``job`` changed (it ran, finished or went)."""
    labels = job["metadata"].get("labels") or {}
    if labels.get(meta.OWNER_KIND) == "modelversion" and labels.get(meta.OWNER_NAME):
        await reconcile(client, labels[meta.OWNER_NAME], job["metadata"]["namespace"], image=image)


async def observe(client: k8s.Client, mv: dict[str, Any], *, image: str, now: datetime.datetime) -> modelversion_plan.Observed:
    """The version's project, its sibling versions and the namespace's ModelDeployments; for a
    retired version whose artifacts are due for deletion, its purge Job (with its pods once it
    failed), or, before there is one, whether the project's credentials Secret exists."""
    namespace = mv["metadata"]["namespace"]
    project = (mv.get("spec") or {}).get("projectRef")
    if not isinstance(project, str) or not project:
        return modelversion_plan.Observed(image=image)
    siblings = await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: project})
    observed = modelversion_plan.Observed(
        project=await client.get(k8s.MLPROJECTS, project, namespace),
        siblings=tuple(s for s in siblings if (s.get("spec") or {}).get("projectRef") == project),
        deployments=tuple(await client.list(k8s.MODELDEPLOYMENTS, namespace)),
        image=image,
    )
    status = mv.get("status") or {}
    if observed.project is None or not status.get("retiredAt") or status.get("artifactsDeleted"):
        return observed
    try:
        project_spec = kinds.MLPROJECT.parse_spec(observed.project.get("spec") or {})
    except pydantic.ValidationError:
        return observed  # the plan reports the invalid project
    name = purge.job_name(mv)
    job = await client.get(k8s.JOBS, name, namespace)
    if job is not None:
        failed = jobstate.condition(job, "Failed") is not None
        pods = await client.list(k8s.PODS, namespace, labels={"job-name": name}) if failed else []
        return dataclasses.replace(observed, purge_job=job, purge_pods=tuple(pods))
    if not purge_policy.is_due(status["retiredAt"], project_spec.registry.grace_period, now=now):
        return observed
    secret = project_spec.storage.credentials_secret
    missing = bool(secret) and await client.get(k8s.SECRETS, secret, namespace) is None
    return dataclasses.replace(observed, secret_missing=missing)
