"""ModelDeployment: serving a model version through KServe and moving traffic between versions."""

from __future__ import annotations

import re
from typing import Literal

import pydantic

from mlkube.api import base
from mlkube.api import replay as replay_api


class ModelSelector(base.ApiModel):
    """Which version to serve: a fixed version, the project's champion, or a release alias."""

    version: int | None = pydantic.Field(None, ge=1)
    """A fixed version from the project's registry (the GitOps way: the version is in Git)."""
    track: Literal["champion"] | None = None
    """Follow the project's champion: each new champion rolls out by the strategy."""
    alias: str | None = pydantic.Field(None, min_length=1, max_length=63, pattern=base.DNS_LABEL)
    """Follow a release alias (``ModelVersion.spec.aliases``, e.g. production): moving the alias to
    another version rolls that version out by the strategy."""

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> ModelSelector:
        if sum(x is not None for x in (self.version, self.track, self.alias)) != 1:
            raise ValueError("set exactly one of version, track or alias")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.version) ? 1 : 0) + (has(self.track) ? 1 : 0) + (has(self.alias) ? 1 : 0) == 1",
                    "message": "set exactly one of version, track or alias",
                }
            ]
        }
    )


class Batching(base.ApiModel):
    """Adaptive batching in each model server: concurrent requests scored in one predict call."""

    enabled: bool = True
    """true: requests that arrive together are validated one by one, scored in one pipeline call,
    and answered one by one (each keeps its request id, a bad request fails alone); false: one
    pipeline call per request."""
    max_batch_size: int = pydantic.Field(64, ge=1, le=10000)
    """Rows scored in one call at most; a request with more rows is scored alone."""
    # 1ms to 1s: waiting longer for neighbours would cost more latency than batching saves.
    max_latency: str = pydantic.Field("2ms", pattern=r"^([1-9][0-9]{0,2}ms|1s)$")
    """Longest a request waits for others to join its batch, 1ms to 1s (e.g. 2ms, 10ms). Only
    under concurrent load: an idle server scores a lone request at once."""

    def max_latency_seconds(self) -> float:
        """`max_latency` in seconds."""
        return base.parse_duration(self.max_latency).total_seconds()


class Autoscaling(base.ApiModel):
    """How KServe scales each version's predictor between two bounds."""

    min_replicas: int = pydantic.Field(1, ge=0, le=1000)
    """Fewest replicas per version; 0 (scale to zero) needs deploymentMode Serverless."""
    max_replicas: int = pydantic.Field(ge=1, le=1000)
    """Most replicas per version."""
    metric: Literal["cpu", "memory", "concurrency", "rps"] = "cpu"
    """What the autoscaler holds at the target: cpu or memory utilization (%), in-flight requests
    per replica (concurrency) or requests per second per replica (rps). concurrency and rps are
    Knative's metrics and need deploymentMode Serverless."""
    target: int = pydantic.Field(ge=1)
    """The metric's target per replica: a percentage for cpu and memory, a count for concurrency
    and rps."""
    autoscaler: Literal["hpa", "keda"] = "hpa"
    """RawDeployment's autoscaler class: KServe's HorizontalPodAutoscaler, or a KEDA ScaledObject
    (KEDA installed in the cluster). Serverless uses Knative's autoscaler."""

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is above maxReplicas ({self.max_replicas})")
        if self.metric in ("cpu", "memory") and self.target > 100:
            raise ValueError(f"target: {self.metric} utilization is a percentage, 1 to 100 (got {self.target})")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas is above maxReplicas",
                }
            ]
        }
    )


