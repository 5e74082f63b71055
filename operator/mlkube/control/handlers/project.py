"""MLProject handlers: every trigger runs the same reconcile pass (``reconcile.project``).

Triggers: the project's spec (and resume/create), its manual champion annotation, a TrainingJob
that finished without a model version yet, and the schedule timer of a project with
``spec.retraining.schedule``; a status that was wiped or lost; and a resync timer (retention and
what deployments serve change without the project changing). A pass over the project's
ModelVersions follows each pass but the schedule's.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.policy import registry
from mlkube.control.reconcile import modelversion as modelversion_reconcile
from mlkube.control.reconcile import project as project_reconcile

RESOURCE = (base.GROUP, base.VERSION, kinds.MLPROJECT.plural)
TICK_SECONDS = 5.0
RESYNC_SECONDS = 30.0  # retention, servedBy and the summary follow deployments that changed meanwhile


def _status_lost(status: kopf.Status, **_: Any) -> bool:
    return not status.get("observedGeneration")


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", registry.CHAMPION_ANNOTATION))
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _pass(memo, name, namespace)


@kopf.on.event(base.GROUP, base.VERSION, kinds.TRAININGJOB.plural, when=lambda body, **_: registry.is_pending(body))
async def run_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    await _pass(memo, body["spec"]["projectRef"], namespace)


@kopf.on.event(*RESOURCE, when=_status_lost)
async def status_lost(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A status wiped or lost in a restore: recompute it (the champion from the ModelVersions)."""
    await _pass(memo, name, namespace)


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await _pass(memo, name, namespace)


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, when=lambda spec, **_: bool((spec.get("retraining") or {}).get("schedule")))
async def scheduled(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(project_reconcile.reconcile(memo.k8s, name, namespace))


async def _pass(memo: kopf.Memo, name: str, namespace: str) -> None:
    """The project's pass, then its versions' (champion and aliases show on them at once)."""
    await retry.retried(project_reconcile.reconcile(memo.k8s, name, namespace))
    await retry.retried(modelversion_reconcile.project_changed(memo.k8s, name, namespace, image=setup.image()))
