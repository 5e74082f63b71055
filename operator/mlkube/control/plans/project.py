"""One MLProject pass, as data: the registry, the champion, the scheduled run, the run history.

``plan`` recomputes the project's status from its ModelVersions and TrainingJobs, so a restarted
operator, or a project whose status was lost, converges without duplicate or reused versions or
runs. Each newly registered version becomes a ModelVersion to create (so does a version known
only from an older operator's status: migration, numbers unchanged); the status keeps a summary
(champion, count, latest, the versions not retired). An alias the user added to one version is
removed from the version that had it (``releases.resolve``). A due schedule tick becomes a TrainingJob to create, with a
name derived from the tick (one run per tick, whatever the number of passes); runs beyond the
history limits become deletions. Events are data, derived from the old and new status, and are
posted by the executor only once the status is written.

Must not: read the clock or the cluster (``now`` and the observations are arguments).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

import pydantic

from mlkube.api import base, errors, kinds
from mlkube.api import modelversion as modelversion_api
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.manifests import registry as registry_manifests
from mlkube.control.manifests import retraining as retraining_manifests
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, eligibility, registry, releases, retraining, schedule, selection


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a pass reads besides the MLProject itself."""

    runs: tuple[dict[str, Any], ...] = ()
    """The project's TrainingJobs (``spec.projectRef`` is the project), as listed."""
    versions: tuple[dict[str, Any], ...] = ()
    """The project's ModelVersions (label ``mlkube.io/project``), as listed."""
    deployments: tuple[dict[str, Any], ...] = ()
    """The namespace's ModelDeployments, as listed (retention keeps what they serve)."""


def plan(mlp: dict[str, Any], observed: Observed, *, now: datetime.datetime) -> plans.Plan:
    """The pass for ``mlp`` (as read) given its ``observed`` runs at ``now`` (aware, whole seconds)."""
    generation = mlp["metadata"].get("generation", 1)
    stamp = timestamps.format(now)
    current: project_api.MLProjectStatus = kinds.MLPROJECT.parse_status(mlp.get("status"))
    try:
        spec: project_api.MLProjectSpec = kinds.MLPROJECT.parse_spec(mlp.get("spec", {}))
    except pydantic.ValidationError as error:
        message = f"MLProject {mlp['metadata']['name']!r} is invalid: {errors.describe(error)}"
        failed = current.model_copy(update={"phase": "Failed", "message": message})
        return plans.Plan(
            status=conditions.with_ready(
                failed, ready=False, reason="InvalidSpec", message=message, generation=generation, now=stamp
            )
        )
    finished = [f for f in map(registry.Finished.from_trainingjob, observed.runs) if f is not None]
    known = registry.known(observed.versions, current.models, criteria=eligibility.criteria_of(spec))
    decisions = registry.approvals(observed.versions)
    models, added = registry.register(known, finished, now=stamp, criteria=eligibility.criteria_of(spec))
    recorded = current.champion_version if current.champion_version is not None else _recorded_champion(observed.versions)
    champion, problem = _champion_of(
        mlp, spec, current=recorded, models=models, added=added, finished=finished, decisions=decisions
    )
    run, tick_update = _scheduled(mlp, spec, current, now=now)
    # Record automatic runs before the history limits may delete them: cooldown and daily budget
    # (retraining.decide) count them from here too.
    starts = retraining.automatic_starts(observed.runs, recorded=current.retrain_times, now=now)
    last_retrain = starts[-1] if starts and starts[-1] > (current.last_retrain_time or "") else current.last_retrain_time
    retired = selection.retired(
        observed.versions,
        project_name=mlp["metadata"]["name"],
        criteria=eligibility.criteria_of(spec),
        keep=spec.registry.keep,
        champion=champion,
        served=releases.serving(observed.deployments, mlp["metadata"]["name"]),
    )
    new = current.model_copy(
        update={
            "phase": "Ready",
            "models": [m for m in models if m.version not in retired or m.version == champion],
            "versions": len(models),
            "latest_version": models[-1].version if models else None,
            "champion_version": champion,
            "message": problem.message if problem else None,
            "retrain_times": starts,
            "last_retrain_time": last_retrain,
            **tick_update,
        }
    )
    ready_message = (
        problem.message if problem else (f"{len(models)} version(s); champion {champion}" if models else "No model trained yet")
    )
    new = conditions.with_ready(
        new,
        ready=problem is None,
        reason=problem.reason if problem else "ProjectReady",
        message=ready_message,
        generation=generation,
        now=stamp,
    )
    moves = releases.resolve(
        selection.claims(observed.versions, project_name=mlp["metadata"]["name"], criteria=eligibility.criteria_of(spec))
    )
    return plans.Plan(
        status=new,
        create=(run,) if run else (),
        create_after_status=_model_versions(mlp, models, observed.versions, finished),
        delete=_pruned(spec, observed.runs, stored=current.models, models=models),
        patch=_alias_removals(mlp, observed.versions, moves),
        events=_events(
            current.model_copy(update={"champion_version": recorded}),
            new,
            added=added,
            started=run,
            spec=spec,
            decisions=decisions,
            moves=moves,
            mlp=mlp,
        ),
    )


