"""ModelVersion reconciler: read the version's project, siblings and the deployments, plan, execute.

The MLProject's passes create the ModelVersions and decide the champion; this pass derives each
version's status from them (``plans.modelversion``). A project pass is followed by a pass over
each of its versions (``project_changed``), so champion and aliases show on the versions at once;
a timer refreshes which deployments serve each version and what retention retires.

Must not: decide. What a pass does is the plan's.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from mlkube.api import modelversion
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.plans import modelversion as modelversion_plan
from mlkube.control.plans import plan as plans
from mlkube.control.reconcile import execute

_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def reconcile(client: k8s.Client, name: str, namespace: str) -> None:
    """Bring ModelVersion ``namespace/name``'s status up to date (a no-op once it is gone)."""

    async def step(mv: dict[str, Any]) -> plans.Plan:
        return modelversion_plan.plan(mv, await observe(client, mv), now=timestamps.now())

    async with _locks[f"{namespace}/{name}"]:
        await execute.converge(client, k8s.MODELVERSIONS, name, namespace, step)


async def project_changed(client: k8s.Client, project: str, namespace: str) -> None:
    """A pass over every ModelVersion of MLProject ``namespace/project``."""
    for mv in await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: project}):
        await reconcile(client, mv["metadata"]["name"], namespace)


async def observe(client: k8s.Client, mv: dict[str, Any]) -> modelversion_plan.Observed:
    """The version's project, its sibling versions and the namespace's ModelDeployments."""
    namespace = mv["metadata"]["namespace"]
    project = (mv.get("spec") or {}).get("projectRef")
    if not isinstance(project, str) or not project:
        return modelversion_plan.Observed()
    siblings = await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: project})
    return modelversion_plan.Observed(
        project=await client.get(k8s.MLPROJECTS, project, namespace),
        siblings=tuple(s for s in siblings if (s.get("spec") or {}).get("projectRef") == project),
        deployments=tuple(await client.list(k8s.MODELDEPLOYMENTS, namespace)),
    )
