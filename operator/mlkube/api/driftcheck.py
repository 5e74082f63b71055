"""The drift-check contract: what the DriftMonitor reconciler hands ``python -m mlkube.driftcheck``
and what the worker answers.

The request goes as JSON on the worker's stdin, the result comes back as one JSON line on its
stdout (or ``{"error": "..."}`` with exit code 1). Both sides use these models: the operator
builds a :class:`DriftCheckRequest` (``control/manifests/drift.py``) and parses the answer as a
:class:`DriftCheckResult`; the worker parses the request with the same model and prints a result
built from it. The analysis options are the DriftMonitor's own spec models, so their defaults are
declared once, in ``api/monitor.py``.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base, monitor


class Reference(base.ApiModel):
    """The served version whose reference profile the window is compared with."""

    uri: str
    """The version's artifact directory (s3:// or file://)."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""


class Traffic(base.ApiModel):
    """The window of captured requests to analyse (the router's inference-log layout)."""

    uri: str
    """Root of the project's storage, where the inference log and feedback live."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    namespace: str
    """Namespace of the ModelDeployment whose traffic is read."""
    deployment: str
    """Name of the ModelDeployment whose traffic is read."""
    versions: list[int] | None = None
    """Only requests answered by these versions; None: every version."""
    size: int = pydantic.Field(ge=1)
    """The most recent N requests..."""
    since: str
    """...captured at or after this time (RFC 3339)."""


class ConceptDrift(monitor.ConceptDrift):
    """Concept drift with its metric resolved (the DriftMonitor's, else the project's primary metric)."""

    metric: base.Metric
    """Metric to watch."""


class Report(base.ApiModel):
    """Where the HTML report goes."""

    uri: str
    """Object to write (s3:// or file://)."""


class DriftCheckRequest(base.ApiModel):
    """One analysis: the reference, the window and the DriftMonitor's options."""

    reference: Reference
    """The served version's artifacts."""
    traffic: Traffic
    """The captured window."""
    min_samples: int = pydantic.Field(ge=1)
    """Fewer requests in the window give InsufficientData."""
    data_drift: monitor.DataDrift = pydantic.Field(default_factory=monitor.DataDrift)
    """Per-feature and dataset drift."""
    prediction_drift: monitor.PredictionDrift = pydantic.Field(default_factory=monitor.PredictionDrift)
    """Prediction drift."""
    concept_drift: ConceptDrift
    """Concept drift."""
    explainability: monitor.Explainability = pydantic.Field(default_factory=monitor.Explainability)
    """Feature importance."""
    report: Report
    """Where the report goes."""


class DriftCheckResult(base.ApiModel):
    """What one analysis found: the DriftMonitor's per-analysis status fields and a summary.

    ``InsufficientData`` carries only ``phase``, ``samples`` and ``summary``.
    """

    phase: Literal["Healthy", "Drifting", "InsufficientData"]
    """Drifting when the dataset, the predictions or the performance drifted."""
    samples: int = pydantic.Field(ge=0)
    """Requests in the analysed window."""
    summary: str
    """One sentence naming what drifted (the Events', condition's and alert's text)."""
    dataset_drift: bool | None = None
    """Whether the dataset drifted."""
    drift_share: float | None = None
    """Share of drifted features."""
    features: list[monitor.FeatureDrift] | None = None
    """Top features by importance-weighted drift."""
    prediction_drift: monitor.PredictionDriftResult | None = None
    """Prediction drift."""
    performance: monitor.Performance | None = None
    """Concept drift, when enough requests were labeled."""
    report_uri: str | None = None
    """The HTML report written."""
