"""Resolving references between the kinds (projectRef, deploymentRef, batchPredictionRef)."""

from __future__ import annotations

from typing import Any

import pydantic

from mlkube.api import errors, kinds
from mlkube.api import project as project_api
from mlkube.clients import k8s


class MissingReference(Exception):
    """A referenced object does not exist. The message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def project(client: k8s.Client, name: str, namespace: str, *, field: str = "spec.projectRef") -> dict[str, Any]:
    """The referenced MLProject, or MissingReference."""
    found = await client.get(k8s.MLPROJECTS, name, namespace)
    if found is None:
        raise MissingReference(
            "ProjectNotFound", f"{field}: MLProject {name!r} does not exist in namespace {namespace!r}; create it or fix {field}"
        )
    return found


async def deployment(client: k8s.Client, name: str, namespace: str, *, field: str = "spec.deploymentRef") -> dict[str, Any]:
    """The referenced ModelDeployment, or MissingReference."""
    found = await client.get(k8s.MODELDEPLOYMENTS, name, namespace)
    if found is None:
        raise MissingReference(
            "DeploymentNotFound",
            f"{field}: ModelDeployment {name!r} does not exist in namespace {namespace!r}; create it or fix {field}",
        )
    return found


async def batch_prediction(
    client: k8s.Client, name: str, namespace: str, *, field: str = "spec.batchPredictionRef"
) -> dict[str, Any]:
    """The referenced BatchPrediction, or MissingReference."""
    found = await client.get(k8s.BATCHPREDICTIONS, name, namespace)
    if found is None:
        raise MissingReference(
            "BatchPredictionNotFound",
            f"{field}: BatchPrediction {name!r} does not exist in namespace {namespace!r}; create it or fix {field}",
        )
    return found


def parsed_project(mlp: dict[str, Any]) -> project_api.MLProjectSpec:
    """The project's spec, or MissingReference when the project itself is invalid."""
    try:
        return kinds.MLPROJECT.parse_spec(mlp.get("spec", {}))
    except pydantic.ValidationError as error:
        name = mlp["metadata"]["name"]
        raise MissingReference("ProjectInvalid", f"MLProject {name!r} is invalid: {errors.describe(error)}") from error
