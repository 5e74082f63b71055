"""ModelVersion handlers: a pass over the version, and over its project when the user changed
the version's approval or aliases (which may change the champion or move an alias); a pass over
the version whose purge Job changed. The project's resync timer refreshes every version
(``handlers.project``)."""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.manifests import meta, purge
from mlkube.control.reconcile import modelversion as modelversion_reconcile
from mlkube.control.reconcile import project as project_reconcile

RESOURCE = (base.GROUP, base.VERSION, kinds.MODELVERSION.plural)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
async def registered(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(modelversion_reconcile.reconcile(memo.k8s, name, namespace, image=setup.image()))


@kopf.on.update(*RESOURCE, field="spec")
async def decided(name: str, namespace: str, spec: kopf.Spec, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(modelversion_reconcile.reconcile(memo.k8s, name, namespace, image=setup.image()))
    if spec.get("projectRef"):
        await retry.retried(project_reconcile.reconcile(memo.k8s, spec["projectRef"], namespace))
        await retry.retried(modelversion_reconcile.project_changed(memo.k8s, spec["projectRef"], namespace, image=setup.image()))


@kopf.on.event("batch", "v1", "jobs", labels={meta.MANAGED_BY: "mlkube", meta.COMPONENT: purge.COMPONENT})
async def purge_job_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(modelversion_reconcile.job_changed(memo.k8s, dict(body), image=setup.image()))
