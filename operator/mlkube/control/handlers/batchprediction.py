"""BatchPrediction handlers: every trigger runs the same reconcile pass (``reconcile.batchprediction``).

Triggers: the spec (and resume/create); every change of a run's scoring Job; a change of a
scheduled run (its schedule mirrors it); a short timer while a run is Running (progress from the
shards' logs); and the tick timer of a schedule.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.manifests import batch, meta
from mlkube.control.reconcile import batchprediction

RESOURCE = (base.GROUP, base.VERSION, kinds.BATCHPREDICTION.plural)
PROGRESS_SECONDS = 2.0
TICK_SECONDS = 5.0


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(batchprediction.reconcile(memo.k8s, name, namespace, image=setup.image()))


@kopf.on.event("batch", "v1", "jobs", labels={meta.MANAGED_BY: "mlkube", meta.COMPONENT: batch.COMPONENT})
async def job_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(batchprediction.job_changed(memo.k8s, dict(body), image=setup.image()))


@kopf.on.event(*RESOURCE, labels={batch.SCHEDULE_LABEL: kopf.PRESENT})
async def run_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(batchprediction.run_changed(memo.k8s, dict(body), image=setup.image()))


@kopf.timer(
    *RESOURCE,
    interval=PROGRESS_SECONDS,
    initial_delay=PROGRESS_SECONDS,
    when=lambda spec, status, **_: not spec.get("schedule") and (status or {}).get("phase") == "Running",
)
async def running(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(batchprediction.reconcile(memo.k8s, name, namespace, image=setup.image(), read_progress=True))


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, when=lambda spec, **_: bool(spec.get("schedule")))
async def scheduled(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(batchprediction.reconcile(memo.k8s, name, namespace, image=setup.image()))
