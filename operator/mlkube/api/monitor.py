"""DriftMonitor: compares live traffic with the training reference, explains, alerts, retrains."""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base

DriftMethod = Literal["auto", "psi", "ks", "chi2", "jensenshannon", "wasserstein"]


class Window(base.ApiModel):
    """Which captured requests are analysed."""

    size: int = pydantic.Field(1000, ge=1, le=10_000_000)
    """The most recent N requests..."""
    duration: base.Duration = "1h"
    """...within this duration."""


class DataDrift(base.ApiModel):
    """Per-feature drift and dataset drift."""

    method: DriftMethod = "auto"
    """Statistic per feature; auto picks by column type and sample size (see the README)."""
    threshold: float | None = pydantic.Field(None, gt=0)
    """Per-feature threshold on the method's scale (a p-value for ks and chi2); default per method."""
    dataset_share: float = pydantic.Field(0.5, gt=0, le=1)
    """Dataset drift when at least this share of features drift."""


class PredictionDrift(base.ApiModel):
    """Drift of the model's predictions."""

    method: DriftMethod = "psi"
    """Statistic on the prediction column."""
    threshold: float | None = pydantic.Field(None, gt=0)
    """Threshold on the method's scale; default per method."""


class ConceptDrift(base.ApiModel):
    """Drop of the primary metric on requests with ground truth feedback."""

    metric: base.Metric | None = None
    """Metric to watch; default the project's primary metric."""
    max_drop: float = pydantic.Field(0.05, ge=0)
    """Largest acceptable drop against the model's test-set baseline."""
    min_labeled: int = pydantic.Field(50, ge=1)
    """Labeled requests needed before performance is judged."""


class BiasDrift(base.ApiModel):
    """Bias drift: the served version's group metrics on captured traffic against its test partition.

    Groups come from the project's sensitive features (the model card's fairness section); clients
    send those columns with each request when the model does not take them as features."""

    max_drop: float = pydantic.Field(0.1, gt=0, le=1)
    """Drift when a group's selection rate (or, with feedback, its TPR) falls, its FPR rises, or a
    summary metric worsens (disparate impact falls, a difference rises) by more than this."""
    min_group_samples: int = pydantic.Field(30, ge=1)
    """Requests a group needs in the window before its selection rate is judged (labeled favorable
    requests for its tpr, labeled unfavorable ones for its fpr)."""


class Explainability(base.ApiModel):
    """Feature importance in drift results."""

    enabled: bool = True
    """Weight drift by the model's feature importance and name the features that matter and moved."""
    top_k: int = pydantic.Field(5, ge=1, le=100)
    """Features listed in status."""


class Alerting(base.ApiModel):
    """Where drift alerts go besides Events and the Drifting condition."""

    webhook: str | None = pydantic.Field(None, pattern=r"^https?://")
    """Alertmanager v2 alerts endpoint, e.g. http://alertmanager.monitoring:9093/api/v2/alerts."""
    severity: Literal["info", "warning", "critical"] = "warning"
    """Severity label of the alerts."""


class Action(base.ApiModel):
    """What drift does."""

    retrain: bool = False
    """Start a TrainingJob, subject to the project's retraining policy."""