class Serving(base.ApiModel):
    """How each version is served by KServe."""

    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe deployment mode of the InferenceServices."""
    replicas: int = pydantic.Field(1, ge=0, le=1000)
    """Replicas per version (a fixed count; see autoscaling for a range)."""
    autoscaling: Autoscaling | None = None
    """Scale each version between minReplicas and maxReplicas on a metric (replaces replicas)."""
    resources: base.ResourceRequirements | None = None
    """Resources of the model server container."""
    batching: Batching = pydantic.Field(default_factory=Batching)
    """Adaptive batching of concurrent requests in each model server."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.autoscaling) || !has(self.autoscaling.metric) || "
                    "self.autoscaling.metric in ['cpu', 'memory'] || "
                    "(has(self.deploymentMode) && self.deploymentMode == 'Serverless')",
                    "message": "autoscaling.metric concurrency and rps need deploymentMode: Serverless",
                    "fieldPath": ".autoscaling.metric",
                }
            ]
        }
    )

    @pydantic.model_validator(mode="after")
    def _autoscaling_fits_the_mode(self) -> Serving:
        scaling = self.autoscaling
        if scaling is None or self.deployment_mode == "Serverless":
            return self
        if scaling.metric in ("concurrency", "rps"):
            raise ValueError(
                f"autoscaling.metric: {scaling.metric} is a Knative metric; use deploymentMode: Serverless, "
                "or metric cpu or memory in RawDeployment"
            )
        if scaling.min_replicas == 0:
            raise ValueError("autoscaling.minReplicas: scale to zero needs deploymentMode: Serverless")
        return self


class Router(base.ApiModel):
    """The router Deployment in front of the versions: how many replicas share the traffic."""

    replicas: int = pydantic.Field(1, ge=1, le=100)
    """Router replicas (the fewest, with maxReplicas). Every replica routes by the same table and
    hashes sticky A/B keys the same way; analysis sums all replicas' counters."""
    max_replicas: int | None = pydantic.Field(None, ge=1, le=100)
    """With a value above replicas, a HorizontalPodAutoscaler scales the router between the two
    on CPU utilization."""
    target_cpu_utilization: int = pydantic.Field(70, ge=1, le=100)
    """The HorizontalPodAutoscaler's target average CPU utilization (% of the router's request)."""

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> Router:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below replicas ({self.replicas})")
        return self

    @property
    def autoscaled(self) -> bool:
        """Whether a HorizontalPodAutoscaler owns the router's replica count."""
        return self.max_replicas is not None and self.max_replicas > self.replicas


class CanaryStep(base.ApiModel):
    """One canary step."""

    weight: int = pydantic.Field(ge=0, le=100)
    """Percent of traffic to the candidate."""
    pause: base.Duration | None = None
    """How long to hold this step while the analysis runs (default: one analysis interval)."""


class Canary(base.ApiModel):
    """Canary steps; after the last step the candidate takes 100%."""

    steps: list[CanaryStep] = pydantic.Field(
        default_factory=lambda: [CanaryStep(weight=10, pause="1m"), CanaryStep(weight=50, pause="1m")], min_length=1
    )
    """Weights in order, each held for its pause."""


class BlueGreen(base.ApiModel):
    """Blue/green: the candidate gets a preview address, then all traffic at once."""

    preview_duration: base.Duration = "5m"
    """How long the preview runs before the switch."""
    promote_without_traffic: bool = False
    """false: the switch waits until the preview has answered at least analysis.minRequests
    requests (send them to status.previewUrl); a preview nobody tried is never promoted, and after
    analysis.inconclusiveLimit more intervals without them the rollout pauses for a person. true:
    switch when previewDuration is over whatever the preview received (still never on a Failing
    analysis)."""


class ABTest(base.ApiModel):
    """A/B test: a fixed split for a duration, then a report."""

    weight: int = pydantic.Field(50, ge=0, le=100)
    """Percent of traffic to the candidate (B)."""
    sticky_header: str | None = None
    """Request header whose value pins a client to one version."""
    duration: base.Duration = "1d"
    """How long the test runs (at most: see earlyStop)."""
    early_stop: bool = True
    """true: the test ends before its duration as soon as its sequential test
    (status.abTest.sequential, an mSPRT whose always-valid p-value may be looked at on every pass
    without raising the false-positive rate) finds a winner at 0.05 with analysis.minRequests
    labeled predictions per version: a better candidate is promoted (or awaits promotion), a worse
    one rolled back (or paused), as at the end of the duration. false: the test runs its whole
    duration (e.g. to cover a weekly cycle), then the fixed-horizon test decides."""


