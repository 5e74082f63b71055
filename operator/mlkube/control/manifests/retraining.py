"""The TrainingJob an automatic retraining starts (a schedule tick or a drift episode). Pure."""

from __future__ import annotations

from typing import Any, Literal

from mlkube.api import base
from mlkube.api import project as project_api
from mlkube.control.manifests import meta

TRIGGER = "mlkube.io/trigger"
SOURCE = "mlkube.io/source"


def training_job(
    mlp: dict[str, Any],
    spec: project_api.MLProjectSpec,
    *,
    name: str,
    trigger: Literal["schedule", "drift"],
    source: str | None = None,
) -> dict[str, Any]:
    """A TrainingJob named ``name`` from the project's ``spec.training.template``, owned (not
    controlled) by the project ``mlp``. ``source`` names what started it (a DriftMonitor)."""
    template = spec.training.template.model_dump(by_alias=True, exclude_unset=True, mode="json")
    labels = {meta.MANAGED_BY: "mlkube", meta.PROJECT: mlp["metadata"]["name"], TRIGGER: trigger}
    if source:
        labels[SOURCE] = source
    return {
        "apiVersion": base.API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": mlp["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [{**meta.owner_reference(mlp), "controller": False}],
        },
        "spec": {**template, "projectRef": mlp["metadata"]["name"], "trigger": trigger},
    }
