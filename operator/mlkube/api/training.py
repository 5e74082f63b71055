"""TrainingJob: one run of data processing, algorithm selection, tuning and evaluation.

It produces one model version. The spec is the user's; the status is the operator's. The spec's
parts live beside it: the data source and sample (``api/datasource.py``), preprocessing
(``api/preprocessing.py``) and the algorithms and their search (``api/tuning.py``).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from mlkube.api import base, datasource
from mlkube.api import preprocessing as preprocessing_api
from mlkube.api import tuning as tuning_api


class TrainingSpec(base.ApiModel):
    """What a TrainingJob runs; also the MLProject's training template (without projectRef)."""

    data: datasource.DataSource | None = None
    """Override of the project's data."""
    preprocessing: preprocessing_api.Preprocessing = pydantic.Field(default_factory=preprocessing_api.Preprocessing)
    """Data processing."""
    algorithms: list[tuning_api.Algorithm] = []
    """Candidate algorithms; empty means every registry algorithm that fits the task."""
    tuning: tuning_api.Tuning = pydantic.Field(default_factory=tuning_api.Tuning)
    """Hyper-parameter search."""
    resources: base.ResourceRequirements | None = None
    """Resources of the trainer container."""
    image: str | None = None
    """Bring-your-own training image that follows the trainer contract (see the README)."""
    command: list[str] | None = None
    """Command of the bring-your-own image."""
    timeout: base.Duration = "1h"
    """Deadline of the whole job (the Job's activeDeadlineSeconds)."""
    retries: int = pydantic.Field(1, ge=0, le=10)
    """Job-level retries on infrastructure failure (the Job's backoffLimit)."""
    queue_name: base.QueueName | None = None
    """Kueue LocalQueue the trainer Job waits in (label kueue.x-k8s.io/queue-name; the Job is
    created suspended and Kueue admits it); defaults to the project's spec.queueName."""


class TrainingJobSpec(TrainingSpec):
    """Desired state of a TrainingJob."""

    project_ref: base.ObjectName
    """Name of the MLProject in the same namespace."""
    trigger: Literal["manual", "schedule", "drift"] = "manual"
    """Why this run exists; the operator sets schedule or drift on the runs it starts."""


class Progress(base.ApiModel):
    """Live progress of the search."""

    trials_completed: int = 0
    """Trials finished so far."""
    trials_total: int = 0
    """Trials planned."""
    best_score: float | None = None
    """Best validation score so far on the primary metric."""
    stage: str | None = None
    """Current stage: loading, processing, tuning, evaluating, writing."""
    summary: str | None = None
    """Trials as done/total, for kubectl get."""
    workers: int | None = None
    """Trial pods sharing the study (tuning.workers)."""
    eta_seconds: int | None = None
    """Estimated seconds until the search ends, from the pace of the trials so far."""


class TrialSeconds(base.ApiModel):
    """Trial durations."""

    p50: float | None = None
    """Median trial time in seconds."""
    max: float | None = None
    """Longest trial time in seconds."""


class Overfitting(base.ApiModel):
    """Train-versus-validation gap of the best model."""

    train_score: float | None = None
    """Score on the training partition."""
    validation_score: float | None = None
    """Score on the validation partition."""
    flagged: bool = False
    """True when the gap suggests overfitting."""


class Diagnostics(base.ApiModel):
    """Debugging and profiling of the run."""

    trial_seconds: TrialSeconds | None = None
    """Trial durations."""
    peak_memory_mib: float | None = pydantic.Field(None, alias="peakMemoryMiB")
    """Peak memory of the trainer in MiB."""
    overfitting: Overfitting | None = None
    """Train-versus-validation gap."""
    warnings: list[str] = []
    """Warnings collected during the search, counted per algorithm."""


class Metrics(base.ApiModel):
    """Scores on the held-out partitions."""

    validation: dict[str, float] = {}
    """Metrics on the validation partition."""
    test: dict[str, float] = {}
    """Metrics on the test partition."""


class Comparison(base.ApiModel):
    """Challenger and champion scored on the same holdout by the primary metric."""

    champion_version: int
    """The champion it was compared with."""
    metric: str
    """The primary metric."""
    challenger: float | None = None
    """This run's score on the holdout."""
    champion: float | None = None
    """The champion's score on the same holdout."""
    challenger_better: bool = False
    """Whether this run scored better."""
    holdout: str = "test"
    """Which holdout: the challenger's test split, or recent labeled traffic."""


