"""MLProject: the business goal, the problem framing, data and storage, the registry, retraining."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import pydantic

from mlkube.api import base
from mlkube.api import datasource as datasource_api
from mlkube.api import training as training_api

# The metrics a project of each task may name as primaryMetric (what "better" means for it).
PRIMARY_METRICS = {
    "classification": base.CLASSIFICATION_METRICS,
    "regression": base.REGRESSION_METRICS,
    "forecasting": base.FORECASTING_METRICS,
    "anomaly_detection": base.ANOMALY_PRIMARY_METRICS,
    "clustering": base.CLUSTERING_PRIMARY_METRICS,
}
_METRIC_FITS_TASK = (
    "".join(f"self.task == '{task}' ? self.primaryMetric in {list(metrics)} : " for task, metrics in PRIMARY_METRICS.items())
    + "false"
)
UNSUPERVISED_TASKS = ("anomaly_detection", "clustering")


class _Rule(NamedTuple):
    """A rule of the framing fields, in CEL (the API server) and in Python (pydantic), with its message."""

    cel: str
    holds: Callable[[Problem], bool]
    message: str
    field: str


_FRAMING_RULES = (
    _Rule(
        "has(self.target) || self.task in " + str(list(UNSUPERVISED_TASKS)),
        lambda p: p.target is not None or p.task in UNSUPERVISED_TASKS,
        "required for classification, regression and forecasting: the column to predict",
        "target",
    ),
    _Rule(
        "!has(self.target) || self.task != 'clustering'",
        lambda p: p.target is None or p.task != "clustering",
        "clustering uses no target; leave it out (and list the column in features.exclude)",
        "target",
    ),
    _Rule(
        "!has(self.contamination) || self.task == 'anomaly_detection'",
        lambda p: p.contamination is None or p.task == "anomaly_detection",
        "applies to task anomaly_detection only",
        "contamination",
    ),
    _Rule(
        "!has(self.clusters) || self.task == 'clustering'",
        lambda p: p.clusters is None or p.task == "clustering",
        "applies to task clustering only",
        "clusters",
    ),
    _Rule(
        "self.task != 'forecasting' || has(self.timeColumn)",
        lambda p: p.task != "forecasting" or p.time_column is not None,
        "required by forecasting: the column holding each row's time",
        "timeColumn",
    ),
    _Rule(
        "self.task != 'forecasting' || has(self.horizon)",
        lambda p: p.task != "forecasting" or p.horizon is not None,
        "required by forecasting: how many steps ahead the model is judged on (e.g. 12 for monthly data)",
        "horizon",
    ),
    _Rule(
        "!has(self.horizon) || self.task == 'forecasting'",
        lambda p: p.horizon is None or p.task == "forecasting",
        "applies to task forecasting only",
        "horizon",
    ),
    _Rule(
        "!has(self.seriesId) || self.task == 'forecasting'",
        lambda p: p.series_id is None or p.task == "forecasting",
        "applies to task forecasting only",
        "seriesId",
    ),
    _Rule(
        "!has(self.frequency) || self.task == 'forecasting'",
        lambda p: p.frequency is None or p.task == "forecasting",
        "applies to task forecasting only",
        "frequency",
    ),
    _Rule(
        "!has(self.timeColumn) || !(self.task in ['classification', 'regression'])",
        lambda p: p.time_column is None or p.task not in ("classification", "regression"),
        "not a classification or regression field; use the TrainingJob's preprocessing.split.timeColumn",
        "timeColumn",
    ),
)


class Clusters(base.ApiModel):
    """The range in which a clustering project's number of clusters is chosen."""

    min: int = pydantic.Field(2, ge=2, le=50)
    """Fewest clusters tried."""
    max: int = pydantic.Field(8, ge=2, le=50)
    """Most clusters tried."""

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Clusters:
        if self.min > self.max:
            raise ValueError(f"max: {self.max} is below min {self.min}; set max >= min")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "max must be at least min", "fieldPath": ".max"}
            ]
        }
    )


