"""TrainingJob handlers: every trigger runs the same reconcile pass (``reconcile.trainingjob``).

Triggers: the spec (and resume/create), every change of the run's Job, a change of its project's
registry (which gives the run its version), and a short timer while running (live progress from
the trainer's log). A project's registry change passes only over that project's finished runs
still without a version, which an in-memory index fed by the TrainingJob watch keeps
(``unregistered_runs``): no list of every run on every project event.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.manifests import meta
from mlkube.control.policy import registry
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


@kopf.index(*RESOURCE, when=lambda body, **_: registry.is_pending(body))
def unregistered_runs(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    """Finished runs without a model version, by (namespace, project); a run leaves the index
    with the event that gives it its version (or deletes it)."""
    return {(namespace, spec.get("projectRef", "")): name}


@kopf.on.event(base.GROUP, base.VERSION, kinds.MLPROJECT.plural)
async def registry_changed(body: kopf.Body, memo: kopf.Memo, unregistered_runs: kopf.Index[Any, str], **_: Any) -> None:
    project = dict(body)
    key = (project["metadata"]["namespace"], project["metadata"]["name"])
    runs = sorted(unregistered_runs.get(key, ()))
    if runs:
        await retry.retried(
            trainingjob_reconcile.reconcile_awaiting(
                memo.k8s, project, runs, image=setup.image(), study_storage=setup.study_storage()
            )
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
