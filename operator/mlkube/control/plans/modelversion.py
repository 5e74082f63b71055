"""One ModelVersion pass, as data: eligibility, champion, serving, aliases, approval and retention.

``plan`` derives the whole status from the version's registered facts, its project (success
criteria, primary metric, champion, retention), its sibling versions (aliases and retention are
decided across the project) and the ModelDeployments that serve it. The approval's Event is
posted once per decision: ``status.approval`` records the state last acted on.

Phases: ``Rejected`` (a person rejected it: never served), ``Retired`` (retention retired it),
``Champion``, ``Eligible`` (its success criteria hold, or a person approved it), ``Registered``.

Must not: read the clock or the cluster (``now`` and the observations are arguments).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pydantic

from mlkube.api import artifact, errors, kinds
from mlkube.api import modelversion as modelversion_api
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, eligibility, registry, releases, selection

RETRY_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a pass reads besides the ModelVersion itself."""

    project: dict[str, Any] | None = None
    """The MLProject (``spec.projectRef``) as read; None when it does not exist."""
    siblings: tuple[dict[str, Any], ...] = ()
    """Every ModelVersion of the project, this one included, as listed."""
    deployments: tuple[dict[str, Any], ...] = ()
    """The ModelDeployments of the namespace, as listed."""


def plan(mv: dict[str, Any], observed: Observed, *, now: datetime.datetime) -> plans.Plan:
    """The pass over ModelVersion ``mv`` (as read) given ``observed`` at ``now``."""
    stamp = timestamps.format(now)
    generation = mv["metadata"].get("generation", 1)
    current: modelversion_api.ModelVersionStatus = kinds.MODELVERSION.parse_status(mv.get("status"))
    try:
        spec: modelversion_api.ModelVersionSpec = kinds.MODELVERSION.parse_spec(mv.get("spec") or {})
    except pydantic.ValidationError as error:
        message = f"ModelVersion {mv['metadata']['name']!r} is invalid: {errors.describe(error)}"
        return plans.Plan(status=_not_ready(current, "InvalidSpec", message, generation=generation, now=stamp))
    if observed.project is None:
        message = f"spec.projectRef: MLProject {spec.project_ref!r} does not exist in namespace {mv['metadata']['namespace']!r}"
        status = _not_ready(current, "ProjectNotFound", message, generation=generation, now=stamp)
        return plans.Plan(status=status, retry_after=RETRY_SECONDS, retry_reason=message)
    try:
        project: project_api.MLProjectSpec = kinds.MLPROJECT.parse_spec(observed.project.get("spec") or {})
    except pydantic.ValidationError as error:
        message = f"MLProject {spec.project_ref!r} is invalid: {errors.describe(error)}"
        return plans.Plan(status=_not_ready(current, "ProjectInvalid", message, generation=generation, now=stamp))
    project_status: project_api.MLProjectStatus = kinds.MLPROJECT.parse_status(observed.project.get("status"))

    failed = eligibility.failed_criteria(registry.measured(spec), eligibility.criteria_of(project))
    claims = selection.claims(observed.siblings, project_name=spec.project_ref, criteria=eligibility.criteria_of(project))
    resolution = releases.resolve(claims)
    served = releases.serving(observed.deployments, spec.project_ref)
    # A project whose status was lost (restored from a backup) has no champion until its next pass
    # recovers it from the ModelVersions: until then each version keeps what it recorded.
    status_lost = project_status.observed_generation is None
    champion = (spec.version if current.champion else None) if status_lost else project_status.champion_version
    retired = spec.version in selection.retired(
        observed.siblings,
        project_name=spec.project_ref,
        criteria=eligibility.criteria_of(project),
        keep=project.registry.keep,
        champion=champion,
        served=served,
    )

    primary = project.problem.primary_metric
    value = spec.metrics.test.get(primary)
    new = current.model_copy(
        update={
            "primary_metric": f"{primary}={value:.4g}" if value is not None else None,
            "eligible": not failed,
            "failed_criteria": failed,
            "champion": champion == spec.version,
            "served_by": served.get(spec.version, []),
            "aliases": sorted(a for a, v in resolution.holders.items() if v == spec.version),
            "approval": spec.approval.state,
            "retired_at": (current.retired_at or stamp) if retired else None,
            "card_uri": spec.artifact_uri.rstrip("/") + "/" + artifact.CARD_PAGE,
            "phase": _phase(spec, eligible=not failed, champion=champion == spec.version, retired=retired),
            "message": None,
        }
    )
    refused = resolution.refused.get(spec.version, ())
    if refused:
        new = new.model_copy(
            update={
                "message": f"alias {', '.join(refused)} refused: "
                + (
                    eligibility.refusal(
                        spec.version,
                        project_name=spec.project_ref,
                        metrics=registry.measured(spec),
                        criteria=eligibility.criteria_of(project),
                        approval=spec.approval,
                    )
                    or ""
                )
            }
        )
    new = conditions.with_ready(
        new,
        ready=not refused,
        reason="AliasRefused" if refused else new.phase,
        message=new.message or _summary(new, spec),
        generation=generation,
        now=stamp,
    )
    return plans.Plan(status=new, events=_events(current, new, spec, failed=failed))


def _phase(spec: modelversion_api.ModelVersionSpec, *, eligible: bool, champion: bool, retired: bool) -> str:
    if spec.approval.state == "Rejected":
        return "Rejected"
    if champion:
        return "Champion"
    if retired:
        return "Retired"
    if eligible or spec.approval.state == "Approved":
        return "Eligible"
    return "Registered"


def _summary(status: modelversion_api.ModelVersionStatus, spec: modelversion_api.ModelVersionSpec) -> str:
    served = f"; served by {', '.join(status.served_by)}" if status.served_by else ""
    criteria = "" if status.eligible else f"; fails {'; '.join(status.failed_criteria)}"
    return f"Version {spec.version} ({status.phase}, approval {spec.approval.state}{criteria}){served}"


def _not_ready(
    current: modelversion_api.ModelVersionStatus, reason: str, message: str, *, generation: int, now: str
) -> modelversion_api.ModelVersionStatus:
    status = current.model_copy(update={"message": message})
    return conditions.with_ready(status, ready=False, reason=reason, message=message, generation=generation, now=now)


def _events(
    old: modelversion_api.ModelVersionStatus,
    new: modelversion_api.ModelVersionStatus,
    spec: modelversion_api.ModelVersionSpec,
    *,
    failed: list[str],
) -> tuple[plans.Event, ...]:
    """A decision acted on for the first time (approval or rejection, with its reason), retirement,
    and an alias refused (once per message)."""
    found = []
    decision = spec.approval
    if old.approval != decision.state and decision.state != "Pending":
        if decision.state == "Approved":
            override = f" although it fails {'; '.join(failed)}" if failed else ""
            found.append(plans.info("Approved", f"Version {spec.version} approved{override}: {decision.reason}"))
        else:
            found.append(plans.warning("Rejected", f"Version {spec.version} rejected: {decision.reason}; it is never served"))
    if new.retired_at and not old.retired_at:
        found.append(plans.info("Retired", f"Version {spec.version} retired by the project's retention (registry.keep)"))
    if new.message and new.message != old.message and new.message.startswith("alias"):
        found.append(plans.warning("AliasRefused", new.message))
    return tuple(found)
