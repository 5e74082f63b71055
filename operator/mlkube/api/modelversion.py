"""ModelVersion: one registered model version, the registry as objects.

The MLProject controller creates one when a TrainingJob's model registers, named
``<project>-v<N>`` and owned by the MLProject. Its spec is written once and is immutable (CEL
transition rules, so the API server refuses an edit) except ``approval`` and ``aliases``, which
are the user's: ``kubectl patch mv churn-v4 --type merge -p '{"spec":{"approval":...}}'``. The
status is the operator's: whether the version is eligible, champion, served or retired.

Unlike ``MLProject.status`` (which a restore or ``kubectl get -o yaml | kubectl apply`` loses),
these objects are what a backup carries, so they are the registry's source of truth: version
numbers are allocated above every ModelVersion, and the champion is recovered from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from mlkube.api import base, training

ApprovalState = Literal["Pending", "Approved", "Rejected"]
Phase = Literal["Registered", "Eligible", "Champion", "Retired", "Rejected"]

PROJECT_LABEL = "mlkube.io/project"
"""Label on every ModelVersion: the name of its MLProject."""

_IMMUTABLE = {"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "is immutable"}]}
Alias = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]


def name_of(project: str, version: int) -> str:
    """``churn-v4``: the ModelVersion of ``project``'s version ``version``."""
    return f"{project}-v{version}"


class Approval(base.ApiModel):
    """A person's decision on the version, with the reason recorded in an Event."""

    state: ApprovalState = "Pending"
    """Pending (no decision), Approved (may be champion and served, even when not eligible) or
    Rejected (never served)."""
    reason: str = pydantic.Field("", max_length=1024)
    """Why: required to approve or reject."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.state) || self.state == 'Pending' || (has(self.reason) && size(self.reason) > 0)",
                    "message": "reason: say why the version is approved or rejected",
                }
            ]
        }
    )

    @pydantic.model_validator(mode="after")
    def _reason_unless_pending(self) -> Approval:
        if self.state != "Pending" and not self.reason.strip():
            raise ValueError(f"reason: say why the version is {self.state.lower()}")
        return self


class ModelVersionSpec(base.ApiModel):
    """The registered facts of one version, written once by the operator; ``approval`` and
    ``aliases`` are the user's."""

    project_ref: str = pydantic.Field(json_schema_extra=_IMMUTABLE)
    """The MLProject in the same namespace."""
    version: int = pydantic.Field(ge=1, json_schema_extra=_IMMUTABLE)
    """The version number, never reused within the project."""
    artifact_uri: str = pydantic.Field(json_schema_extra=_IMMUTABLE)
    """Where the version's artifacts are."""
    digest: str = pydantic.Field(json_schema_extra=_IMMUTABLE)
    """sha256 of the version's MANIFEST.json: every loader of the artifacts checks against this."""
    training_job: str = pydantic.Field(json_schema_extra=_IMMUTABLE)
    """The TrainingJob that produced it."""
    trigger: Literal["manual", "schedule", "drift"] = pydantic.Field("manual", json_schema_extra=_IMMUTABLE)
    """Why it was trained."""
    algorithm: str | None = pydantic.Field(None, json_schema_extra=_IMMUTABLE)
    """The algorithm of the model."""
    params: dict[str, Any] = pydantic.Field({}, json_schema_extra={**_IMMUTABLE, "x-kubernetes-preserve-unknown-fields": True})
    """Hyper-parameters of the best trial."""
    metrics: training.Metrics = pydantic.Field(default_factory=training.Metrics, json_schema_extra=_IMMUTABLE)
    """Scores on the validation and test partitions."""
    fairness: dict[str, Any] | None = pydantic.Field(
        None, json_schema_extra={**_IMMUTABLE, "x-kubernetes-preserve-unknown-fields": True}
    )
    """Fairness measurements of its run (``TrainingJob.status.fairness``), when the project measures fairness."""
    lineage: training.Lineage | None = pydantic.Field(None, json_schema_extra=_IMMUTABLE)
    """Where the version came from: its data sources (URI, content digest, rows), image, mlkube version."""
    approval: Approval = pydantic.Field(default_factory=Approval)
    """The user's decision: ``kubectl patch mv NAME --type merge -p '{"spec":{"approval":{"state":"Approved","reason":"..."}}}'``."""
    aliases: list[Alias] = pydantic.Field([], max_length=16)
    """Release stages such as staging or production; each alias is on one version of the project at a
    time (adding it here moves it from the version that had it), and only on an eligible or approved one."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.algorithm) == has(oldSelf.algorithm) && has(self.fairness) == has(oldSelf.fairness)"
                    " && has(self.lineage) == has(oldSelf.lineage) && has(self.params) == has(oldSelf.params)"
                    " && has(self.metrics) == has(oldSelf.metrics) && has(self.trigger) == has(oldSelf.trigger)",
                    "message": "the registered facts are immutable: only approval and aliases may change",
                }
            ]
        }
    )


class ModelVersionStatus(base.StatusBase):
    """What the operator concluded about the version."""

    phase: Phase | None = None
    """Registered, Eligible, Champion, Retired or Rejected."""
    primary_metric: str | None = None
    """The project's primary metric on the test partition, e.g. ``roc_auc=0.912``."""
    eligible: bool | None = None
    """Whether the project's success criteria hold on its test metrics and its fairness criteria on
    its fairness metrics."""
    failed_criteria: list[str] = []
    """The success and fairness criteria it fails, e.g. ``roc_auc >= 0.9 (measured 0.85)``."""
    champion: bool = False
    """Whether it is the project's champion."""
    served_by: list[str] = []
    """The ModelDeployments that serve it (stable, candidate or kept warm)."""
    aliases: list[str] = []
    """The aliases that resolve to it (its ``spec.aliases`` once the operator has accepted them)."""
    approval: ApprovalState | None = None
    """The approval state the operator last acted on (its Event is posted once)."""
    retired_at: str | None = None
    """When retention retired it; its artifacts are deleted once ``registry.gracePeriod`` has passed."""
    card_uri: str | None = None
    """The version's model card for people (HTML), beside the machine-readable ``model_card.json``."""
    artifacts_deleted: bool = False
    """Whether its artifacts were deleted after retirement."""
