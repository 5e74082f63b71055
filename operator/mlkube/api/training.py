"""TrainingJob: one run of data processing, algorithm selection, tuning and evaluation.

It produces one model version. The spec is the user's; the status is the operator's.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from mlkube.api import base

ImputeStrategy = Literal["mean", "median", "most_frequent", "constant", "drop"]
AlgorithmName = Literal[
    "logistic_regression",
    "linear_regression",
    "ridge",
    "random_forest",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "svm",
    # anomaly_detection (ml/tasks/anomaly.py)
    "isolation_forest",
    "local_outlier_factor",
    "one_class_svm",
    "robust_covariance",
    # clustering (ml/tasks/clustering.py)
    "kmeans",
    "gaussian_mixture",
    "agglomerative",
    "lightgbm",  # LightGBM (CPU wheel), early stopping on a validation share of the training rows
    "xgboost",  # XGBoost (xgboost-cpu wheel), likewise
]


class JoinSource(base.ApiModel):
    """Another table aggregated into the training table."""

    uri: str = pydantic.Field(pattern=r"^(s3|file|https?)://")
    """Where the table lives: s3://, file:// or http(s)://, a .csv or .parquet object."""
    on: str | None = None
    """Key column to join on; leave empty with how: concat to append rows."""
    how: Literal["left", "inner", "outer", "right", "concat"] = "left"
    """left, inner, outer or right join on the key, or concat to append the rows."""

    @pydantic.model_validator(mode="after")
    def _key_unless_concat(self) -> JoinSource:
        if self.how != "concat" and not self.on:
            raise ValueError(f"on: a key column is required for a {self.how} join (or use how: concat)")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.how) && self.how == 'concat') || has(self.on)",
                    "message": "on: a key column is required unless how is concat",
                }
            ]
        }
    )


class Sample(base.ApiModel):
    """How much of the training partition the hyper-parameter search sees."""

    rows: int | None = pydantic.Field(None, ge=10)
    """At most this many rows."""
    fraction: float | None = pydantic.Field(None, gt=0, le=1)
    """This share of the rows, in (0, 1]."""

    @pydantic.model_validator(mode="after")
    def _one(self) -> Sample:
        if (self.rows is None) == (self.fraction is None):
            raise ValueError("set exactly one of rows or fraction")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "has(self.rows) != has(self.fraction)", "message": "set exactly one of rows or fraction"}
            ]
        }
    )

    def size(self, available: int) -> int:
        """Rows the search sees out of ``available``."""
        wanted = self.rows if self.rows is not None else round(available * (self.fraction or 1.0))
        return max(1, min(available, wanted))


class DataSource(base.ApiModel):
    """Where the training data lives."""

    uri: str = pydantic.Field(pattern=r"^(s3|file|https?)://")
    """s3://, file:// or http(s):// URI of a .csv, .csv.gz or .parquet object; or, ending in /, an
    s3:// or file:// prefix whose .parquet/.csv/.csv.gz objects are the parts of one table."""
    format: Literal["csv", "parquet"] | None = None
    """How to read the data: csv (also gzip-compressed) or parquet. Unset: by each object's
    extension, else its content. Set on a prefix: only parts of that format are read."""
    credentials_secret: str | None = None
    """Secret in the same namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    join: list[JoinSource] = []
    """More sources aggregated into one table, in order."""
    sample: Sample | None = None
    """The hyper-parameter search runs on a seeded sample of the training partition (stratified for
    classification), e.g. {rows: 50000} or {fraction: 0.1}; the chosen configuration is then fit on
    the whole partition and evaluated as usual. Classification and regression only."""

    @pydantic.field_validator("uri")
    @classmethod
    def _prefix_needs_a_listable_store(cls, uri: str) -> str:
        if uri.startswith(("http://", "https://")) and uri.split("?", 1)[0].endswith("/"):
            raise ValueError("an http(s) URI names one object; a prefix of parts (ending in /) needs s3:// or file://")
        return uri

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.uri.startsWith('http') && self.uri.endsWith('/'))",
                    "message": "uri: a prefix of parts (ending in /) needs s3:// or file://",
                }
            ]
        }
    )


class Impute(base.ApiModel):
    """How missing values are filled."""

    numeric: ImputeStrategy = "median"
    """Strategy for numeric columns; drop removes rows with a missing value."""
    categorical: Literal["most_frequent", "constant", "drop"] = "most_frequent"
    """Strategy for categorical columns; drop removes rows with a missing value."""
    fill_value: str | float | None = None
    """The value used by the constant strategy (default 0 for numbers, "missing" for categories)."""


class Outliers(base.ApiModel):
    """Outlier handling on the training rows."""

    method: Literal["iqr", "zscore", "isolation_forest", "none"] = "none"
    """Detection method."""
    factor: float = pydantic.Field(1.5, gt=0)
    """IQR multiplier, or the z-score limit for zscore."""
    action: Literal["clip", "drop"] = "clip"
    """Clip values to the limits, or drop the rows (training rows only)."""


class Bin(base.ApiModel):
    """Discretisation of one numeric column."""

    column: str = pydantic.Field(min_length=1)
    """The column to bin."""
    bins: int = pydantic.Field(5, ge=2, le=1000)
    """Number of bins."""
    strategy: Literal["uniform", "quantile", "kmeans"] = "quantile"
    """How bin edges are chosen."""


class Augment(base.ApiModel):
    """Synthetic copies of training rows."""

    method: Literal["none", "noise"] = "none"
    """noise adds copies of numeric training rows with Gaussian jitter."""
    copies: int = pydantic.Field(1, ge=1, le=100)
    """Jittered copies per training row."""
    scale: float = pydantic.Field(0.05, gt=0, le=10)
    """Jitter standard deviation as a share of each column's standard deviation."""


