"""The model registry and the champion: pure decisions over the registered versions.

The registry is the project's ModelVersion objects (the source of truth, carried by backups)
together with the summary in ``MLProject.status.models`` (which may name versions registered
before ModelVersions existed: they are migrated with their numbers). ``known`` joins the two.

Versions are allocated by the MLProject controller alone, from the finished TrainingJobs, in
completion order, above every number either source has ever held: a project whose status was
wiped or restored from a backup continues after its ModelVersions instead of renumbering from 1.
A TrainingJob already registered keeps its version, so registration is idempotent: an operator
restarted at any point recomputes the same registry.

The champion honours eligibility and approvals (``eligibility``): under the auto policy only an
eligible version that is not rejected can take over; under the manual policy a new version
waits until a person approves it (``spec.approval``), and the ``mlkube.io/champion`` annotation
is refused for a version that is neither eligible nor approved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mlkube.api import base, kinds, project
from mlkube.api import modelversion as modelversion_api
from mlkube.api import training as training_api
from mlkube.control.policy import eligibility

CHAMPION_ANNOTATION = "mlkube.io/champion"


@dataclasses.dataclass(frozen=True)
class Finished:
    """A TrainingJob that produced a model version and awaits (or has) registration."""

    name: str
    completion_time: str
    algorithm: str | None
    test_metrics: dict[str, float]
    eligible: bool
    artifact_uri: str
    digest: str
    trigger: str
    comparison: training_api.Comparison | None
    validation_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    lineage: training_api.Lineage | None = None
    fairness: training_api.Fairness | None = None

    @classmethod
    def from_trainingjob(cls, tj: dict[str, Any]) -> Finished | None:
        """The registrable facts of a TrainingJob, or None if it produced no version."""
        status: training_api.TrainingJobStatus = kinds.TRAININGJOB.parse_status(tj.get("status"))
        if status.phase != "Succeeded" or not status.digest or not status.artifact_uri:
            return None
        return cls(
            name=tj["metadata"]["name"],
            completion_time=status.completion_time or "",
            algorithm=status.best_algorithm,
            test_metrics=dict(status.metrics.test) if status.metrics else {},
            eligible=bool(status.success_criteria_met),
            artifact_uri=status.artifact_uri,
            digest=status.digest,
            trigger=(tj.get("spec") or {}).get("trigger", "manual"),
            comparison=status.comparison,
            validation_metrics=dict(status.metrics.validation) if status.metrics else {},
            params=dict(status.best_params or {}),
            lineage=status.lineage,
            fairness=status.fairness,
        )

    @property
    def fairness_metrics(self) -> dict[str, float]:
        """The run's summary fairness metrics (empty when it measured none)."""
        return dict(self.fairness.metrics) if self.fairness is not None else {}


def measured(source: project.ModelEntry | modelversion_api.ModelVersionSpec) -> dict[str, float]:
    """What a version's criteria are judged on: its test metrics and its summary fairness metrics
    (a registry entry's, or a ModelVersion's ``spec.fairness.metrics``)."""
    if isinstance(source, project.ModelEntry):
        return {**source.metrics, **(source.fairness or {})}
    recorded = (source.fairness or {}).get("metrics") or {}
    fairness = {k: float(v) for k, v in recorded.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**source.metrics.test, **fairness}


def entry_of(
    mv: modelversion_api.ModelVersionSpec, *, created_at: str, criteria: Sequence[project.Criterion]
) -> project.ModelEntry:
    """The registry entry of a ModelVersion; its eligibility under the project's current ``criteria``."""
    return project.ModelEntry(
        version=mv.version,
        training_job=mv.training_job,
        created_at=created_at,
        algorithm=mv.algorithm,
        metrics=dict(mv.metrics.test),
        fairness={k: v for k, v in measured(mv).items() if k not in mv.metrics.test} or None,
        eligible=not eligibility.failed_criteria(measured(mv), criteria),
        artifact_uri=mv.artifact_uri,
        digest=mv.digest,
        trigger=mv.trigger,
    )


def known(
    objects: Sequence[dict[str, Any]], entries: Sequence[project.ModelEntry], *, criteria: Sequence[project.Criterion]
) -> list[project.ModelEntry]:
    """Every registered version, by number: the ModelVersion ``objects`` (as listed; the source of
    truth) and the status ``entries`` that have no ModelVersion yet (to migrate)."""
    by_version = {e.version: e for e in entries}
    for mv in objects:
        spec = parsed(mv)
        if spec is not None:
            by_version[spec.version] = entry_of(spec, created_at=mv["metadata"].get("creationTimestamp", ""), criteria=criteria)
    return [by_version[v] for v in sorted(by_version)]


def parsed(mv: dict[str, Any]) -> modelversion_api.ModelVersionSpec | None:
    """A ModelVersion's spec, or None when it cannot be read (the API server's schema makes that rare)."""
    try:
        return kinds.MODELVERSION.parse_spec(mv.get("spec") or {})
    except ValueError:
        return None


def approvals(objects: Sequence[dict[str, Any]]) -> dict[int, modelversion_api.Approval]:
    """The people's decisions, by version number, from the ModelVersion ``objects``."""
    return {spec.version: spec.approval for spec in map(parsed, objects) if spec is not None}


