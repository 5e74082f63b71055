"""ModelDeployment: serving a model version through KServe and moving traffic between versions.

The kind's spec and status. Their parts live beside it: how versions are served and scaled
(``api/scaling.py``), how a new version replaces the stable one and is judged
(``api/strategy.py``), and what the status reports about a rollout (``api/rolloutstatus.py``).
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base, rolloutstatus, scaling
from mlkube.api import replay as replay_api
from mlkube.api import strategy as strategy_api


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
    serving: scaling.Serving = pydantic.Field(default_factory=scaling.Serving)
    """KServe settings."""
    router: scaling.Router = pydantic.Field(default_factory=scaling.Router)
    """Replicas of the router."""
    strategy: strategy_api.Strategy = pydantic.Field(default_factory=strategy_api.Strategy)
    """Rollout strategy."""
    postprocessing: Postprocessing = pydantic.Field(default_factory=Postprocessing)
    """Decision threshold and label names."""
    logging: Logging = pydantic.Field(default_factory=Logging)
    feedback: Feedback = pydantic.Field(default_factory=Feedback)
    """Authentication of the ground-truth endpoint."""
    """Traffic capture."""


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
    traffic: list[rolloutstatus.TrafficEntry] = []
    """The traffic table."""
    traffic_summary: str | None = None
    """The traffic table in one line, for kubectl get."""
    current_step: int | None = None
    """Index of the current canary step."""
    step_started_at: str | None = None
    """When the current step began."""
    candidate_ready_at: str | None = None
    """When the candidate first became ready; its first step, preview or test counts from here."""
    analysis: rolloutstatus.AnalysisResult | None = None
    """The latest analysis."""
    inconclusive_since: str | None = None
    """When the current step's pause (or preview, test or shadow duration) ended with its analysis
    still Inconclusive; the rollout pauses analysis.inconclusiveLimit intervals later."""
    last_analysis_time: str | None = None
    """When the latest analysis ran."""
    analysis_baseline: rolloutstatus.AnalysisBaseline | None = None
    """Where the current analysis window began."""
    ab_test: rolloutstatus.ABTestReport | None = None
    """The A/B test report: refreshed while an ABTest runs, kept once it ends until the next rollout starts."""
    ab_test_baseline: rolloutstatus.AnalysisBaseline | None = None
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
