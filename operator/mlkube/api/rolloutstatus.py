"""What a ModelDeployment's status reports about a rollout: traffic, analysis and A/B test.

The parts of ``ModelDeploymentStatus`` (``api/deployment.py``) that the rollout computes: the
traffic table, the latest analysis with its intervals and performance estimate, the router
counters an analysis window starts from, and the A/B test report with its sequential test.
Plain data; the operator's plans fill them, ``kubectl`` and the dashboard read them.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base


class TrafficEntry(base.ApiModel):
    """A version's share of traffic."""

    version: int
    """Model version."""
    role: Literal["stable", "canary", "preview", "b", "shadow"]
    """Its role in the rollout."""
    percent: int = pydantic.Field(ge=0, le=100)
    """Percent of client traffic it answers (mirrored traffic for shadow)."""


class PerformanceEstimate(base.ApiModel):
    """The label-free estimate of the watched version's metric over the window, beside its test value."""

    metric: Literal["accuracy", "roc_auc"]
    """The metric estimated."""
    samples: int = 0
    """Predictions with probabilities in the window (the sample behind the estimate)."""
    estimate: float | None = None
    """CBPE estimate: the metric expected on this traffic if the probabilities are calibrated."""
    interval: list[float] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] interval at analysis.confidence of the figure judged: realised once it is
    judged, else the estimate."""
    test_value: float | None = None
    """The version's metric on its test partition (the registry)."""
    threshold: float | None = None
    """testValue minus maxDrop: the gate fails below it."""
    labeled: int = 0
    """Predictions in the window scored against ground truth (roc_auc: two-class ones with probabilities)."""
    realised: float | None = None
    """The metric on those labeled predictions; judged instead of the estimate once there are
    minSamples of them."""


class AnalysisResult(base.ApiModel):
    """The latest analysis."""

    requests: int = 0
    """Candidate requests in the interval."""
    error_rate: float | None = None
    """Share of failed candidate requests."""
    latency_p99_ms: float | None = None
    """Candidate 99th percentile latency in milliseconds."""
    agreement: float | None = None
    """Share of candidate predictions equal to the stable version's."""
    compared: int = 0
    """Candidate predictions compared with the stable version's (the sample behind agreement)."""
    error_rate_interval: list[float] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] Wilson interval of the error rate at analysis.confidence."""
    latency_p99_interval_ms: list[float | None] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] distribution-free interval of the 99th percentile latency in milliseconds
    (bucket bounds: the p99 lies above lower and at or below upper); upper is null while too few
    requests bound it (368 at confidence 0.95) or when it lies beyond the last bucket (10s)."""
    agreement_interval: list[float] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] Wilson interval of the agreement at analysis.confidence (agreement gate only)."""
    verdict: Literal["Passing", "Failing", "Inconclusive"] | None = None
    """The analysis verdict."""
    failed_checks: list[str] = []
    """The thresholds the window broke, e.g. "errorRate 0.3 > maxErrorRate 0.05 (...)"."""
    inconclusive_checks: list[str] = []
    """What keeps an Inconclusive verdict from a decision, e.g. "12 of 50 requests" or an interval
    that contains its threshold."""
    estimated_performance: PerformanceEstimate | None = None
    """The estimatedPerformance gate's figures (only when it is set)."""


