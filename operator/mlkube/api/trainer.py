"""The trainer contract's input: a TrainingJob resolved against its MLProject.

The TrainingJob controller builds a :class:`TrainerInput` and hands it to the trainer
container as JSON (environment variable ``MLKUBE_TRAINING_SPEC``), with the image the container
runs in ``MLKUBE_TRAINER_IMAGE``. Our trainer and any bring-your-own training image read the
same document and write a :class:`TrainerResult`.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from mlkube.api import base, datasource, project, training
from mlkube.api import preprocessing as preprocessing_api
from mlkube.api import tuning as tuning_api

IMAGE_ENV = "MLKUBE_TRAINER_IMAGE"
"""Environment variable holding the image the trainer container runs (set by the operator on every
trainer Job), which the trainer records in its lineage."""
MEMORY_LIMIT_ENV = "MLKUBE_MEMORY_LIMIT"
"""Environment variable holding the trainer container's memory limit in bytes (the downward API's
limits.memory: the node's allocatable memory when no limit is set); data larger than the trainer
can hold is refused before it is read."""

STUDY_STORAGE_ENV = "MLKUBE_STUDY_STORAGE"
"""Environment variable holding the database URL of the study the trial pods share (from the
tuning.storage Secret, else the operator's default); set on trial pods only."""
INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The trial pod's index in its Indexed Job (Kubernetes sets it); index 0 writes the version."""


class ProjectInfo(base.ApiModel):
    """What the trainer needs to know about the project."""

    name: str
    """MLProject name."""
    namespace: str
    """MLProject namespace."""
    goal: project.Goal
    """Business goal, for the model card."""
    problem: project.Problem
    """Task, target, features and primary metric."""
    success_criteria: list[project.SuccessCriterion] = []
    """Criteria evaluated on the test partition."""
    fairness: project.Fairness | None = None
    """Sensitive features, favorable outcome and fairness criteria, when the project measures fairness."""


class RunInfo(base.ApiModel):
    """Lineage of the run."""

    name: str
    """TrainingJob name."""
    namespace: str
    """TrainingJob namespace."""
    uid: str
    """TrainingJob uid."""
    trigger: Literal["manual", "schedule", "drift"] = "manual"
    """Why the run exists."""
    parent_version: int | None = None
    """The champion when the run started."""


class Output(base.ApiModel):
    """Where the version's artifacts go."""

    uri: str = pydantic.Field(pattern=r"^(s3|file)://")
    """A prefix no other run writes to."""
    endpoint: str | None = None
    """S3-compatible endpoint."""


class Champion(base.ApiModel):
    """The current champion, compared with on the same holdout."""

    version: int
    """Its version."""
    artifact_uri: str
    """Where its artifacts are."""
    digest: str | None = None
    """Its digest in the registry (``MLProject.status.models[].digest``): the trainer refuses a
    champion whose ``MANIFEST.json`` does not hash to it before reading anything else."""
    metrics: dict[str, float] = {}
    """Its registered test metrics."""


class Feedback(base.ApiModel):
    """Labeled captured traffic added to the training data."""

    uri: str
    """Storage prefix of the inference log and feedback."""
    endpoint: str | None = None
    """S3-compatible endpoint."""
    deployments: list[str] = []
    """ModelDeployments whose traffic is used."""
    since: str
    """Only feedback newer than this (RFC 3339)."""


class TrainerInput(base.ApiModel):
    """Everything the trainer reads."""

    project: ProjectInfo
    """The project."""
    training_job: RunInfo
    """The run."""
    data: datasource.DataSource
    """The data (the TrainingJob's override or the project's)."""
    preprocessing: preprocessing_api.Preprocessing = pydantic.Field(default_factory=preprocessing_api.Preprocessing)
    """Data processing."""
    algorithms: list[tuning_api.Algorithm] = []
    """Candidates; empty means the registry's defaults for the task."""
    tuning: tuning_api.Tuning = pydantic.Field(default_factory=tuning_api.Tuning)
    """Search."""
    output: Output
    """Artifact destination."""
    champion: Champion | None = None
    """Current champion, if any."""
    feedback: Feedback | None = None
    """Labeled captured traffic, added to the training data when the project's retraining.includeFeedback
    is set, and used as the comparison holdout when promotion.evaluateOn is recent."""
    evaluate_on: Literal["recent", "test"] = "test"
    """Holdout on which challenger and champion are compared (the project's promotion.evaluateOn)."""
    include_feedback: bool = False
    """Whether the labeled captured traffic joins the training data."""

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainerInput:
        """Parse the document the operator wrote."""
        return cls.model_validate_json(text)


class TrainerResult(base.ApiModel):
    """What the trainer writes to its termination message (at most 4096 bytes) when it ends."""

    ok: bool
    """Whether a model version was written."""
    artifact_uri: str | None = None
    """Where the version is (success)."""
    digest: str | None = None
    """sha256 digest of the version's manifest (success)."""
    algorithm: str | None = None
    """Best algorithm (success)."""
    params: dict[str, Any] = {}
    """Its hyper-parameters (success)."""
    metrics: training.Metrics | None = None
    """Validation and test metrics (success)."""
    success_criteria_met: bool | None = None
    """Whether the success criteria hold (success)."""
    diagnostics: training.Diagnostics | None = None
    """Debugging and profiling (success)."""
    comparison: training.Comparison | None = None
    """Challenger and champion scored on the same holdout, when there is a champion."""
    lineage: training.Lineage | None = None
    """The data sources read (digest of their bytes, rows), the trainer image and mlkube version (success)."""
    fairness: training.Fairness | None = None
    """Data bias and model fairness across the sensitive features, when the project measures fairness (success)."""
    reason: str | None = None
    """DataError, InvalidSpec or TrainingFailed (failure)."""
    message: str | None = None
    """What went wrong and what to fix (failure)."""

    model_config = pydantic.ConfigDict(extra="ignore")
