"""MLProject controller: the model registry, the champion, scheduled retraining, run history.

The project's status is written here only, and each pass recomputes it from the project's
TrainingJobs, so a restarted operator converges without duplicate versions or runs. Passes
for one project are serialised in-process, and the status write carries the resourceVersion
it was computed from (a concurrent writer makes it retry instead of losing an update).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
from typing import Any

import kopf

from mlkube.clients import k8s
from mlkube.control.policy import registry, retraining, schedule
from mlkube.control.reconcile import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "mlprojects")
TICK_SECONDS = 5.0
_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", registry.CHAMPION_ANNOTATION))
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, name, namespace)


@kopf.on.event("mlkube.io", "v1alpha1", "trainingjobs")
async def run_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    tj_status = body.get("status") or {}
    if tj_status.get("phase") in ("Succeeded", "Failed") and tj_status.get("modelVersion") is None:
        await reconcile(memo.k8s, body["spec"]["projectRef"], namespace)


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, when=lambda spec, **_: bool((spec.get("retraining") or {}).get("schedule")))
async def scheduled(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, name, namespace)


async def reconcile(client: k8s.Client, name: str, namespace: str) -> None:
    """Recompute the project's status from its runs; start a scheduled run when a tick is due."""
    async with _locks[f"{namespace}/{name}"]:
        for _attempt in range(5):
            mlp = await client.get(k8s.MLPROJECTS, name, namespace)
            if mlp is None:
                return
            try:
                new = await _pass(client, mlp)
                if new != (mlp.get("status") or {}):
                    await client.patch_status(k8s.MLPROJECTS, name, namespace, status.merge_patch(mlp.get("status") or {}, new),
                                              resource_version=mlp["metadata"]["resourceVersion"])
                return
            except k8s.Conflict:
                continue
        raise kopf.TemporaryError(f"MLProject {namespace}/{name} kept changing; retrying", delay=1)


async def _pass(client: k8s.Client, mlp: dict[str, Any]) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = mlp["metadata"].get("generation", 1)
    current = dict(mlp.get("status") or {})
    try:
        spec = refs.parsed_project(mlp)
    except refs.MissingReference as invalid:
        return status.with_ready({**current, "phase": "Failed", "message": invalid.message}, ready=False,
                                 reason="InvalidSpec", message=invalid.message, generation=generation, at=now_text)
    runs = [tj for tj in await client.list(k8s.TRAININGJOBS, mlp["metadata"]["namespace"])
            if tj["spec"].get("projectRef") == mlp["metadata"]["name"]]
    finished = [f for f in map(registry.Finished.from_trainingjob, runs) if f is not None]
    models, added = registry.register(current.get("models", []), finished, now=now_text)
    for entry in added:
        kopf.info(mlp, reason="VersionRegistered", message=f"Version {entry['version']} from TrainingJob {entry['trainingJob']} "
                  f"({'eligible' if entry['eligible'] else 'not eligible: success criteria not met'})")
    champion, problem = _champion(mlp, spec, current.get("championVersion"), models, added, finished)
    if champion != current.get("championVersion") and champion is not None:
        kopf.info(mlp, reason="ChampionChanged", message=f"Version {champion} is the champion (was {current.get('championVersion')})")
    new = {**current, "phase": "Ready", "models": models, "versions": len(models)}
    if champion is not None:
        new["championVersion"] = champion
    new.update(await _schedule(client, mlp, spec, current, now))
    # Record automatic runs before the history limits may delete them: cooldown and daily budget
    # (retraining.decide) count them from here too.
    starts = retraining.automatic_starts(runs, current, now=now)
    if starts or "retrainTimes" in current:
        new["retrainTimes"] = starts
    if starts and starts[-1] > (current.get("lastRetrainTime") or ""):
        new["lastRetrainTime"] = starts[-1]
    await _prune_history(client, spec, runs, models)
    ready_message = problem or (f"{len(models)} version(s); champion {champion}" if models else "No model trained yet")
    new.pop("message", None)
    if problem:
        new["message"] = problem
    return status.with_ready(new, ready=problem is None, reason="ChampionAnnotationInvalid" if problem else "ProjectReady",
                             message=ready_message, generation=generation, at=now_text)


def _champion(mlp: dict[str, Any], spec: Any, current: int | None, models: list[dict[str, Any]],
              added: list[dict[str, Any]], finished: list[registry.Finished]) -> tuple[int | None, str | None]:
    if spec.promotion.policy == "manual":
        chosen, problem = registry.manual_champion(mlp["metadata"].get("annotations", {}).get(registry.CHAMPION_ANNOTATION), models)
        return (chosen if chosen is not None else current), problem
    comparisons = {f.name: f.comparison for f in finished if f.comparison}
    return registry.champion_after(current, added, models, promotion=spec.promotion,
                                   primary_metric=spec.problem.primary_metric, comparisons=comparisons), None


async def _schedule(client: k8s.Client, mlp: dict[str, Any], spec: Any, current: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """Start the run of a due tick (idempotently, by name) and report the next tick."""
    expression = spec.retraining.schedule
    if not expression or not schedule.is_valid(expression):
        return {}
    created = _parse_time(mlp["metadata"]["creationTimestamp"])
    last = _parse_time(current["lastScheduleTime"]) if current.get("lastScheduleTime") else None
    update: dict[str, Any] = {}
    tick = schedule.due_tick(expression, last=last, since=created, now=now)
    if tick is not None:
        await _start_run(client, mlp, schedule.run_name(mlp["metadata"]["name"], tick), trigger="schedule")
        update = {"lastScheduleTime": _format_time(tick)}  # the run itself goes into retrainTimes (see _pass)
    update["nextScheduledRetrain"] = _format_time(schedule.next_tick(expression, after=now))
    return update


async def _start_run(client: k8s.Client, mlp: dict[str, Any], name: str, *, trigger: str) -> bool:
    """Create a TrainingJob from the project's template; False if it already exists."""
    try:
        await client.create(retraining.trainingjob(mlp, name, trigger=trigger))
    except k8s.Conflict:
        return False
    kopf.info(mlp, reason="RetrainingStarted", message=f"Started TrainingJob {name} ({trigger})")
    return True


async def _prune_history(client: k8s.Client, spec: Any, runs: list[dict[str, Any]], models: list[dict[str, Any]]) -> None:
    """Delete the oldest finished runs beyond the history limits; registered versions stay in the registry."""
    registered = {m["trainingJob"] for m in models}
    succeeded = [r for r in runs if (r.get("status") or {}).get("phase") == "Succeeded" and r["metadata"]["name"] in registered]
    failed = [r for r in runs if (r.get("status") or {}).get("phase") == "Failed"]
    for group, limit in ((succeeded, spec.training.successful_jobs_history_limit), (failed, spec.training.failed_jobs_history_limit)):
        group.sort(key=lambda r: (r.get("status") or {}).get("completionTime") or r["metadata"]["creationTimestamp"])
        for run in group[: max(0, len(group) - limit)]:
            await client.delete(k8s.TRAININGJOBS, run["metadata"]["name"], run["metadata"]["namespace"])


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
