"""The ModelVersion the MLProject controller creates when a version registers. Pure."""

from __future__ import annotations

from typing import Any

from mlkube.api import base, modelversion
from mlkube.api import project as project_api
from mlkube.api import training as training_api
from mlkube.control.manifests import meta


def model_version(
    mlp: dict[str, Any],
    entry: project_api.ModelEntry,
    *,
    validation_metrics: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    lineage: training_api.Lineage | None = None,
    fairness: training_api.Fairness | None = None,
) -> dict[str, Any]:
    """ModelVersion ``<project>-v<N>`` for the registry ``entry``, owned by the project ``mlp`` (not as
    its controller: deleting a project deletes its versions, but the versions are objects of their own).

    ``validation_metrics``, ``params``, ``lineage`` and ``fairness`` (its TrainingJob's
    ``status.fairness``) come from the run; a version migrated from a registry kept only in status
    has none of them."""
    project = mlp["metadata"]["name"]
    spec = modelversion.ModelVersionSpec(
        project_ref=project,
        version=entry.version,
        artifact_uri=entry.artifact_uri,
        digest=entry.digest,
        training_job=entry.training_job,
        trigger=entry.trigger,
        algorithm=entry.algorithm,
        params=params or {},
        metrics={"test": entry.metrics, "validation": validation_metrics or {}},
        fairness=fairness.wire() if fairness is not None else None,
        lineage=lineage,
    )
    return {
        "apiVersion": base.API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": modelversion.name_of(project, entry.version),
            "namespace": mlp["metadata"]["namespace"],
            "labels": {meta.MANAGED_BY: "mlkube", modelversion.PROJECT_LABEL: project},
            "ownerReferences": [{**meta.owner_reference(mlp), "controller": False}],
        },
        "spec": spec.wire(),
    }