class DataLineage(base.ApiModel):
    """One data source as the trainer read it."""

    uri: str
    """The source's URI (data.uri or a data.join[] uri)."""
    digest: str = pydantic.Field(pattern=r"^sha256:[0-9a-f]{64}$")
    """sha256:<hex> of the exact bytes read from the source."""
    rows: int = pydantic.Field(ge=0)
    """Rows read from the source, before joins and processing."""


class Lineage(base.ApiModel):
    """Where a model version came from: the data it read and the code that trained it."""

    data: list[DataLineage] = []
    """The data sources in the order they were read: data.uri, then each data.join[] source."""
    image: str | None = None
    """The trainer image the Job ran (unset when the trainer was not told)."""
    mlkube_version: str
    """Version of the mlkube package that trained the model."""


class FairnessData(base.ApiModel):
    """Bias in the training data, before training: one entry per sensitive feature."""

    class_imbalance: dict[str, float] = pydantic.Field({}, alias="class_imbalance")
    """(largest group - smallest group) / (largest + smallest), in rows; 0 when groups are equal in size."""
    label_rate_difference: dict[str, float] = pydantic.Field({}, alias="label_rate_difference")
    """Highest minus lowest share of the favorable label among the groups."""
    groups: dict[str, dict[str, dict[str, float]]] = {}
    """Per feature and group: count and favorable_rate."""


class Fairness(base.ApiModel):
    """Fairness of the run: the data before training and the model on the test partition."""

    sensitive_features: list[str] = []
    """The sensitive features measured."""
    favorable_outcome: str | None = None
    """The label value counted as favorable."""
    mitigation: str = "none"
    """The mitigation applied (with its constraint, e.g. exponentiated_gradient/demographic_parity)."""
    data: FairnessData | None = None
    """Bias in the training data, before training."""
    groups: dict[str, dict[str, dict[str, float]]] = {}
    """Per feature and group, on the test partition: count, selection_rate, tpr, fpr, accuracy."""
    metrics: dict[str, float] = {}
    """Summary metrics (disparate_impact, demographic_parity_difference, equalized_odds_difference,
    equal_opportunity_difference): the worst over the sensitive features."""
    intervals: dict[str, list[float]] = {}
    """Bootstrap confidence interval [low, high] of each summary metric (95 %)."""
    tradeoff: dict[str, dict[str, float]] = {}
    """With a mitigation: each summary metric and the primary metric (and accuracy) without and
    with it, side by side ({metric: {unmitigated, mitigated}})."""
    criteria_met: bool | None = None
    """Whether the project's fairness criteria hold."""
    failed_criteria: list[str] = []
    """The fairness criteria that do not hold, e.g. ``disparate_impact >= 0.8 (measured 0.62)``."""


class TrainingJobStatus(base.StatusBase):
    """Observed state of a TrainingJob."""

    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = None
    """Pending, Running, Succeeded or Failed."""
    job_name: str | None = None
    """The batch/v1 Job running the trainer."""
    job_generation: int | None = None
    """The metadata.generation of the spec the Job runs; a later spec change does not restart it."""
    start_time: str | None = None
    """When the trainer started."""
    completion_time: str | None = None
    """When the trainer finished."""
    progress: Progress | None = None
    """Live progress while running."""
    diagnostics: Diagnostics | None = None
    """Debugging and profiling of the run."""
    best_algorithm: str | None = None
    """The algorithm of the best trial."""
    best_params: dict[str, Any] | None = pydantic.Field(None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    """Hyper-parameters of the best trial."""
    metrics: Metrics | None = None
    """Scores of the trained model."""
    success_criteria_met: bool | None = None
    """Whether the project's success criteria hold on the test partition."""
    model_version: int | None = None
    """The version number the project's registry gave this model."""
    artifact_uri: str | None = None
    """Where the model version's artifacts are."""
    digest: str | None = None
    """sha256 digest of the version's manifest."""
    comparison: Comparison | None = None
    """The run against the champion on the same holdout, when there was a champion."""
    lineage: Lineage | None = None
    """The data sources (with content digest and rows), trainer image and mlkube version of the run."""
    fairness: Fairness | None = None
    """Bias in the data and fairness of the model across the project's sensitive features."""