class DriftMonitorSpec(base.ApiModel):
    """Desired state of a DriftMonitor."""

    deployment_ref: base.ObjectName | None = None
    """Name of the ModelDeployment in the same namespace whose captured traffic is analysed."""
    batch_prediction_ref: base.ObjectName | None = None
    """Or, for a model that is only scored in batch: name of the BatchPrediction in the same
    namespace whose scored rows are analysed (its ``spec.monitor.driftMonitorRef`` names this monitor)."""
    scope: Literal["stable", "all"] = "stable"
    """Analyse traffic answered by the stable version only, or by every version."""
    interval: base.Duration = "5m"
    """How often to analyse."""
    window: Window = pydantic.Field(default_factory=Window)
    """Which captured requests are analysed."""
    min_samples: int = pydantic.Field(200, ge=1)
    """Fewer requests in the window give InsufficientData."""
    data_drift: DataDrift = pydantic.Field(default_factory=DataDrift)
    """Per-feature and dataset drift."""
    prediction_drift: PredictionDrift = pydantic.Field(default_factory=PredictionDrift)
    """Prediction drift."""
    concept_drift: ConceptDrift = pydantic.Field(default_factory=ConceptDrift)
    """Concept drift."""
    explainability: Explainability = pydantic.Field(default_factory=Explainability)
    """Feature importance."""
    fairness: BiasDrift | None = None
    """Bias drift across the project's sensitive features; off unless set."""
    alerting: Alerting = pydantic.Field(default_factory=Alerting)
    """Alert routing."""
    action: Action = pydantic.Field(default_factory=Action)
    """What drift does."""
    queue_name: base.QueueName | None = None
    """Kueue LocalQueue of the drift-check Jobs; defaults to the project's spec.queueName."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.deploymentRef) != has(self.batchPredictionRef)",
                    "message": "set exactly one of deploymentRef or batchPredictionRef",
                }
            ]
        }
    )

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> DriftMonitorSpec:
        if (self.deployment_ref is None) == (self.batch_prediction_ref is None):
            raise ValueError("set exactly one of deploymentRef or batchPredictionRef")
        return self

    @property
    def source(self) -> str:
        """The name whose inference log is analysed: the ModelDeployment's or the BatchPrediction's."""
        return self.deployment_ref or self.batch_prediction_ref or ""

    @property
    def source_description(self) -> str:
        """``ModelDeployment churn-prod`` or ``BatchPrediction churn-nightly``, for messages."""
        if self.deployment_ref is not None:
            return f"ModelDeployment {self.deployment_ref}"
        return f"BatchPrediction {self.batch_prediction_ref}"


class FeatureDrift(base.ApiModel):
    """Drift of one feature."""

    name: str
    """Feature name."""
    method: str
    """Statistic used."""
    score: float
    """Its value."""
    threshold: float | None = None
    """Threshold it was compared with."""
    drifted: bool
    """Whether the feature drifted."""
    importance: float | None = None
    """The model's importance of the feature."""


class PredictionDriftResult(base.ApiModel):
    """Drift of the predictions."""

    method: str | None = None
    """Statistic used."""
    score: float
    """Its value."""
    drifted: bool
    """Whether predictions drifted."""


class Performance(base.ApiModel):
    """The primary metric on labeled traffic against the test-set baseline."""

    metric: str
    """Metric."""
    baseline: float | None = None
    """Value on the model's test partition."""
    current: float | None = None
    """Value on labeled traffic in the window."""
    samples: int = 0
    """Labeled requests in the window."""
    drifted: bool = False
    """Whether the drop exceeds maxDrop."""


class GroupShift(base.ApiModel):
    """One group metric on traffic against its value on the test partition."""

    feature: str
    """The sensitive feature."""
    group: str
    """The group (a value of the feature); empty for a summary metric."""
    metric: str
    """selection_rate, tpr, fpr, or a summary metric such as disparate_impact."""
    baseline: float
    """Its value on the version's test partition."""
    current: float
    """Its value on the window's traffic."""
    samples: int = 0
    """Requests (labeled requests, for tpr and fpr) of the group in the window."""
    drifted: bool = False
    """Whether it worsened by more than maxDrop."""


class BiasDriftResult(base.ApiModel):
    """Bias drift of the analysed window."""

    drifted: bool = False
    """Whether a group metric or a summary metric moved past maxDrop."""
    metrics: dict[str, float] = {}
    """Summary metrics on the window (selection rates only, unless enough requests are labeled)."""
    baseline: dict[str, float] = {}
    """The same metrics on the version's test partition."""
    shifts: list[GroupShift] = []
    """The metrics that moved most, worst first (every drifted one, then the largest other moves)."""
    note: str | None = None
    """Why bias drift could not be judged in full (a sensitive feature missing from the traffic, too few requests)."""


class DriftMonitorStatus(base.StatusBase):
    """Observed state of a DriftMonitor."""

    phase: Literal["Pending", "Healthy", "Drifting", "InsufficientData"] | None = None
    """Pending, Healthy, Drifting or InsufficientData."""
    model_version: int | None = None
    """The version whose reference was compared."""
    last_check_time: str | None = None
    """When the last analysis finished."""
    samples: int | None = None
    """Requests in the analysed window."""
    dataset_drift: bool | None = None
    """Whether the dataset drifted."""
    drift_share: float | None = None
    """Share of drifted features."""
    features: list[FeatureDrift] = []
    """Top features by importance-weighted drift."""
    prediction_drift: PredictionDriftResult | None = None
    """Prediction drift."""
    performance: Performance | None = None
    """Concept drift."""
    fairness: BiasDriftResult | None = None
    """Bias drift across the sensitive features, when spec.fairness is set."""
    report_uri: str | None = None
    """HTML report of the last analysis."""
    last_alert_time: str | None = None
    """When an alert was last sent."""
    drift_started_at: str | None = None
    """Start of the current drift episode; one retraining per episode."""
    retraining_job: str | None = None
    """TrainingJob started for the current or last episode."""