def _eligibility(entry: project_api.ModelEntry, criteria: Sequence[project_api.Criterion]) -> str:
    """``eligible``, or ``not eligible: fails ...`` naming the criteria (success or fairness) it fails."""
    if entry.eligible:
        return "eligible"
    failed = eligibility.failed_criteria(registry.measured(entry), criteria)
    return f"not eligible: fails {'; '.join(failed)}" if failed else "not eligible: success criteria not met"


def _recorded_champion(versions: Sequence[dict[str, Any]]) -> int | None:
    """The champion as the ModelVersions record it (after the project's status was lost)."""
    recorded = [(mv.get("spec") or {}).get("version") for mv in versions if (mv.get("status") or {}).get("champion") is True]
    return max((v for v in recorded if isinstance(v, int)), default=None)


def _model_versions(
    mlp: dict[str, Any],
    models: Sequence[project_api.ModelEntry],
    versions: Sequence[dict[str, Any]],
    finished: Sequence[registry.Finished],
) -> tuple[dict[str, Any], ...]:
    """A ModelVersion for every registered version that has none: the ones registered by this
    pass, and those an older operator kept only in status (migration, numbers unchanged)."""
    have = {(mv.get("spec") or {}).get("version") for mv in versions}
    runs = {f.name: f for f in finished}
    created = []
    for entry in models:
        if entry.version in have:
            continue
        run = runs.get(entry.training_job)
        created.append(
            registry_manifests.model_version(
                mlp,
                entry,
                validation_metrics=run.validation_metrics if run else None,
                params=run.params if run else None,
                lineage=run.lineage if run else None,
                fairness=run.fairness if run else None,
            )
        )
    return tuple(created)


def _alias_removals(
    mlp: dict[str, Any], versions: Sequence[dict[str, Any]], moves: releases.Resolution
) -> tuple[plans.Patch, ...]:
    """Merge patches taking each moved alias off the version that had it."""
    patches = []
    for mv in versions:
        spec = mv.get("spec") or {}
        gone = moves.moved_from.get(spec.get("version"))
        if gone:
            kept = [a for a in spec.get("aliases") or [] if a not in gone]
            target = plans.ObjectRef(base.API_VERSION, "ModelVersion", mv["metadata"]["name"], mlp["metadata"]["namespace"])
            patches.append(plans.Patch(target, {"spec": {"aliases": kept}}))
    return tuple(patches)


@dataclasses.dataclass(frozen=True)
class _Problem:
    reason: str
    message: str


def _champion_of(
    mlp: dict[str, Any],
    spec: project_api.MLProjectSpec,
    *,
    current: int | None,
    models: Sequence[project_api.ModelEntry],
    added: Sequence[project_api.ModelEntry],
    finished: Sequence[registry.Finished],
    decisions: dict[int, modelversion_api.Approval],
) -> tuple[int | None, _Problem | None]:
    """The champion after this pass's registrations and approvals, and what is wrong with a manual choice.

    Under the manual policy the ``mlkube.io/champion`` annotation chooses, if the version it names
    is eligible or approved (otherwise the current champion stays, and the problem says why);
    without the annotation, and under auto, ``registry.champion_after`` decides."""
    comparisons = {f.name: f.comparison for f in finished if f.comparison}
    decided = registry.champion_after(
        current,
        added,
        models,
        promotion=spec.promotion,
        primary_metric=spec.problem.primary_metric,
        comparisons=comparisons,
        decisions=decisions,
    )
    if spec.promotion.policy != "manual":
        return decided, None
    annotation = (mlp["metadata"].get("annotations") or {}).get(registry.CHAMPION_ANNOTATION)
    chosen, problem = registry.manual_champion(annotation, models)
    if problem:
        return decided, _Problem("ChampionAnnotationInvalid", problem)
    if chosen is None:
        return decided, None
    entry = next(m for m in models if m.version == chosen)
    refusal = eligibility.refusal(
        chosen,
        project_name=mlp["metadata"]["name"],
        metrics=registry.measured(entry),
        criteria=eligibility.criteria_of(spec),
        approval=decisions.get(chosen, modelversion_api.Approval()),
    )
    if refusal:
        return decided, _Problem(eligibility.REASON, f"annotation {registry.CHAMPION_ANNOTATION}={chosen}: {refusal}")
    return chosen, None


