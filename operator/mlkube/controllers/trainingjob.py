"""TrainingJob controller: resolves the run against its project and reports its state."""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from mlkube import k8s
from mlkube.api import errors, kinds
from mlkube.controllers import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "trainingjobs")
RETRY_MISSING_SECONDS = 30


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    generation = body["metadata"].get("generation", 1)
    current = dict(body.get("status") or {})
    try:
        spec = kinds.TRAININGJOB.parse_spec(body.get("spec", {}))
        await refs.project(memo.k8s, spec.project_ref, namespace)
    except pydantic.ValidationError as error:
        new = status.with_ready({**current, "phase": "Failed"}, ready=False, reason="InvalidSpec",
                                message=errors.describe(error), generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.TRAININGJOBS, body, new)
        raise kopf.PermanentError(new["conditions"][-1]["message"]) from error
    except refs.MissingReference as missing:
        new = status.with_ready({**current, "phase": "Pending"}, ready=False, reason=missing.reason,
                                message=missing.message, generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.TRAININGJOBS, body, new)
        raise kopf.TemporaryError(missing.message, delay=RETRY_MISSING_SECONDS) from missing
    new = status.with_ready({**current, "phase": current.get("phase", "Pending")}, ready=False, reason="Resolved",
                            message="The project exists; waiting to train", generation=generation, at=status.now())
    await status.write(memo.k8s, k8s.TRAININGJOBS, body, new)
