"""TrainingJob handlers: every trigger runs the same reconcile pass (``reconcile.trainingjob``).

Triggers: the spec (and resume/create), every change of the run's Job, a change of its project's
registry (which gives the run its version), and a short timer while running (live progress from
the trainer's log).
"""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.manifests import meta
from mlkube.control.reconcile import trainingjob as trainingjob_reconcile

RESOURCE = (base.GROUP, base.VERSION, kinds.TRAININGJOB.plural)
PROGRESS_SECONDS = 1.0


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(
        trainingjob_reconcile.reconcile(memo.k8s, name, namespace, image=setup.image(), study_storage=setup.study_storage())
    )


@kopf.on.event("batch", "v1", "jobs", labels={meta.MANAGED_BY: "mlkube", meta.COMPONENT: "trainer"})
async def job_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(
        trainingjob_reconcile.reconcile_owner(memo.k8s, dict(body), image=setup.image(), study_storage=setup.study_storage())
    )


@kopf.on.event(base.GROUP, base.VERSION, kinds.MLPROJECT.plural)
async def registry_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(
        trainingjob_reconcile.reconcile_awaiting(memo.k8s, dict(body), image=setup.image(), study_storage=setup.study_storage())
    )


@kopf.timer(
    *RESOURCE,
    interval=PROGRESS_SECONDS,
    initial_delay=PROGRESS_SECONDS,
    when=lambda status, **_: (status or {}).get("phase") == "Running",
)
async def running(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(
        trainingjob_reconcile.reconcile(
            memo.k8s, name, namespace, image=setup.image(), study_storage=setup.study_storage(), read_progress=True
        )
    )
