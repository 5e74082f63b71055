"""The drift-check contract: what the DriftMonitor reconciler hands ``python -m mlkube.driftcheck``
and what the check answers.

The check runs as a batch/v1 Job in the monitor's namespace (``control/manifests/drift.py``). The
request is JSON in the environment variable :data:`REQUEST_ENV` (stdin when it is unset, for a
check run by hand); the answer is one JSON document in the container's termination message
(:data:`RESULT_LIMIT_BYTES` at most) and on the last stdout line: a :class:`DriftCheckResult`, or a
:class:`DriftCheckError` with exit code 1. Both sides use these models: the operator builds the
request and parses the answer (``control/policy/checkjob.py``); the check parses the request with
the same model and writes a result built from it. The analysis options are the DriftMonitor's
own spec models, so their defaults are declared once, in ``api/monitor.py``.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base, monitor

REQUEST_ENV = "MLKUBE_DRIFTCHECK_REQUEST"
RESULT_LIMIT_BYTES = 4096  # what the kubelet keeps of a termination message


class Reference(base.ApiModel):
    """The served version whose reference profile the window is compared with."""

    uri: str
    """The version's artifact directory (s3:// or file://)."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    digest: str
    """The registry's digest of the version (``MLProject.status.models[].digest``): a manifest that
    does not hash to it is refused before anything else is read."""


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
    fairness: monitor.BiasDrift | None = None
    """Bias drift options; None: not analysed."""
    report: Report
    """Where the report goes."""
    default_credentials: bool = False
    """Whether S3 may be read with the default AWS credential chain of the check's pod (web
    identity, instance profile) when no keys are given; the project's
    ``spec.storage.useDefaultCredentials``. Off: the project's Secret's keys, else anonymous requests."""


class DriftCheckResult(base.ApiModel):
    """What one analysis found: the DriftMonitor's per-analysis status fields and a summary.

    ``InsufficientData`` carries only ``phase``, ``samples`` and ``summary``.
    """

    phase: Literal["Healthy", "Drifting", "InsufficientData"]
    """Drifting when the dataset, the predictions, the performance or the group metrics drifted."""
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
    fairness: monitor.BiasDriftResult | None = None
    """Bias drift, when the request asked for it."""
    report_uri: str | None = None
    """The HTML report written."""


class DriftCheckError(base.ApiModel):
    """What a check that could not analyse answers (exit code 1)."""

    error: str
    """What went wrong and what to fix."""