class Goal(base.ApiModel):
    """The business goal the project serves."""

    description: str = pydantic.Field(min_length=1)
    """What the business wants to achieve."""
    type: Literal["Financial", "Growth", "Employee", "Process", "Sustainability", "TimeBased"]
    """Kind of goal."""
    kpi: str | None = None
    """The indicator that measures the goal."""
    deadline: str | None = pydantic.Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    """Target date, YYYY-MM-DD."""


class FeatureColumns(base.ApiModel):
    """Which columns are features; by default every column but the target."""

    include: list[str] | None = None
    """Only these columns are features."""
    exclude: list[str] = []
    """These columns are never features (identifiers, leaks)."""

    @pydantic.model_validator(mode="after")
    def _not_both(self) -> FeatureColumns:
        if self.include is not None and self.exclude:
            raise ValueError("set either include or exclude, not both")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.include) && has(self.exclude) && size(self.exclude) > 0)",
                    "message": "set either include or exclude, not both",
                }
            ]
        }
    )


class Problem(base.ApiModel):
    """The ML problem framing."""

    task: Literal["classification", "regression", "forecasting", "anomaly_detection", "clustering"]
    """classification, regression, forecasting, anomaly_detection or clustering."""
    target: str | None = pydantic.Field(None, min_length=1)
    """The column to predict (forecasting: the series); required except for anomaly_detection
    (optional: a label column, 1 = anomaly, used only to evaluate and pick the threshold) and
    clustering (none)."""
    positive_class: str | None = None
    """The class precision, recall, f1, roc_auc and pr_auc are about (default for two classes: the
    second in sorted order; with more classes, unset means macro averages)."""
    features: FeatureColumns = pydantic.Field(default_factory=FeatureColumns)
    """Feature columns."""
    primary_metric: base.Metric
    """The metric that decides which model is better."""
    time_column: str | None = pydantic.Field(None, min_length=1)
    """forecasting (required): the column holding each row's time (a date or timestamp)."""
    series_id: str | None = pydantic.Field(None, min_length=1)
    """forecasting, optional: the column naming the series when the table holds many."""
    horizon: int | None = pydantic.Field(None, ge=1, le=1000)
    """forecasting (required): steps ahead the model is judged on; the test split is the last horizon
    steps of every series."""
    frequency: str | None = pydantic.Field(None, pattern=r"^[0-9]*[A-Za-z]+(-[A-Za-z]{3})?$")
    """forecasting, optional: the series' pandas offset alias (MS, D, W-SUN, h); inferred from the data when absent."""
    contamination: float | None = pydantic.Field(None, gt=0, le=0.5)
    """anomaly_detection: the expected share of anomalies, in (0, 0.5]; sets the threshold (default:
    chosen on the validation labels when target is set, else 0.05)."""
    clusters: Clusters | None = None
    """clustering: k is chosen within this range by primaryMetric (default 2..8)."""
    text_columns: list[str] = pydantic.Field([], max_length=20)
    """Free-text feature columns: each is turned into TF-IDF word and character n-grams (a bounded
    vocabulary) inside the fitted pipeline, so the served model takes the raw text."""

    @pydantic.model_validator(mode="after")
    def _metric_fits_task(self) -> Problem:
        allowed = PRIMARY_METRICS[self.task]
        if self.primary_metric not in allowed:
            raise ValueError(f"primaryMetric: {self.primary_metric} is not a {self.task} metric; use one of {', '.join(allowed)}")
        broken = next((rule for rule in _FRAMING_RULES if not rule.holds(self)), None)
        if broken is not None:
            raise ValueError(f"{broken.field}: {broken.message}")
        return self

    @pydantic.model_validator(mode="after")
    def _text_columns_are_features(self) -> Problem:
        if self.target in self.text_columns:
            raise ValueError(f"textColumns: {self.target!r} is the target; list only feature columns")
        if len(set(self.text_columns)) < len(self.text_columns):
            raise ValueError("textColumns: a column is listed twice; list each text column once")
        excluded = [c for c in self.text_columns if c in self.features.exclude]
        if excluded:
            raise ValueError(f"textColumns: {', '.join(excluded)} is also in features.exclude; a text column must be a feature")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": _METRIC_FITS_TASK,
                    "message": "primaryMetric must be a metric of the task",
                    "fieldPath": ".primaryMetric",
                },
                *({"rule": r.cel, "message": r.message, "fieldPath": f".{r.field}"} for r in _FRAMING_RULES),
                {
                    "rule": "!has(self.textColumns) || !has(self.target) || !(self.target in self.textColumns)",
                    "message": "textColumns must not name the target",
                    "fieldPath": ".textColumns",
                },
            ]
        }
    )