class AnalysisBaseline(base.ApiModel):
    """The candidate's router counters when the current analysis window began."""

    start_time: float | None = None
    """Start time of the router process that counted (a restarted router starts a new window)."""
    requests: int = 0
    """Requests counted."""
    errors: int = 0
    """Errors counted."""
    buckets: list[int] = []
    """Cumulative latency histogram counts."""
    compared: int = 0
    """Predictions compared with the stable version."""
    agreed: int = 0
    """Comparisons that agreed."""
    labeled: int = 0
    """Predictions scored against ground-truth feedback."""
    correct: int = 0
    """Labeled predictions equal to the ground truth."""
    abs_error_sum: float = 0
    """Sum of absolute errors of numeric predictions."""
    squared_error_sum: float = 0
    """Sum of squared errors of numeric predictions."""
    scored: int = 0
    """Predictions whose probabilities the router read (estimatedPerformance only)."""
    confidence_sum: float = 0
    """Sum of the probabilities of the predicted classes."""
    score_counts: list[int] = []
    """Binary classifiers: the histogram of positive-class probabilities, counts per bin."""
    score_sums: list[float] = []
    """The sum of the probabilities in each bin."""
    labeled_score_counts: list[int] = []
    """Labeled two-class predictions per bin of the same histogram."""
    labeled_score_positives: list[int] = []
    """Of those, the ones whose ground truth was the positive class."""


class ABTestVersion(base.ApiModel):
    """One arm of an A/B test, over the test so far."""

    version: int
    """Model version."""
    role: Literal["stable", "b"]
    """stable (A) or b (the candidate)."""
    requests: int = 0
    """Requests it answered during the test."""
    error_rate: float | None = None
    """Share of its requests that failed (5xx or unreachable)."""
    latency_p50_ms: float | None = None
    """Median latency in milliseconds (the upper bound of its histogram bucket)."""
    latency_p99_ms: float | None = None
    """99th percentile latency in milliseconds (the upper bound of its histogram bucket)."""
    labeled: int = 0
    """Its predictions scored against ground truth sent to the router's /v1/feedback during the test."""
    metric: Literal["accuracy", "mae"]
    """The quality metric: accuracy for a classification project, mae (mean absolute error) for regression."""
    value: float | None = None
    """The metric over the labeled predictions (none without labels)."""
    rmse: float | None = None
    """Root mean squared error (regression only)."""


class ABTestSequential(base.ApiModel):
    """The A/B test's sequential test of the metric's difference, valid at every pass."""

    method: Literal["mSPRT"] = "mSPRT"
    """mSPRT: the mixture sequential probability ratio test with a normal mixture (Johari, Pekelis,
    Walsh, "Always Valid Inference", arXiv:1512.04922)."""
    tau: float
    """Standard deviation of the normal mixture over the difference, in units of one prediction's
    standard deviation of the metric: the effect sizes the test detects fastest."""
    always_valid_p_value: float | None = None
    """The running minimum over the test's passes of 1 / (mixture likelihood ratio), at most 1:
    when both versions are equally good it falls below 0.05 at some pass with probability at most
    0.05, however often it is looked at. Unset until each version has analysis.minRequests
    labeled predictions (at least 2)."""
    winner: int | None = None
    """The better version, from the pass at which alwaysValidPValue first fell below 0.05; kept
    from then on."""
    stopped_early: bool = False
    """Whether the rollout ended the test on this winner before abTest.duration (abTest.earlyStop)."""
    conclusion: str = ""
    """The sequential test's verdict in one sentence, with the figures behind it."""


class ABTestReport(base.ApiModel):
    """The A/B test's report: both versions side by side and whether one is significantly better."""

    versions: list[ABTestVersion] = []
    """The stable version, then the candidate."""
    metric: Literal["accuracy", "mae"]
    """The metric compared: accuracy (two-proportion z-test) or mae (Welch's t-test on absolute errors)."""
    difference: float | None = None
    """Candidate minus stable on the metric."""
    p_value: float | None = None
    """Two-sided fixed-horizon p-value of the difference, valid when read once, at the end of the
    duration; significant below 0.05."""
    winner: int | None = None
    """The significantly better version by the fixed-horizon test, once each arm has at least
    analysis.minRequests labeled predictions; none otherwise."""
    conclusion: str = ""
    """The fixed-horizon verdict in one sentence, with the figures behind it."""
    sequential: ABTestSequential | None = None
    """The sequential test, which abTest.earlyStop may end the test on before its duration."""
    finished_at: str | None = None
    """When the test ended; the report then stays until the next rollout starts."""
