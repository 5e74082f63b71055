"""MLProject controller: validates the project and keeps its status.

The registry, the champion and scheduled retraining arrive with the training controllers.
"""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from mlkube import k8s
from mlkube.api import errors, kinds
from mlkube.controllers import status

RESOURCE = ("mlkube.io", "v1alpha1", "mlprojects")


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await status.write(memo.k8s, k8s.MLPROJECTS, body, project_status(body, now=status.now()))


def project_status(body: dict[str, Any], *, now: str) -> dict[str, Any]:
    """The status of a project: Ready when its spec parses."""
    generation = body["metadata"].get("generation", 1)
    current = dict(body.get("status") or {})
    try:
        kinds.MLPROJECT.parse_spec(body.get("spec", {}))
    except pydantic.ValidationError as error:
        current["phase"] = "Failed"
        return status.with_ready(current, ready=False, reason="InvalidSpec", message=errors.describe(error), generation=generation, at=now)
    current["phase"] = "Ready"
    return status.with_ready(current, ready=True, reason="ProjectReady", message="The project is valid", generation=generation, at=now)