class SuccessCriterion(base.ApiModel):
    """A condition a model must meet to be eligible."""

    metric: base.Metric
    """Metric on the test partition."""
    op: Literal[">=", ">", "<=", "<", "=="]
    """Comparison."""
    threshold: float
    """Value compared with."""

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets this criterion."""
        return base.compare(value, self.op, self.threshold)


class FairnessCriterion(base.ApiModel):
    """A fairness condition a model must meet to be eligible, judged like a success criterion."""

    metric: base.FairnessMetric
    """Summary fairness metric on the test partition, the worst over the sensitive features."""
    op: Literal[">=", ">", "<=", "<", "=="]
    """Comparison."""
    threshold: float
    """Value compared with."""

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets this criterion."""
        return base.compare(value, self.op, self.threshold)


Criterion = SuccessCriterion | FairnessCriterion
"""Either kind of criterion; eligibility judges both the same way."""


class Fairness(base.ApiModel):
    """Bias detection and the fairness criteria of the project's models (classification)."""

    sensitive_features: list[str] = pydantic.Field(min_length=1, max_length=10)
    """Columns that define groups of people. They may be kept out of the model's features
    (problem.features.exclude) and are still used to measure and mitigate."""
    favorable_outcome: str | None = None
    """The label value that benefits a person; default problem.positiveClass (or, for two classes,
    the second in sorted order)."""
    criteria: list[FairnessCriterion] = []
    """Like successCriteria: a version failing them is registered but not eligible."""


class Storage(base.ApiModel):
    """The artifact store for models, reports and inference logs."""

    uri: str = pydantic.Field(pattern=r"^(s3|file)://")
    """s3://bucket/prefix or file:///path."""
    credentials_secret: str | None = None
    """Secret in the same namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    use_default_credentials: bool = False
    """Without credentialsSecret, let drift analysis read S3 with the default AWS credentials of its
    pod (web identity, instance profile). Off by default: the project's storage is read with the
    project's own Secret only, and without one with anonymous requests."""


class Training(base.ApiModel):
    """How the operator starts TrainingJobs for this project."""

    template: training_api.TrainingSpec = pydantic.Field(default_factory=training_api.TrainingSpec)
    """A TrainingJob spec without projectRef, for scheduled and drift-triggered runs."""
    successful_jobs_history_limit: int = pydantic.Field(10, ge=0, le=1000)
    """Finished TrainingJobs kept per project after they succeeded (their versions stay in the registry)."""
    failed_jobs_history_limit: int = pydantic.Field(3, ge=0, le=1000)
    """Failed TrainingJobs kept per project."""


class Retraining(base.ApiModel):
    """When the operator retrains."""

    schedule: base.Cron | None = None
    """Five-field cron schedule of periodic retraining (UTC)."""
    on_drift: bool = False
    """DriftMonitors of this project may start retraining."""
    cooldown: base.Duration = "6h"
    """No two automatic retrainings closer than this."""
    max_per_day: int = pydantic.Field(4, ge=1, le=1000)
    """At most this many automatic retrainings in 24 hours."""
    include_feedback: bool = False
    """Add captured requests that received ground truth to the training data."""
    feedback_window: base.Duration = "30d"
    """Only feedback from this recent window is added."""


