"""One ModelVersion pass, as data: eligibility, champion, serving, aliases, approval and retention.

``plan`` derives the whole status from the version's registered facts, its project (success
criteria, primary metric, champion, retention), its sibling versions (aliases and retention are
decided across the project) and the ModelDeployments that serve it. The approval's Event is
posted once per decision: ``status.approval`` records the state last acted on.

Phases: ``Rejected`` (a person rejected it: never served), ``Retired`` (retention retired it),
``Champion``, ``Eligible`` (its success criteria hold, or a person approved it), ``Registered``.

Once ``registry.gracePeriod`` has passed since a version was retired, and unless it is protected
at that pass (``policy.purge``), the plan creates its purge Job (``manifests.purge``), which deletes
the artifacts with the tenant's credentials in the version's namespace. The Job's success sets
``status.artifactsDeleted`` with an ``ArtifactsDeleted`` Event and deletes the Job; its failure
is a Warning Event and ``Ready=False`` (``ArtifactDeletionFailed``) until a new Job, started
``policy.purge.RETRY_SECONDS`` later, tries again.

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
from mlkube.common import timestamps, uris
from mlkube.control.manifests import meta, training
from mlkube.control.manifests import purge as purge_manifests
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, eligibility, registry, releases, selection
from mlkube.control.policy import purge as purge_policy

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
    purge_job: dict[str, Any] | None = None
    """The version's purge Job (``manifests.purge.job_name``) as read; read only for a version
    whose stored status is retired with its artifacts not deleted yet."""
    purge_pods: tuple[dict[str, Any], ...] = ()
    """The purge Job's pods, read once it has failed (the failure is in the termination message)."""
    secret_missing: bool = False
    """The project's ``spec.storage.credentialsSecret`` does not exist (read before a purge Job would reference it)."""
    image: str = meta.IMAGE
    """The image that runs the purge Job (the operator's own, as for trainers and drift checks)."""


@dataclasses.dataclass(frozen=True)
class _Purge:
    """What a pass does about a retired version's artifacts."""

    deleted: bool = False
    apply: tuple[dict[str, Any], ...] = ()
    create: tuple[dict[str, Any], ...] = ()
    delete: tuple[plans.ObjectRef, ...] = ()
    events: tuple[plans.Event, ...] = ()
    problem: plans.Unresolved | None = None
    """Why the artifacts are not deleted although they are due (the Ready condition says so)."""
    kept: str | None = None
    """Why the artifacts of a version retired longer than the grace period are kept (it is protected)."""


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
    purging = _purge(mv, spec, project, observed, new, champion=champion, served=served, now=now)
    new = new.model_copy(update={"artifacts_deleted": new.artifacts_deleted or purging.deleted})
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
    elif purging.problem is not None:
        new = new.model_copy(update={"message": purging.problem.message})
    problem = purging.problem if not refused else None
    new = conditions.with_ready(
        new,
        ready=not refused and problem is None,
        reason="AliasRefused" if refused else problem.reason if problem else new.phase,
        message=new.message or _summary(new, spec, kept=purging.kept),
        generation=generation,
        now=stamp,
    )
    events = _events(current, new, spec, failed=failed, problem=problem) + purging.events
    return plans.Plan(status=new, apply=purging.apply, create=purging.create, delete=purging.delete, events=events)


def _purge(
    mv: dict[str, Any],
    spec: modelversion_api.ModelVersionSpec,
    project: project_api.MLProjectSpec,
    observed: Observed,
    new: modelversion_api.ModelVersionStatus,
    *,
    champion: int | None,
    served: dict[int, list[str]],
    now: datetime.datetime,
) -> _Purge:
    """The deletion of a retired version's artifacts: the outcome of its purge Job, or the Job once
    the grace period has passed, unless the version is protected at this pass."""
    if not new.retired_at or new.artifacts_deleted:
        return _Purge()
    uri, namespace = spec.artifact_uri, mv["metadata"]["namespace"]
    job_ref = plans.ObjectRef("batch/v1", "Job", purge_manifests.job_name(mv), namespace)
    protected = purge_policy.protection(
        spec.version,
        champion=champion,
        served=served,
        pinned=purge_policy.pinned(observed.deployments, spec.project_ref),
        approved=spec.approval.state == "Approved",
        aliases=new.aliases,
    )
    if observed.purge_job is not None:
        job = purge_policy.state(observed.purge_job, observed.purge_pods)
        if job.phase == "Succeeded":
            message = (
                f"Deleted the artifacts of version {spec.version} at {uri} (retired at {new.retired_at}, "
                f"registry.gracePeriod {project.registry.grace_period})"
            )
            return _Purge(deleted=True, delete=(job_ref,), events=(plans.info("ArtifactsDeleted", message),))
        if job.phase == "Failed":
            message = (
                f"Deleting the artifacts of version {spec.version} at {uri} failed: {job.message}; "
                f"a new Job tries again {purge_policy.RETRY_SECONDS} s after the failure"
            )
            retry = (job_ref,) if purge_policy.is_retry_due(job, now=now) else ()
            return _Purge(delete=retry, problem=plans.Unresolved("ArtifactDeletionFailed", message))
        # Running. Protection wins even now: a version protected since its Job started keeps what is left.
        return _Purge(delete=(job_ref,) if protected else (), kept=protected)
    if not purge_policy.is_due(new.retired_at, project.registry.grace_period, now=now):
        return _Purge()
    if protected:
        return _Purge(kept=protected)
    runs = uris.join(project.storage.uri, "runs")
    if not uris.is_inside(uri, runs):
        message = (
            f"The artifacts of version {spec.version} at {uri} are not inside the project's {runs}/ "
            "(spec.storage.uri): they are not deleted; remove them by hand if nothing else needs them"
        )
        return _Purge(problem=plans.Unresolved("ArtifactsOutsideStorage", message))
    if observed.secret_missing:
        message = (
            f"Secret {project.storage.credentials_secret!r} (MLProject {spec.project_ref} spec.storage.credentialsSecret) "
            f"does not exist: the artifacts of version {spec.version} at {uri} are deleted once it does"
        )
        return _Purge(problem=plans.Unresolved("SecretNotFound", message))
    job = purge_manifests.purge_job(
        mv, artifact_uri=uri, storage=project.storage, project_name=spec.project_ref, image=observed.image
    )
    return _Purge(apply=(training.trainer_service_account(namespace),), create=(job,))


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


def _summary(
    status: modelversion_api.ModelVersionStatus, spec: modelversion_api.ModelVersionSpec, *, kept: str | None = None
) -> str:
    served = f"; served by {', '.join(status.served_by)}" if status.served_by else ""
    criteria = "" if status.eligible else f"; fails {'; '.join(status.failed_criteria)}"
    deleted = "; its artifacts are deleted" if status.artifacts_deleted else f"; its artifacts are kept: {kept}" if kept else ""
    return f"Version {spec.version} ({status.phase}, approval {spec.approval.state}{criteria}){served}{deleted}"


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
    problem: plans.Unresolved | None,
) -> tuple[plans.Event, ...]:
    """A decision acted on for the first time (approval or rejection, with its reason), retirement,
    an alias refused and why artifacts due for deletion are not deleted (once per message)."""
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
    if problem is not None and new.message != old.message:
        found.append(plans.warning(problem.reason, problem.message))
    return tuple(found)
