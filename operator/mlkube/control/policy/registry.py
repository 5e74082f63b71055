"""The model registry and the champion: pure decisions over the project's status.

Versions are allocated by the MLProject controller alone, from the finished TrainingJobs,
in completion order; a TrainingJob already in the registry keeps its version. That makes
registration idempotent: an operator restarted at any point recomputes the same registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlkube.api import base, project

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
    comparison: dict[str, Any] | None

    @classmethod
    def from_trainingjob(cls, tj: dict[str, Any]) -> Finished | None:
        """The registrable facts of a TrainingJob, or None if it produced no version."""
        status = tj.get("status") or {}
        if status.get("phase") != "Succeeded" or not status.get("digest") or not status.get("artifactUri"):
            return None
        return cls(
            name=tj["metadata"]["name"],
            completion_time=status.get("completionTime") or "",
            algorithm=status.get("bestAlgorithm"),
            test_metrics=(status.get("metrics") or {}).get("test", {}),
            eligible=bool(status.get("successCriteriaMet")),
            artifact_uri=status["artifactUri"],
            digest=status["digest"],
            trigger=(tj.get("spec") or {}).get("trigger", "manual"),
            comparison=status.get("comparison"),
        )


def register(models: list[dict[str, Any]], finished: list[Finished], *, now: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The registry with every unregistered finished run appended; also returns the new entries.

    Versions continue from the highest registered one without gaps, in completion order.
    """
    known = {(m["trainingJob"], m["digest"]) for m in models}
    pending = sorted((f for f in finished if (f.name, f.digest) not in known), key=lambda f: (f.completion_time, f.name))
    next_version = max((m["version"] for m in models), default=0) + 1
    added = []
    for offset, run in enumerate(pending):
        entry = project.ModelEntry(
            version=next_version + offset, training_job=run.name, created_at=now, algorithm=run.algorithm,
            metrics=run.test_metrics, eligible=run.eligible, artifact_uri=run.artifact_uri, digest=run.digest,
            trigger=run.trigger,
        ).wire()
        added.append(entry)
    return models + added, added


def champion_after(current: int | None, new_entries: list[dict[str, Any]], models: list[dict[str, Any]], *,
                   promotion: project.Promotion, primary_metric: str, comparisons: dict[str, dict[str, Any]]) -> int | None:
    """The champion once ``new_entries`` are registered, under the auto policy.

    A new version takes over when it is eligible and beats the champion on the primary metric by
    ``minImprovement``, measured on the same holdout when the run compared itself with the
    champion (``comparisons`` by TrainingJob name), else on the registered test metrics.
    """
    if promotion.policy != "auto":
        return current
    by_version = {m["version"]: m for m in models}
    for entry in new_entries:
        if not entry.get("eligible") or primary_metric not in entry.get("metrics", {}):
            continue
        if current is None or current not in by_version:
            current = entry["version"]
            continue
        new_score, old_score = _scores(entry, by_version[current], primary_metric, comparisons.get(entry["trainingJob"]))
        if old_score is None or base.is_improvement(primary_metric, new_score, old_score, min_improvement=promotion.min_improvement):
            current = entry["version"]
    return current


def _scores(entry: dict[str, Any], champion: dict[str, Any], metric: str, comparison: dict[str, Any] | None) -> tuple[float, float | None]:
    if comparison and comparison.get("championVersion") == champion["version"] and comparison.get("metric") == metric:
        challenger, incumbent = comparison.get("challenger"), comparison.get("champion")
        if challenger is not None and incumbent is not None:
            return challenger, incumbent
    return entry["metrics"][metric], champion.get("metrics", {}).get(metric)


def manual_champion(annotation: str | None, models: list[dict[str, Any]]) -> tuple[int | None, str | None]:
    """The version chosen by the ``mlkube.io/champion`` annotation, or an error message."""
    if annotation is None:
        return None, None
    try:
        version = int(annotation)
    except ValueError:
        return None, f"annotation {CHAMPION_ANNOTATION}={annotation!r} is not a version number"
    if not any(m["version"] == version for m in models):
        return None, f"annotation {CHAMPION_ANNOTATION}={version}: no such version in the registry"
    return version, None
