"""MLProject reconciler: list the project's TrainingJobs and ModelVersions, plan the pass, execute it.

The status carries the registry, so it is written here only, with the resourceVersion it was
computed from: a concurrent writer makes the whole pass start again from a fresh read
(``execute.converge``), and the pass's Events are posted once, after the write. Passes for one
project are also serialised in-process, so that the operator's own handlers (spec changes,
finished runs, the schedule timer) do not spend their attempts on each other's conflicts.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
from collections.abc import Callable
from typing import Any

from mlkube.api import modelversion
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.plans import plan as plans
from mlkube.control.plans import project as project_plan
from mlkube.control.reconcile import execute

_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def reconcile(
    client: k8s.Client, name: str, namespace: str, *, clock: Callable[[], datetime.datetime] = timestamps.now
) -> None:
    """Bring MLProject ``namespace/name``'s status up to date with its runs; start the run of a
    due schedule tick; prune the run history. ``clock`` gives each pass its ``now``.

    Raises ``execute.RetryLater`` when the project kept changing during every attempt."""

    async def step(mlp: dict[str, Any]) -> plans.Plan:
        return project_plan.plan(mlp, await observe(client, mlp), now=clock())

    async with _locks[f"{namespace}/{name}"]:
        await execute.converge(client, k8s.MLPROJECTS, name, namespace, step)


async def observe(client: k8s.Client, mlp: dict[str, Any]) -> project_plan.Observed:
    """Everything a pass reads besides the project: its TrainingJobs, its ModelVersions and the
    namespace's ModelDeployments."""
    meta = mlp["metadata"]
    runs = await client.list(k8s.TRAININGJOBS, meta["namespace"])
    versions = await client.list(k8s.MODELVERSIONS, meta["namespace"], labels={modelversion.PROJECT_LABEL: meta["name"]})
    return project_plan.Observed(
        runs=tuple(r for r in runs if r["spec"].get("projectRef") == meta["name"]),
        versions=tuple(v for v in versions if (v.get("spec") or {}).get("projectRef") == meta["name"]),
        deployments=tuple(await client.list(k8s.MODELDEPLOYMENTS, meta["namespace"])),
    )
