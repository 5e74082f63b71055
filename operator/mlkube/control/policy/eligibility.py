"""Whether a model version may be champion or served: its criteria and its approval.

A version is *eligible* when every success criterion of its project holds on its test metrics
and every fairness criterion (``spec.fairness.criteria``) on its summary fairness metrics (an
unmeasured metric does not hold); ``criteria_of`` lists both kinds and ``registry.measured`` joins
the two kinds of measurement, whose metric names differ. It is *usable* (may become champion, be pinned by a
ModelDeployment or carry an alias) when it is eligible and not rejected, or when a person
approved it with a reason (an override, recorded in an Event). A rejected version is never usable.

Every path to serving asks ``refusal`` the same question, so the messages users read are the
same on the project (the champion annotation) and on a ModelDeployment (a pinned version).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlkube.api import modelversion, project

REASON = "VersionNotEligible"
"""The Ready condition's reason when a path to serving refuses a version."""


def criteria_of(spec: project.MLProjectSpec) -> list[project.Criterion]:
    """Every criterion a version of the project ``spec`` must meet: its success criteria, then its fairness criteria."""
    return [*spec.success_criteria, *(spec.fairness.criteria if spec.fairness is not None else [])]


def failed_criteria(metrics: Mapping[str, float], criteria: Sequence[project.Criterion]) -> list[str]:
    """The criteria that do not hold on ``metrics``, as people read them: ``roc_auc >= 0.9 (measured 0.85)``."""
    failed = []
    for criterion in criteria:
        value = metrics.get(criterion.metric)
        if value is None:
            failed.append(f"{criterion.metric} {criterion.op} {criterion.threshold:g} (not measured)")
        elif not criterion.holds(value):
            failed.append(f"{criterion.metric} {criterion.op} {criterion.threshold:g} (measured {value:.4g})")
    return failed


def refusal(
    version: int,
    *,
    project_name: str,
    metrics: Mapping[str, float],
    criteria: Sequence[project.Criterion],
    approval: modelversion.Approval,
) -> str | None:
    """Why ``version`` may not be champion or served, or None when it may."""
    name = modelversion.name_of(project_name, version)
    if approval.state == "Rejected":
        return f"version {version} was rejected ({approval.reason}); a rejected version is never served"
    failed = failed_criteria(metrics, criteria)
    if not failed or approval.state == "Approved":
        return None
    kinds = [
        kind
        for kind, of_kind in (("success", project.SuccessCriterion), ("fairness", project.FairnessCriterion))
        if failed_criteria(metrics, [c for c in criteria if isinstance(c, of_kind)])
    ]
    return (
        f"version {version} does not meet the {' and '.join(kinds)} criteria: {'; '.join(failed)}. To use it anyway, approve it "
        f"with a reason: kubectl patch mv {name} --type merge "
        """-p '{"spec":{"approval":{"state":"Approved","reason":"..."}}}'"""
    )


def is_override(metrics: Mapping[str, float], criteria: Sequence[project.Criterion], approval: modelversion.Approval) -> bool:
    """Whether a version is usable only because a person approved it."""
    return approval.state == "Approved" and bool(failed_criteria(metrics, criteria))