class FeatureExtraction(base.ApiModel):
    """Derived features."""

    method: Literal["none", "pca"] = "none"
    """pca replaces the features with principal components."""
    components: int = pydantic.Field(10, ge=1)
    """Number of principal components (capped at the number of features)."""


class FeatureSelection(base.ApiModel):
    """Feature selection after encoding."""

    method: Literal["none", "variance", "kbest", "model"] = "none"
    """variance drops near-constant features, kbest keeps the k best by a univariate test,
    model keeps the features a tree ensemble finds important."""
    k: int = pydantic.Field(20, ge=1)
    """Features kept by kbest (capped at the number of features)."""
    threshold: float | None = pydantic.Field(None, ge=0)
    """Variance threshold for variance, importance threshold for model (default: mean importance)."""


class Split(base.ApiModel):
    """Partition into train, validation and test sets."""

    test: float = pydantic.Field(0.2, gt=0, lt=1)
    """Share of rows held out for the final test."""
    validation: float = pydantic.Field(0.2, ge=0, lt=1)
    """Share of rows held out for validation (0: validate by cross-validation only)."""
    stratify: bool = True
    """Keep class proportions in every partition (classification)."""
    seed: int = 42
    """Random seed of the split."""
    time_column: str | None = None
    """For time-ordered data: split by this column, oldest rows for training, newest for test."""

    @pydantic.model_validator(mode="after")
    def _shares_leave_training_rows(self) -> Split:
        if self.test + self.validation >= 1:
            raise ValueError("test + validation must be below 1 so that rows are left for training")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.test) ? self.test : 0.2) + (has(self.validation) ? self.validation : 0.2) < 1.0",
                    "message": "test + validation must be below 1 so that rows are left for training",
                }
            ]
        }
    )


class Mitigation(base.ApiModel):
    """Bias mitigation across the project's sensitive features (``MLProject.spec.fairness``).

    The search tunes the estimator without it; the chosen configuration is then fitted with it."""

    method: Literal["none", "reweighing", "exponentiated_gradient", "threshold_optimizer"] = "none"
    """reweighing: Kamiran-Calders sample weights that make label and group independent;
    exponentiated_gradient: fairlearn's reductions around the estimator (it must accept sample
    weights); threshold_optimizer: per-group decision thresholds on the fitted model, which then
    needs the sensitive features in every prediction request."""
    constraint: Literal["demographic_parity", "equalized_odds", "equal_opportunity"] | None = None
    """What exponentiated_gradient and threshold_optimizer equalise across groups (default
    demographic_parity); reweighing always targets demographic parity."""

    @pydantic.model_validator(mode="after")
    def _constraint_needs_a_reduction(self) -> Mitigation:
        if self.constraint is not None and self.method in ("none", "reweighing"):
            raise ValueError(
                f"constraint: applies to exponentiated_gradient and threshold_optimizer, not {self.method}; remove it"
            )
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.constraint) || (has(self.method) && self.method in "
                    "['exponentiated_gradient', 'threshold_optimizer'])",
                    "message": "constraint applies to exponentiated_gradient and threshold_optimizer only",
                }
            ]
        }
    )


