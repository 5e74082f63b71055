"""ModelDeployment controller: resolves the project and the served version and reports its state."""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from mlkube import k8s
from mlkube.api import errors, kinds
from mlkube.controllers import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "modeldeployments")
RETRY_MISSING_SECONDS = 30


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    generation = body["metadata"].get("generation", 1)
    current = dict(body.get("status") or {})
    try:
        spec = kinds.MODELDEPLOYMENT.parse_spec(body.get("spec", {}))
        project = await refs.project(memo.k8s, spec.project_ref, namespace)
        version = served_version(spec, project)
    except pydantic.ValidationError as error:
        new = status.with_ready({**current, "phase": "Degraded"}, ready=False, reason="InvalidSpec",
                                message=errors.describe(error), generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.MODELDEPLOYMENTS, body, new)
        raise kopf.PermanentError(new["conditions"][-1]["message"]) from error
    except refs.MissingReference as missing:
        new = status.with_ready({**current, "phase": "Pending"}, ready=False, reason=missing.reason,
                                message=missing.message, generation=generation, at=status.now())
        await status.write(memo.k8s, k8s.MODELDEPLOYMENTS, body, new)
        raise kopf.TemporaryError(missing.message, delay=RETRY_MISSING_SECONDS) from missing
    new = status.with_ready({**current, "phase": current.get("phase", "Pending")}, ready=False, reason="VersionResolved",
                            message=f"Version {version} of project {spec.project_ref} will be served",
                            generation=generation, at=status.now())
    await status.write(memo.k8s, k8s.MODELDEPLOYMENTS, body, new)


def served_version(spec: Any, project: dict[str, Any]) -> int:
    """The version the spec asks for, checked against the project's registry."""
    registry = (project.get("status") or {}).get("models", [])
    if spec.model.track == "champion":
        champion = (project.get("status") or {}).get("championVersion")
        if champion is None:
            raise refs.MissingReference("NoChampion", f"spec.model.track: project {spec.project_ref!r} has no champion yet; train a model first")
        return champion
    if not any(entry.get("version") == spec.model.version for entry in registry):
        raise refs.MissingReference(
            "VersionNotFound",
            f"spec.model.version: project {spec.project_ref!r} has no version {spec.model.version}; "
            f"registered versions: {[e.get('version') for e in registry] or 'none'}",
        )
    return spec.model.version
