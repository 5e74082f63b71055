"""One MLProject pass, as data: the registry, the champion, the scheduled run, the run history.

``plan`` recomputes the project's status from its TrainingJobs, so a restarted operator converges
without duplicate versions or runs. A due schedule tick becomes a TrainingJob to create, with a
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
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.manifests import retraining as retraining_manifests
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions, registry, retraining, schedule


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a pass reads besides the MLProject itself."""

    runs: tuple[dict[str, Any], ...] = ()
    """The project's TrainingJobs (``spec.projectRef`` is the project), as listed."""


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
    models, added = registry.register(current.models, finished, now=stamp)
    champion, problem = _champion_of(mlp, spec, current=current.champion_version, models=models, added=added, finished=finished)
    run, tick_update = _scheduled(mlp, spec, current, now=now)
    # Record automatic runs before the history limits may delete them: cooldown and daily budget
    # (retraining.decide) count them from here too.
    starts = retraining.automatic_starts(observed.runs, recorded=current.retrain_times, now=now)
    last_retrain = starts[-1] if starts and starts[-1] > (current.last_retrain_time or "") else current.last_retrain_time
    new = current.model_copy(
        update={
            "phase": "Ready",
            "models": models,
            "versions": len(models),
            "champion_version": champion,
            "message": problem,
            "retrain_times": starts,
            "last_retrain_time": last_retrain,
            **tick_update,
        }
    )
    ready_message = problem or (f"{len(models)} version(s); champion {champion}" if models else "No model trained yet")
    new = conditions.with_ready(
        new,
        ready=problem is None,
        reason="ChampionAnnotationInvalid" if problem else "ProjectReady",
        message=ready_message,
        generation=generation,
        now=stamp,
    )
    return plans.Plan(
        status=new,
        create=(run,) if run else (),
        delete=_pruned(spec, observed.runs, stored=current.models, models=models),
        events=_events(current, new, added=added, started=run),
    )


def _champion_of(
    mlp: dict[str, Any],
    spec: project_api.MLProjectSpec,
    *,
    current: int | None,
    models: Sequence[project_api.ModelEntry],
    added: Sequence[project_api.ModelEntry],
    finished: Sequence[registry.Finished],
) -> tuple[int | None, str | None]:
    """The champion after this pass's registrations, and what is wrong with a manual choice.

    Under the manual policy the ``mlkube.io/champion`` annotation chooses (an invalid one keeps the
    current champion); under auto, ``registry.champion_after`` decides."""
    if spec.promotion.policy == "manual":
        annotation = (mlp["metadata"].get("annotations") or {}).get(registry.CHAMPION_ANNOTATION)
        chosen, problem = registry.manual_champion(annotation, models)
        return (chosen if chosen is not None else current), problem
    comparisons = {f.name: f.comparison for f in finished if f.comparison}
    return registry.champion_after(
        current, added, models, promotion=spec.promotion, primary_metric=spec.problem.primary_metric, comparisons=comparisons
    ), None


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
) -> tuple[plans.Event, ...]:
    """The Events of the transition from ``old`` to ``new``: each version registered (``added``),
    a new champion, and the scheduled run ``started``."""
    found = [
        plans.info(
            "VersionRegistered",
            f"Version {entry.version} from TrainingJob {entry.training_job} "
            f"({'eligible' if entry.eligible else 'not eligible: success criteria not met'})",
        )
        for entry in added
    ]
    if new.champion_version != old.champion_version and new.champion_version is not None:
        found.append(
            plans.info("ChampionChanged", f"Version {new.champion_version} is the champion (was {old.champion_version})")
        )
    if started is not None:
        found.append(
            plans.info("RetrainingStarted", f"Started TrainingJob {started['metadata']['name']} ({started['spec']['trigger']})")
        )
    return tuple(found)


def _phase(run: dict[str, Any]) -> str | None:
    return (run.get("status") or {}).get("phase")
