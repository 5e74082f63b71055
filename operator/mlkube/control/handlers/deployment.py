"""ModelDeployment handlers: when a pass runs. What a pass does is ``reconcile.deployment``.

A pass runs on the spec or the ``mlkube.io/action`` annotation changing, every tick while a
rollout (or cleanup) is under way, on a slower resync at rest (a child changed or deleted
behind our back comes back), when one of its InferenceServices changes, when its project's
champion changes to a version it does not serve yet, and when a ModelVersion's approval or
aliases change (a pinned version approved, an alias moved).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import kopf

from mlkube.control.handlers import setup
from mlkube.control.manifests import meta
from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.reconcile import deployment as reconcile_deployment
from mlkube.control.reconcile import execute

RESOURCE = ("mlkube.io", "v1alpha1", "modeldeployments")
TICK_SECONDS = 1.0  # while a rollout runs: pauses and analysis windows are a few seconds at the least
RESYNC_SECONDS = 30.0  # at rest: converge again after a child was changed or deleted behind our back


def _rolling_out(status: kopf.Status, **_: Any) -> bool:
    return reconcile_deployment.needs_ticks(status)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", plan_deployment.ACTION_ANNOTATION))
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.reconcile(memo.k8s, name, namespace, image=setup.image()))


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, initial_delay=TICK_SECONDS, when=_rolling_out)
async def tick(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.reconcile(memo.k8s, name, namespace, image=setup.image()))


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.reconcile(memo.k8s, name, namespace, image=setup.image()))


@kopf.on.delete(*RESOURCE, optional=True)  # optional: no finalizer, nothing to clean up but our metrics
async def deleted(name: str, namespace: str, **_: Any) -> None:
    reconcile_deployment.deleted(name, namespace)


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices", labels={meta.MANAGED_BY: "mlkube"})
async def isvc_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.inference_service_changed(memo.k8s, dict(body), image=setup.image()))


@kopf.on.event("mlkube.io", "v1alpha1", "mlprojects")
async def champion_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.champion_changed(memo.k8s, dict(body), image=setup.image()))


@kopf.on.update("mlkube.io", "v1alpha1", "modelversions", field="spec")
async def approval_or_alias_changed(spec: kopf.Spec, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _retrying(reconcile_deployment.versions_changed(memo.k8s, spec.get("projectRef", ""), namespace, image=setup.image()))


async def _retrying(passes: Awaitable[None]) -> None:
    """Await ``passes``; a pass that must wait (a missing reference) is retried by Kopf later."""
    try:
        await passes
    except execute.RetryLater as retry:
        raise kopf.TemporaryError(retry.message, delay=retry.delay) from retry
