"""Replay before promote: the ModelDeployment's ``strategy.replay`` and ``status.replay``, and the
contract between the operator and ``python -m mlkube.replay``.

Before a candidate takes any live request, it scores the newest requests the stable version
answered, taken from the capture store (the inference log, ``api/inference_log.py``). The replay
runs as a batch/v1 Job in the deployment's namespace (``control/manifests/replay.py``): the
operator never reads the tenant's storage. The request is JSON in the environment variable
:data:`REQUEST_ENV` (stdin when it is unset, for a replay run by hand); the answer is one JSON
document in the container's termination message (:data:`RESULT_LIMIT_BYTES` at most) and on the
last stdout line: a :class:`ReplayResult` (counts only), or a :class:`ReplayError` with exit code 1.
The operator judges the counts (``control/policy/replay.py``) and writes :class:`ReplayStatus`.

Must not: import anything but pydantic and the API's own modules.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base

REQUEST_ENV = "MLKUBE_REPLAY_REQUEST"
RESULT_LIMIT_BYTES = 4096  # what the kubelet keeps of a termination message
MAX_REQUESTS = 10_000
QualityMetric = Literal["accuracy", "mae"]


class Replay(base.ApiModel):
    """Replay before promote: before any live traffic, the candidate scores the newest captured
    requests the stable version answered (request bodies from the capture store, so
    ``spec.logging`` must capture); a failing replay rejects it as a failing analysis does
    (``onFailure``), with no live request routed to it."""

    requests: int = pydantic.Field(1000, ge=1, le=MAX_REQUESTS)
    """At most this many of the newest captured requests are replayed."""
    max_error_rate: float = pydantic.Field(0.0, ge=0, le=1)
    """Highest acceptable share of replayed requests the candidate fails (any answer but 2xx, a
    timeout, a refused connection) where the stable version answered 200. Judged on the Wilson
    interval at analysis.confidence: Failing only when the whole interval lies above (with 0, any
    error fails)."""
    min_agreement: float | None = pydantic.Field(None, ge=0, le=1)
    """Lowest acceptable share of replayed requests whose predictions equal the ones the stable
    version answered then (labels equal; numbers within 5 %, the router's rule). Judged on the
    Wilson interval at analysis.confidence: Failing only when the whole interval lies below.
    Unset: agreement is reported, not gated."""


class ReplayQuality(base.ApiModel):
    """Both versions scored on the replayed requests that received ground truth (feedback)."""

    metric: QualityMetric
    """accuracy (classification) or mae, the mean absolute error (regression)."""
    labeled: int = 0
    """Replayed requests with one prediction and a ground truth."""
    candidate: float | None = None
    """The candidate's metric on them."""
    stable: float | None = None
    """The metric of what the stable version answered then."""


class ReplayStatus(base.ApiModel):
    """The replay of the current (or last) candidate."""

    version: int
    """The candidate replayed."""
    started_at: str | None = None
    """When its replay Job was created (the candidate was Ready)."""
    finished_at: str | None = None
    """When its verdict was taken."""
    requests: int = 0
    """Captured requests replayed."""
    errors: int = 0
    """Replayed requests the candidate failed."""
    error_rate: float | None = None
    """errors / requests."""
    error_rate_interval: list[float] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] Wilson interval of the error rate at analysis.confidence."""
    agreement: float | None = None
    """Share of compared requests whose predictions equal the stable version's of then."""
    compared: int = 0
    """Replayed requests the candidate answered whose predictions could be compared."""
    agreement_interval: list[float] | None = pydantic.Field(None, min_length=2, max_length=2)
    """[lower, upper] Wilson interval of the agreement at analysis.confidence."""
    quality: ReplayQuality | None = None
    """Quality against ground truth, where feedback exists for replayed requests."""
    verdict: Literal["Passing", "Failing", "Inconclusive"] | None = None
    """Failing rejects the candidate; Passing and Inconclusive (no captured traffic, an interval
    that contains its threshold, a replay that could not run) go on to the strategy's live
    analysis. Unset while the replay runs."""
    message: str = ""
    """The verdict with the figures behind it, or what the replay is waiting for."""


# -- the Job's contract ------------------------------------------------------------------------


class Capture(base.ApiModel):
    """Where the captured requests are and which of them to replay (the router's inference-log layout)."""

    uri: str
    """Root of the project's storage, where the inference log and feedback live."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    namespace: str
    """Namespace of the ModelDeployment whose traffic is replayed."""
    deployment: str
    """Name of the ModelDeployment whose traffic is replayed."""
    version: int
    """Only requests this version (the stable one) answered with 200."""
    size: int = pydantic.Field(ge=1, le=MAX_REQUESTS)
    """The newest N such requests."""


class Candidate(base.ApiModel):
    """The version under test, called directly at its InferenceService's address (not through the
    router, whose counters therefore never see the replay)."""

    version: int
    """Its model version."""
    url: str = pydantic.Field(pattern=r"^https?://")
    """The InferenceService's address (status.address.url), called over plain HTTP as the router
    calls it."""
    model: str = pydantic.Field(min_length=1)
    """Its KServe model name (the path's {name})."""


class ReplayRequest(base.ApiModel):
    """One replay: the captured requests, the candidate and the bounds of the work."""

    capture: Capture
    """The captured requests."""
    candidate: Candidate
    """The version under test."""
    metric: QualityMetric | None = None
    """Quality on requests with feedback: accuracy, mae, or none (tasks without labels)."""
    timeout_seconds: float = pydantic.Field(10.0, gt=0, le=120)
    """Per request: a slower answer counts as an error."""
    concurrency: int = pydantic.Field(8, ge=1, le=64)
    """Requests in flight at once."""
    budget_seconds: float = pydantic.Field(300.0, gt=0, le=3600)
    """The whole replay: no new request is sent after this long; the answer counts what was replayed."""
    default_credentials: bool = False
    """Whether S3 may be read with the pod's default AWS credential chain when no keys are given
    (the project's ``spec.storage.useDefaultCredentials``)."""


class ReplayResult(base.ApiModel):
    """What the replay measured: counts only; the operator judges them."""

    requests: int = pydantic.Field(0, ge=0)
    """Captured requests replayed."""
    errors: int = pydantic.Field(0, ge=0)
    """Of those, the ones the candidate failed (not 2xx, timeout, unreachable)."""
    compared: int = pydantic.Field(0, ge=0)
    """Answered requests whose predictions could be compared with the recorded ones."""
    agreed: int = pydantic.Field(0, ge=0)
    """Of those, the ones whose every prediction agrees."""
    labeled: int = pydantic.Field(0, ge=0)
    """Requests with one prediction each side and a ground truth (feedback)."""
    candidate_score: float = 0.0
    """Sum over the labeled requests: correct predictions (accuracy) or absolute errors (mae)."""
    stable_score: float = 0.0
    """The same sum for what the stable version answered then."""
    skipped: int = pydantic.Field(0, ge=0)
    """Captured requests that could not be replayed (a body stored cut or as text)."""
    first_error: str | None = None
    """What the first failed request got, e.g. "HTTP 500: ..."."""
    budget_exhausted: bool = False
    """True when the time budget ended the replay before every selected request was sent."""


class ReplayError(base.ApiModel):
    """What a replay that could not run answers (exit code 1)."""

    error: str
    """What went wrong and what to fix."""
