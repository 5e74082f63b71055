"""The model registry and the champion: pure decisions over the project's typed status.

Versions are allocated by the MLProject controller alone, from the finished TrainingJobs,
in completion order; a TrainingJob already in the registry keeps its version. That makes
registration idempotent: an operator restarted at any point recomputes the same registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mlkube.api import base, kinds, project
from mlkube.api import training as training_api

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
        )


def is_pending(tj: dict[str, Any]) -> bool:
    """Whether a TrainingJob has finished but has no model version yet: its project has a
    version to register or a history limit to apply."""
    status = tj.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed") and status.get("modelVersion") is None


def register(
    models: Sequence[project.ModelEntry], finished: Sequence[Finished], *, now: str
) -> tuple[list[project.ModelEntry], list[project.ModelEntry]]:
    """The registry with every unregistered finished run appended; also returns the new entries.

    Versions continue from the highest registered one without gaps, in completion order.
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
            eligible=run.eligible,
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
) -> int | None:
    """The champion once ``new_entries`` are registered, under the auto policy.

    A new version takes over when it is eligible and beats the champion on the primary metric by
    ``minImprovement``, measured on the same holdout when the run compared itself with the
    champion (``comparisons`` by TrainingJob name), else on the registered test metrics.
    """
    if promotion.policy != "auto":
        return current
    by_version = {m.version: m for m in models}
    for entry in new_entries:
        if not entry.eligible or primary_metric not in entry.metrics:
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


def _scores(
    entry: project.ModelEntry, champion: project.ModelEntry, metric: str, comparison: training_api.Comparison | None
) -> tuple[float, float | None]:
    same_holdout = comparison and comparison.champion_version == champion.version and comparison.metric == metric
    if same_holdout and comparison.challenger is not None and comparison.champion is not None:
        return comparison.challenger, comparison.champion
    return entry.metrics[metric], champion.metrics.get(metric)


def manual_champion(annotation: str | None, models: Sequence[project.ModelEntry]) -> tuple[int | None, str | None]:
    """The version chosen by the ``mlkube.io/champion`` annotation, or an error message."""
    if annotation is None:
        return None, None
    try:
        version = int(annotation)
    except ValueError:
        return None, f"annotation {CHAMPION_ANNOTATION}={annotation!r} is not a version number"
    if not any(m.version == version for m in models):
        return None, f"annotation {CHAMPION_ANNOTATION}={version}: no such version in the registry"
    return version, None