class Promotion(base.ApiModel):
    """When a new version becomes champion."""

    policy: Literal["auto", "manual"] = "auto"
    """auto: a better eligible version becomes champion; manual: kubectl annotate mlp NAME mlkube.io/champion=VERSION."""
    min_improvement: float = pydantic.Field(0.0, ge=0)
    """The primary metric must improve by at least this much."""
    evaluate_on: Literal["recent", "test"] = "test"
    """Holdout on which challenger and champion are compared: the challenger's test split, or the
    newest labeled traffic when there is enough of it."""


class Registry(base.ApiModel):
    """Retention of the project's ModelVersions."""

    keep: int = pydantic.Field(20, ge=1)
    """How many of the newest versions stay registered; older ones are retired unless they are the
    champion, served by a ModelDeployment or approved."""
    grace_period: base.Duration = "7d"
    """How long a retired version's artifacts are kept before they are deleted."""


class MLProjectSpec(base.ApiModel):
    """Desired state of an MLProject."""

    goal: Goal
    """The business goal."""
    problem: Problem
    """The ML problem framing."""
    success_criteria: list[SuccessCriterion] = []
    """A version is eligible only if all hold on its test partition."""
    fairness: Fairness | None = None
    """Sensitive features, the favorable outcome and the fairness criteria (classification only)."""
    data: datasource_api.DataSource
    """Where the training data lives."""
    storage: Storage
    """Where models, reports and inference logs live."""
    training: Training = pydantic.Field(default_factory=Training)
    """Template and history of TrainingJobs."""
    retraining: Retraining = pydantic.Field(default_factory=Retraining)
    """Retraining policy."""
    promotion: Promotion = pydantic.Field(default_factory=Promotion)
    """Champion policy."""
    registry: Registry = pydantic.Field(default_factory=Registry)
    """Retention of the model versions."""
    queue_name: base.QueueName | None = None
    """Kueue LocalQueue of the project's training, drift-check and batch-scoring Jobs, unless a
    TrainingJob, DriftMonitor or BatchPrediction names its own spec.queueName."""

    @pydantic.model_validator(mode="after")
    def _fairness_needs_classification(self) -> MLProjectSpec:
        if self.fairness is not None and self.problem.task != "classification":
            raise ValueError("fairness: needs problem.task classification (group selection rates are about a label)")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.fairness) || self.problem.task == 'classification'",
                    "message": "fairness needs problem.task classification",
                    "fieldPath": ".fairness",
                }
            ]
        }
    )


class ModelEntry(base.ApiModel):
    """One registered model version."""

    version: int = pydantic.Field(ge=1)
    """Version number, allocated without gaps."""
    training_job: str
    """The TrainingJob that produced it."""
    created_at: str
    """When it was registered."""
    algorithm: str | None = None
    """Algorithm of the model."""
    metrics: dict[str, float] = {}
    """Test metrics."""
    fairness: dict[str, float] | None = None
    """Summary fairness metrics on the test partition (the worst over the sensitive features), when measured."""
    eligible: bool = False
    """Whether the success criteria and the fairness criteria were met."""
    artifact_uri: str
    """Where its artifacts are."""
    digest: str
    """sha256 digest of its manifest."""
    trigger: Literal["manual", "schedule", "drift"] = "manual"
    """Why it was trained."""


class MLProjectStatus(base.StatusBase):
    """Observed state of an MLProject."""

    phase: Literal["Pending", "Ready", "Failed"] | None = None
    """Pending, Ready or Failed."""
    models: list[ModelEntry] = []
    """The registry: one entry per trained version."""
    versions: int | None = None
    """Number of registered versions."""
    latest_version: int | None = None
    """The newest registered version."""
    champion_version: int | None = None
    """The version that deployments tracking the champion serve."""
    last_retrain_time: str | None = None
    """When the operator last started a retraining."""
    last_schedule_time: str | None = None
    """The last schedule tick that started a retraining."""
    next_scheduled_retrain: str | None = None
    """The next schedule tick."""
    retrain_times: list[str] = []
    """Start times of automatic retrainings in the last 24 hours (cooldown and daily budget)."""
