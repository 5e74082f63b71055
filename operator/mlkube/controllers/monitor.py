"""DriftMonitor controller: resolves the deployment it watches and reports its state."""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from mlkube import k8s
from mlkube.api import errors, kinds
from mlkube.controllers import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "driftmonitors")
RETRY_MISSING_SECONDS = 30


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    generation = body["metadata"].get("generation", 1)
    current = dict(body.get("status") or {})
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(body.get("spec", {}))
        await refs.deployment(memo.k8s, spec.deployment_ref, namespace)
    except pydantic.ValidationError as error:
        new = status.with_ready({**current, "phase": "Pending"}, ready=False, reason="InvalidSpec",
                                message=errors.describe(error), generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.DRIFTMONITORS, body, new)
        raise kopf.PermanentError(new["conditions"][-1]["message"]) from error
    except refs.MissingReference as missing:
        new = status.with_ready({**current, "phase": "Pending"}, ready=False, reason=missing.reason,
                                message=missing.message, generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.DRIFTMONITORS, body, new)
        raise kopf.TemporaryError(missing.message, delay=RETRY_MISSING_SECONDS) from missing
    new = status.with_ready({**current, "phase": current.get("phase", "Pending")}, ready=False, reason="DeploymentResolved",
                            message=f"Watching ModelDeployment {spec.deployment_ref}; no analysis has run yet",
                            generation=generation, at=status.now())
    await status.write(memo.k8s, k8s.DRIFTMONITORS, body, new)