def is_pending(tj: dict[str, Any]) -> bool:
    """Whether a TrainingJob has finished but has no model version yet: its project has a
    version to register or a history limit to apply."""
    status = tj.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed") and status.get("modelVersion") is None


def register(
    models: Sequence[project.ModelEntry],
    finished: Sequence[Finished],
    *,
    now: str,
    criteria: Sequence[project.Criterion] = (),
) -> tuple[list[project.ModelEntry], list[project.ModelEntry]]:
    """The registry with every unregistered finished run appended; also returns the new entries.

    Versions continue from the highest registered one without gaps, in completion order. A new
    version is eligible when its run met its success criteria and the project's current
    ``criteria`` (success and fairness) hold on its test and fairness metrics.
    """
    known = {(m.training_job, m.digest) for m in models}
    pending = sorted((f for f in finished if (f.name, f.digest) not in known), key=lambda f: (f.completion_time, f.name))
    next_version = max((m.version for m in models), default=0) + 1
    added = [
        project.ModelEntry(
            version=next_version + offset,
            training_job=run.name,
            created_at=now,
            algorithm=run.algorithm,
            metrics=run.test_metrics,
            fairness=run.fairness_metrics or None,
            eligible=run.eligible and not eligibility.failed_criteria({**run.test_metrics, **run.fairness_metrics}, criteria),
            artifact_uri=run.artifact_uri,
            digest=run.digest,
            trigger=run.trigger,
        )
        for offset, run in enumerate(pending)
    ]
    return [*models, *added], added


def champion_after(
    current: int | None,
    new_entries: Sequence[project.ModelEntry],
    models: Sequence[project.ModelEntry],
    *,
    promotion: project.Promotion,
    primary_metric: str,
    comparisons: Mapping[str, training_api.Comparison],
    decisions: Mapping[int, modelversion_api.Approval] | None = None,
) -> int | None:
    """The champion once ``new_entries`` are registered and the people's ``decisions`` (approvals
    by version) are taken into account.

    Auto policy: a new version takes over when it is eligible, not rejected, and beats the
    champion on the primary metric by ``minImprovement``, measured on the same holdout when the run
    compared itself with the champion (``comparisons`` by TrainingJob name), else on the registered
    test metrics. Manual policy: the newest approved version above the champion takes over (a new
    version waits in Pending until then). Under either, a champion that was rejected hands over to
    the best remaining usable version.
    """
    decisions = decisions or {}
    by_version = {m.version: m for m in models}
    if current is not None and _state(decisions, current) == "Rejected":
        current = _best_usable(models, decisions, primary_metric)
    if promotion.policy != "auto":
        approved = [m.version for m in models if _state(decisions, m.version) == "Approved"]
        newest = max(approved, default=None)
        return newest if newest is not None and (current is None or newest > current) else current
    for entry in new_entries:
        if not entry.eligible or primary_metric not in entry.metrics or _state(decisions, entry.version) == "Rejected":
            continue
        if current is None or current not in by_version:
            current = entry.version
            continue
        new_score, old_score = _scores(entry, by_version[current], primary_metric, comparisons.get(entry.training_job))
        if old_score is None or base.is_improvement(
            primary_metric, new_score, old_score, min_improvement=promotion.min_improvement
        ):
            current = entry.version
    return current


def _state(decisions: Mapping[int, modelversion_api.Approval], version: int) -> str:
    approval = decisions.get(version)
    return approval.state if approval else "Pending"


def _best_usable(
    models: Sequence[project.ModelEntry], decisions: Mapping[int, modelversion_api.Approval], metric: str
) -> int | None:
    """The usable version (eligible or approved, not rejected) with the best test ``metric``."""
    usable = [
        m
        for m in models
        if _state(decisions, m.version) != "Rejected"
        and (m.eligible or _state(decisions, m.version) == "Approved")
        and metric in m.metrics
    ]
    best = None
    for entry in usable:
        if best is None or base.is_improvement(metric, entry.metrics[metric], best.metrics[metric]):
            best = entry
    return best.version if best else None


def _scores(
    entry: project.ModelEntry, champion: project.ModelEntry, metric: str, comparison: training_api.Comparison | None
) -> tuple[float, float | None]:
    same_holdout = comparison and comparison.champion_version == champion.version and comparison.metric == metric
    if same_holdout and comparison.challenger is not None and comparison.champion is not None:
        return comparison.challenger, comparison.champion
    return entry.metrics[metric], champion.metrics.get(metric)


def manual_champion(annotation: str | None, models: Sequence[project.ModelEntry]) -> tuple[int | None, str | None]:
    """The version chosen by the ``mlkube.io/champion`` annotation, or an error message. Whether
    that version may be champion is ``eligibility.refusal``'s question."""
    if annotation is None:
        return None, None
    try:
        version = int(annotation)
    except ValueError:
        return None, f"annotation {CHAMPION_ANNOTATION}={annotation!r} is not a version number"
    if not any(m.version == version for m in models):
        return None, f"annotation {CHAMPION_ANNOTATION}={version}: no such version in the registry"
    return version, None