def _scheduled(
    mlp: dict[str, Any], spec: project_api.MLProjectSpec, current: project_api.MLProjectStatus, *, now: datetime.datetime
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The TrainingJob of a due schedule tick (or None) and the status fields of the schedule.

    The tick is recorded in ``lastScheduleTime``; the run itself joins ``retrainTimes`` once it is
    listed. Without a (valid) schedule, the recorded schedule fields are left as they are."""
    expression = spec.retraining.schedule
    if not expression or not schedule.is_valid(expression):
        return None, {}
    created = timestamps.parse(mlp["metadata"]["creationTimestamp"])
    last = timestamps.parse(current.last_schedule_time) if current.last_schedule_time else None
    update = {"next_scheduled_retrain": timestamps.format(schedule.next_tick(expression, after=now))}
    tick = schedule.due_tick(expression, last=last, since=created, now=now)
    if tick is None:
        return None, update
    name = schedule.run_name(mlp["metadata"]["name"], tick)
    run = retraining_manifests.training_job(mlp, spec, name=name, trigger="schedule")
    return run, {**update, "last_schedule_time": timestamps.format(tick)}


def _pruned(
    spec: project_api.MLProjectSpec,
    runs: Sequence[dict[str, Any]],
    *,
    stored: Sequence[project_api.ModelEntry],
    models: Sequence[project_api.ModelEntry],
) -> tuple[plans.ObjectRef, ...]:
    """The oldest finished runs beyond the history limits; registered versions stay in the registry.

    Succeeded runs count once registered (``models``), but only a run whose version is already in
    the ``stored`` registry is deleted: a run registered by this pass stays until its version is
    written, so a retried pass can never lose it."""
    in_models = {m.training_job for m in models}
    in_stored = {m.training_job for m in stored}
    succeeded = [r for r in runs if _phase(r) == "Succeeded" and r["metadata"]["name"] in in_models]
    failed = [r for r in runs if _phase(r) == "Failed"]
    refs = []
    for group, limit in (
        (succeeded, spec.training.successful_jobs_history_limit),
        (failed, spec.training.failed_jobs_history_limit),
    ):
        group.sort(
            key=lambda r: (
                (r.get("status") or {}).get("completionTime") or r["metadata"]["creationTimestamp"],
                r["metadata"]["name"],
            )
        )
        for run in group[: max(0, len(group) - limit)]:
            if _phase(run) == "Failed" or run["metadata"]["name"] in in_stored:
                refs.append(
                    plans.ObjectRef(base.API_VERSION, "TrainingJob", run["metadata"]["name"], run["metadata"]["namespace"])
                )
    return tuple(refs)


def _events(
    old: project_api.MLProjectStatus,
    new: project_api.MLProjectStatus,
    *,
    added: Sequence[project_api.ModelEntry],
    started: dict[str, Any] | None,
    spec: project_api.MLProjectSpec,
    decisions: dict[int, modelversion_api.Approval],
    moves: releases.Resolution,
    mlp: dict[str, Any],
) -> tuple[plans.Event, ...]:
    """The Events of the transition from ``old`` to ``new``: each version registered (``added``),
    a new champion (a Warning when only an approval makes it usable, with the approval's reason),
    an alias moved, and the scheduled run ``started``."""
    found = [
        plans.info(
            "VersionRegistered",
            f"Version {entry.version} from TrainingJob {entry.training_job} "
            f"({_eligibility(entry, eligibility.criteria_of(spec))})",
        )
        for entry in added
    ]
    champion = new.champion_version
    if champion != old.champion_version and champion is not None:
        entry = next((m for m in new.models if m.version == champion), None)
        approval = decisions.get(champion, modelversion_api.Approval())
        if entry is not None and eligibility.is_override(registry.measured(entry), eligibility.criteria_of(spec), approval):
            failed = "; ".join(eligibility.failed_criteria(registry.measured(entry), eligibility.criteria_of(spec)))
            found.append(
                plans.warning(
                    "ChampionByApproval",
                    f"Version {champion} is the champion (was {old.champion_version}) although it fails {failed}: "
                    f"approved ({approval.reason})",
                )
            )
        else:
            found.append(plans.info("ChampionChanged", f"Version {champion} is the champion (was {old.champion_version})"))
    for version, aliases in sorted(moves.moved_from.items()):
        for alias in aliases:
            found.append(
                plans.info(
                    "AliasMoved",
                    f"Alias {alias} moved to version {moves.holders[alias]} "
                    f"(removed from {modelversion_api.name_of(mlp['metadata']['name'], version)})",
                )
            )
    if started is not None:
        found.append(
            plans.info("RetrainingStarted", f"Started TrainingJob {started['metadata']['name']} ({started['spec']['trigger']})")
        )
    return tuple(found)


def _phase(run: dict[str, Any]) -> str | None:
    return (run.get("status") or {}).get("phase")