class Shadow(base.ApiModel):
    """Shadow: mirror traffic to the candidate and compare predictions; clients see the stable version only."""

    percent: int = pydantic.Field(100, ge=1, le=100)
    """Share of requests mirrored."""
    duration: base.Duration = "1h"
    """How long to mirror."""


# successCondition: comparisons of `result` with a number, joined by `and` / `or` (`and` binds
# tighter), e.g. "result < 0.3" or "result >= 0 and result <= 1". control.policy.metricchecks
# evaluates exactly this language; the pattern lets the API server refuse anything else.
_NUMBER = r"-?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?"
_COMPARISON = rf"result *(<=|>=|==|!=|<|>) *{_NUMBER}"
SUCCESS_CONDITION_PATTERN = rf"^ *{_COMPARISON}( +(and|or) +{_COMPARISON})* *$"
SUCCESS_CONDITION_HELP = (
    "successCondition must compare result with numbers (<, <=, >, >=, ==, !=), joined by and/or, "
    'e.g. "result < 0.3" or "result >= 0.9 and result <= 1"'
)


class PrometheusQuery(base.ApiModel):
    """An instant query against a Prometheus server's HTTP API (``GET /api/v1/query``)."""

    address: str = pydantic.Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """The server's base URL, e.g. http://prometheus.monitoring:9090 (http or https, no query string)."""
    query: str = pydantic.Field(min_length=1, max_length=4096)
    """The PromQL expression; its value is ``result``: a scalar, or the first sample of a vector."""


class MetricProvider(base.ApiModel):
    """Where a metric check reads its value."""

    prometheus: PrometheusQuery
    """A Prometheus instant query."""


class MetricCheck(base.ApiModel):
    """A metric the candidate must keep within bounds while it is analysed (Argo Rollouts'
    AnalysisTemplate idea): queried on every analysis pass; a Failing check fails the analysis,
    an Inconclusive one (no sample, NaN, the server unreachable) keeps it Inconclusive."""

    name: str = pydantic.Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$")
    """Names the check in status.analysis.failedChecks and Events."""
    provider: MetricProvider
    """Where the value comes from."""
    success_condition: str = pydantic.Field(min_length=1, max_length=512)
    """When the value is acceptable: comparisons of ``result`` with a number (<, <=, >, >=, ==, !=)
    joined by ``and`` / ``or``, e.g. "result < 0.3"."""

    @pydantic.field_validator("success_condition")
    @classmethod
    def _condition(cls, value: str) -> str:
        if not re.fullmatch(SUCCESS_CONDITION_PATTERN, value):
            raise ValueError(SUCCESS_CONDITION_HELP)
        return value

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.successCondition.matches('{SUCCESS_CONDITION_PATTERN}')", "message": SUCCESS_CONDITION_HELP}
            ]
        }
    )