class Preprocessing(base.ApiModel):
    """Data processing. Everything that runs at prediction time is part of the fitted model."""

    drop_duplicates: bool = True
    """Drop duplicate rows before splitting."""
    impute: Impute = pydantic.Field(default_factory=Impute)
    """Missing values."""
    outliers: Outliers = pydantic.Field(default_factory=Outliers)
    """Outliers in numeric columns."""
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"
    """Scaling of numeric columns."""
    encode: Literal["onehot", "ordinal", "target"] = "onehot"
    """Encoding of categorical columns; unknown categories at prediction time are handled."""
    bins: list[Bin] = []
    """Numeric columns to discretise."""
    balance: Literal["none", "class_weight", "oversample", "undersample", "smote"] = "none"
    """Class balancing (classification)."""
    augment: Augment = pydantic.Field(default_factory=Augment)
    """Data augmentation of the training rows."""
    feature_extraction: FeatureExtraction = pydantic.Field(default_factory=FeatureExtraction)
    """Feature extraction."""
    feature_selection: FeatureSelection = pydantic.Field(default_factory=FeatureSelection)
    """Feature selection."""
    split: Split = pydantic.Field(default_factory=Split)
    """Train/validation/test partition."""
    mitigation: Mitigation = pydantic.Field(default_factory=Mitigation)
    """Bias mitigation across the project's fairness.sensitiveFeatures."""


class Algorithm(base.ApiModel):
    """A candidate estimator and its search space."""

    name: AlgorithmName
    """Estimator from the registry; the task picks the classifier or regressor variant."""
    params: dict[str, Any] = pydantic.Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Search space per hyper-parameter: a fixed value, a list of choices, or {int: [lo, hi]},
    {uniform: [lo, hi]}, {loguniform: [lo, hi]}. Omitted parameters use the registry's default space."""


class StudySecretRef(base.ApiModel):
    """One key of a Secret in the TrainingJob's namespace."""

    name: base.ObjectName
    """The Secret's name."""
    key: str = pydantic.Field("url", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key that holds the database URL."""


class StudyStorage(base.ApiModel):
    """Where the trial pods share their Optuna study."""

    secret_ref: StudySecretRef
    """A Secret key holding an SQLAlchemy database URL (``postgresql+psycopg://user:pass@host/db``);
    it reaches the trainer pods as an environment variable, never in the spec."""


class Tuning(base.ApiModel):
    """Hyper-parameter search."""

    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    """Search strategy; bayesian uses Optuna's TPE sampler."""
    max_trials: int = pydantic.Field(20, ge=1, le=10000)
    """Upper bound on trials over all candidate algorithms."""
    parallelism: int = pydantic.Field(1, ge=1, le=64)
    """Trials run at once."""
    cv_folds: int = pydantic.Field(3, ge=2, le=20)
    """Cross-validation folds on the training partition."""
    timeout: base.Duration | None = None
    """Time budget of the search; the best trial so far wins when it runs out."""
    early_stopping: bool = True
    """Stop hopeless trials after their first folds."""
    seed: int = 42
    """Random seed of the search."""
    workers: int = pydantic.Field(1, ge=1, le=64)
    """Trial pods: an Indexed Job of this many pods sharing one Optuna study (each runs
    ``parallelism`` trials at once); index 0 fits and writes the version."""
    storage: StudyStorage | None = None
    """The study database the workers share; default: the operator's configured storage
    (``MLKUBE_STUDY_STORAGE``). Several workers need one of the two."""


class TrainingSpec(base.ApiModel):
    """What a TrainingJob runs; also the MLProject's training template (without projectRef)."""

    data: DataSource | None = None
    """Override of the project's data."""
    preprocessing: Preprocessing = pydantic.Field(default_factory=Preprocessing)
    """Data processing."""
    algorithms: list[Algorithm] = []
    """Candidate algorithms; empty means every registry algorithm that fits the task."""
    tuning: Tuning = pydantic.Field(default_factory=Tuning)
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
