"""How a ModelDeployment moves traffic to a new version, and how that version is judged.

``spec.strategy`` of the ModelDeployment kind (``api/deployment.py``): the strategies (Canary,
BlueGreen, ABTest, Shadow; Direct has no settings) and the automatic analysis that gates them
(the router's error rate, latency and agreement, Prometheus metric checks, a label-free
performance estimate). Plain data with their validation; the CRD schema is generated from them,
so their wire names are the API. The decisions taken on them live in ``control/policy``.
"""

from __future__ import annotations

import re
from typing import Literal

import pydantic

from mlkube.api import base
from mlkube.api import replay as replay_api


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


class EstimatedPerformance(base.ApiModel):
    """A label-free quality gate for classifiers: confidence-based performance estimation (CBPE).

    The router accumulates the predicted probabilities the candidate serves (a bounded histogram
    per version); the analysis turns them into the accuracy or ROC AUC the candidate should reach
    on this traffic if its probabilities are calibrated, and compares it with the version's test
    metric. Where ground truth arrives (``/v1/feedback``) the real metric is judged against the
    same threshold, and it overrides the estimate."""

    metric: Literal["accuracy", "roc_auc"] | None = None
    """accuracy or roc_auc (binary classifiers only). Unset: the project's primaryMetric when it
    is one of them, else accuracy."""
    max_drop: float = pydantic.Field(0.05, ge=0, le=1)
    """Largest acceptable drop below the version's test metric: the gate fails when the estimate's
    whole confidence interval lies below test value minus maxDrop."""
    min_samples: int = pydantic.Field(200, ge=1, le=1_000_000)
    """Scored predictions (rows with probabilities) the window needs before the gate can pass or fail."""


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
    estimated_performance: EstimatedPerformance | None = None
    """Label-free performance estimate (CBPE) of a classifier as a gate; unset: none. The router
    then reads the probabilities in the watched version's answers."""


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