class Analysis(base.ApiModel):
    """Automatic analysis on the router's measurements."""

    interval: base.Duration = "30s"
    """How often to analyse."""
    min_requests: int = pydantic.Field(50, ge=0)
    """Fewer candidate requests in a step's window keep its analysis Inconclusive (never Passing)."""
    max_error_rate: float = pydantic.Field(0.01, ge=0, le=1)
    """Highest acceptable share of failed requests (5xx, unreachable), judged on its confidence
    interval: Failing only when the whole interval lies above, Passing only when it lies at or below."""
    max_latency_p99: base.Duration | None = None
    """Highest acceptable 99th percentile latency, judged on a distribution-free interval of the p99
    from the router's latency histogram (choose a bucket bound: 10ms, 25ms, 50ms, 100ms, 250ms,
    500ms, 1s, 2500ms, 5s or 10s). No latency gate unless set: what is fast enough depends on the
    model and the nodes, and a default would roll back a good version on a busy node."""
    min_agreement: float | None = pydantic.Field(None, ge=0, le=1)
    """Lowest acceptable share of candidate predictions equal to the stable version's, judged on its
    confidence interval where the router compares them (Canary, Shadow). Unset: no agreement gate
    (a new version exists to predict differently), except for Shadow, where agreement is the only
    signal: 0.9."""
    confidence: float = pydantic.Field(0.95, ge=0.5, lt=1)
    """Confidence level of the intervals every gate is judged on (two-sided)."""
    inconclusive_limit: int = pydantic.Field(3, ge=0, le=1000)
    """Analysis intervals a rollout keeps collecting once a step's pause (or a preview, A/B test or
    shadow duration) is over while its analysis is still Inconclusive; still Inconclusive after
    them, the rollout pauses (phase Paused) for mlkube.io/action=promote or abort. 0: pause at
    once."""

    metrics: list[MetricCheck] = pydantic.Field(default_factory=list, max_length=20)
    """Metric checks against Prometheus, judged beside the router's gates."""


class Strategy(base.ApiModel):
    """How a new version replaces the stable one."""

    type: Literal["Direct", "BlueGreen", "Canary", "ABTest", "Shadow"] = "Canary"
    """Direct, BlueGreen, Canary, ABTest or Shadow."""
    canary: Canary = pydantic.Field(default_factory=Canary)
    """Canary settings."""
    blue_green: BlueGreen = pydantic.Field(default_factory=BlueGreen)
    """Blue/green settings."""
    ab_test: ABTest = pydantic.Field(default_factory=ABTest)
    """A/B test settings."""
    shadow: Shadow = pydantic.Field(default_factory=Shadow)
    """Shadow settings."""
    analysis: Analysis = pydantic.Field(default_factory=Analysis)
    """Automatic analysis."""
    auto_promote: bool = True
    """false: wait for kubectl annotate mdep NAME mlkube.io/action=promote."""
    on_failure: Literal["rollback", "pause"] = "rollback"
    """What a failed analysis does."""
    scale_down_delay: base.Duration | None = None
    """How long the previous stable version's InferenceService stays warm after a promotion while
    the analysis keeps judging the new stable version; a Failing verdict (or mlkube.io/action=abort)
    in that time switches 100% of traffic back to it at once. Unset: the previous version is
    retired right after the promotion."""
    replay: replay_api.Replay | None = None
    """Replay before promote, for every strategy: once the candidate is Ready and before any live
    request reaches it, it scores the newest captured requests the stable version answered (see
    status.replay). Unset: no replay."""


class Postprocessing(base.ApiModel):
    """Applied by the model server after the model."""

    threshold: float | None = pydantic.Field(None, ge=0, le=1)
    """Decision threshold on the positive class probability (binary classification)."""
    labels: dict[str, str] = {}
    """Names for the model's labels, e.g. {"0": stay, "1": churn}."""


class Logging(base.ApiModel):
    """Capture of requests and responses for monitoring."""

    enabled: bool = True
    """Capture traffic."""
    sample_rate: float = pydantic.Field(1.0, ge=0, le=1)
    """Share of requests captured."""


