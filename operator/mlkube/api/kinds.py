"""The kinds: their names, printer columns and spec/status models.

This table is what ``mlkube crds`` turns into CustomResourceDefinitions and what the
controllers use to parse objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic

from mlkube.api import base, batch, deployment, modelversion, monitor, project, training


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One additionalPrinterColumn."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0

    def crd(self) -> dict[str, Any]:
        column = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


READY = PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition")
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


@dataclasses.dataclass(frozen=True)
class Kind:
    """A custom resource kind of group mlkube.io."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[base.ApiModel]
    status: type[base.ApiModel]
    columns: tuple[PrinterColumn, ...]
    description: str

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{base.GROUP}"

    def parse_spec(self, spec: dict[str, Any]) -> pydantic.BaseModel:
        """Validate a spec from the API; raises pydantic.ValidationError."""
        return self.spec.model_validate(spec)

    def parse_status(self, status: dict[str, Any] | None) -> pydantic.BaseModel:
        """Read the stored status, tolerating fields a newer operator may have written."""
        return self.status.model_validate(status or {}, strict=False)


MLPROJECT = Kind(
    kind="MLProject",
    plural="mlprojects",
    short_names=("mlp",),
    spec=project.MLProjectSpec,
    status=project.MLProjectStatus,
    columns=(
        PrinterColumn("Task", "string", ".spec.problem.task"),
        PrinterColumn("Champion", "integer", ".status.championVersion"),
        PrinterColumn("Versions", "integer", ".status.versions"),
        READY,
        AGE,
    ),
    description="An ML project: business goal, problem framing, data and storage, the model registry and the retraining policy.",
)

TRAININGJOB = Kind(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tj",),
    spec=training.TrainingJobSpec,
    status=training.TrainingJobStatus,
    columns=(
        PrinterColumn("Project", "string", ".spec.projectRef"),
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Progress", "string", ".status.progress.summary"),
        PrinterColumn("Best", "number", ".status.progress.bestScore"),
        PrinterColumn("Version", "integer", ".status.modelVersion"),
        AGE,
    ),
    description="One run of data processing, algorithm selection, tuning and evaluation that produces one model version.",
)

MODELVERSION = Kind(
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mv",),
    spec=modelversion.ModelVersionSpec,
    status=modelversion.ModelVersionStatus,
    columns=(
        PrinterColumn("Project", "string", ".spec.projectRef"),
        PrinterColumn("Version", "integer", ".spec.version"),
        PrinterColumn("Algorithm", "string", ".spec.algorithm"),
        PrinterColumn("Metric", "string", ".status.primaryMetric", "The project's primary metric on the test partition"),
        PrinterColumn("Eligible", "boolean", ".status.eligible"),
        PrinterColumn("Approval", "string", ".spec.approval.state"),
        PrinterColumn("Phase", "string", ".status.phase"),
        AGE,
    ),
    description="One registered model version: its facts, eligibility, approval, aliases and lineage.",
)

MODELDEPLOYMENT = Kind(
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("mdep",),
    spec=deployment.ModelDeploymentSpec,
    status=deployment.ModelDeploymentStatus,
    columns=(
        PrinterColumn("Project", "string", ".spec.projectRef"),
        PrinterColumn("Strategy", "string", ".spec.strategy.type"),
        PrinterColumn("Stable", "integer", ".status.stableVersion"),
        PrinterColumn("Candidate", "integer", ".status.candidateVersion"),
        PrinterColumn("Traffic", "string", ".status.trafficSummary"),
        PrinterColumn("Phase", "string", ".status.phase"),
        AGE,
    ),
    description="Serves model versions through KServe behind a router and moves traffic between them with a strategy.",
)

DRIFTMONITOR = Kind(
    kind="DriftMonitor",
    plural="driftmonitors",
    short_names=("dmon",),
    spec=monitor.DriftMonitorSpec,
    status=monitor.DriftMonitorStatus,
    columns=(
        PrinterColumn("Deployment", "string", ".spec.deploymentRef"),
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Drift Share", "number", ".status.driftShare"),
        PrinterColumn("Samples", "integer", ".status.samples"),
        PrinterColumn("Last Check", "date", ".status.lastCheckTime"),
        AGE,
    ),
    description="Compares live traffic with the training reference, explains what changed, alerts and starts retraining.",
)

BATCHPREDICTION = Kind(
    kind="BatchPrediction",
    plural="batchpredictions",
    short_names=("bp",),
    spec=batch.BatchPredictionSpec,
    status=batch.BatchPredictionStatus,
    columns=(
        PrinterColumn("Project", "string", ".spec.projectRef"),
        PrinterColumn("Version", "integer", ".status.modelVersion"),
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Rows", "integer", ".status.rowsScored", "Rows scored"),
        PrinterColumn("Failed", "integer", ".status.rowsFailed", "Rows that failed validation"),
        AGE,
    ),
    description="Offline scoring of a dataset with a registered model version, sharded in the pods of an Indexed Job.",
)

ALL = (MLPROJECT, TRAININGJOB, MODELVERSION, MODELDEPLOYMENT, DRIFTMONITOR, BATCHPREDICTION)
BY_KIND = {k.kind: k for k in ALL}