class SecretKeyRef(base.ApiModel):
    """One key of a Secret in the ModelDeployment's namespace."""

    name: base.ObjectName
    """The Secret's name."""
    key: str = pydantic.Field("token", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key that holds the value."""


class Feedback(base.ApiModel):
    """Who may post ground truth to ``{status.url}/v1/feedback``."""

    token_secret_ref: SecretKeyRef | None = None
    """A Secret key holding a bearer token: feedback without ``Authorization: Bearer <token>`` is
    refused with 401. The router re-reads it when the Secret changes (rotation). Unset: feedback is
    accepted from anyone who can reach the router (restrict that with a NetworkPolicy)."""


class ModelDeploymentSpec(base.ApiModel):
    """Desired state of a ModelDeployment."""

    project_ref: base.ObjectName
    """Name of the MLProject in the same namespace."""
    model: ModelSelector
    """Which version to serve."""
    serving: Serving = pydantic.Field(default_factory=Serving)
    """KServe settings."""
    router: Router = pydantic.Field(default_factory=Router)
    """Replicas of the router."""
    strategy: Strategy = pydantic.Field(default_factory=Strategy)
    """Rollout strategy."""
    postprocessing: Postprocessing = pydantic.Field(default_factory=Postprocessing)
    """Decision threshold and label names."""
    logging: Logging = pydantic.Field(default_factory=Logging)
    feedback: Feedback = pydantic.Field(default_factory=Feedback)
    """Authentication of the ground-truth endpoint."""
    """Traffic capture."""


class TrafficEntry(base.ApiModel):
    """A version's share of traffic."""

    version: int
    """Model version."""
    role: Literal["stable", "canary", "preview", "b", "shadow"]
    """Its role in the rollout."""
    percent: int = pydantic.Field(ge=0, le=100)
    """Percent of client traffic it answers (mirrored traffic for shadow)."""


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


class ModelDeploymentStatus(base.StatusBase):
    """Observed state of a ModelDeployment."""

    phase: Literal["Pending", "Progressing", "Healthy", "Degraded", "RolledBack", "Paused"] | None = None
    """Pending, Progressing, Healthy, Degraded, RolledBack or Paused."""
    url: str | None = None
    """Where clients send predictions."""
    preview_url: str | None = None
    """Blue/green preview address of the candidate."""
    stable_version: int | None = None
    """The version serving clients."""
    candidate_version: int | None = None
    """The version being rolled out."""
    traffic: list[TrafficEntry] = []
    """The traffic table."""
    traffic_summary: str | None = None
    """The traffic table in one line, for kubectl get."""
    current_step: int | None = None
    """Index of the current canary step."""
    step_started_at: str | None = None
    """When the current step began."""
    candidate_ready_at: str | None = None
    """When the candidate first became ready; its first step, preview or test counts from here."""
    analysis: AnalysisResult | None = None
    """The latest analysis."""
    inconclusive_since: str | None = None
    """When the current step's pause (or preview, test or shadow duration) ended with its analysis
    still Inconclusive; the rollout pauses analysis.inconclusiveLimit intervals later."""
    last_analysis_time: str | None = None
    """When the latest analysis ran."""
    analysis_baseline: AnalysisBaseline | None = None
    """Where the current analysis window began."""
    ab_test: ABTestReport | None = None
    """The A/B test report: refreshed while an ABTest runs, kept once it ends until the next rollout starts."""
    ab_test_baseline: AnalysisBaseline | None = None
    """The stable version's router counters when the A/B test began."""
    retiring_versions: list[int] = []
    """Versions out of the traffic table whose InferenceServices go on the next pass, once the router has switched."""
    rolled_back_version: int | None = None
    """The last candidate that was rolled back; it is not retried until the spec asks for another version."""
    previous_version: int | None = None
    """The stable version before the last promotion, kept warm (0% of traffic) until scaleDownAt."""
    scale_down_at: str | None = None
    """When previousVersion is retired (the promotion plus strategy.scaleDownDelay)."""
    replaying_since: str | None = None
    """When the candidate's replay step began; while set the candidate takes no traffic (its
    replay runs, or a failed replay paused the rollout)."""
    replay: replay_api.ReplayStatus | None = None
    """The replay of the current candidate (kept after the rollout ends, until the next one starts)."""
