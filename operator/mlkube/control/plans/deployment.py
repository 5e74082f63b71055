"""The ModelDeployment's pass as a pure function: what it saw in, what to do out.

``plan(obj, observed, *, now, image)`` parses the spec and the stored status, resolves the
version the spec asks for against the project's registry, measures the version under analysis
and lets ``rollout.decide`` pick the next rollout state from what the InferenceServices and the
router report (``plans.deployment_rollout``: the analysis, the A/B report, the traffic as
routed), and returns the whole desired state: every child the deployment owns
(``plans.deployment_children``: an InferenceService per served version, the router and its
table, the storage ServiceAccount); the InferenceServices of versions that left the table on an
earlier pass, to delete; the typed status; the transition's Events; the consumed
``mlkube.io/action`` annotation to clear.

Versions that leave the table are deleted one pass later (``status.retiringVersions``): by then
the router has had a watch event's time to switch, so no request is sent to a version being
deleted. ``status.inconclusiveSince`` carries an undecided step across passes, so its
``AnalysisInconclusive`` Event is posted once and ``inconclusiveLimit`` counts from it. A replay
step (``strategy.replay``) adds its Job and ``status.replay`` (``plans.replay``).

Must not: do I/O or read the clock (``now`` is an argument).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from mlkube.api import deployment as deployment_api
from mlkube.api import errors, kinds
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.plans import deployment_children, deployment_rollout
from mlkube.control.plans import plan as plans
from mlkube.control.plans import replay as replay_plans
from mlkube.control.policy import analysis, conditions, eligibility, kserve, registry, rollout, selection

ACTION_ANNOTATION = "mlkube.io/action"
RETRY_SECONDS = 15


@dataclasses.dataclass(frozen=True)
class Observed:
    """Everything one pass read besides the ModelDeployment itself."""

    project: project_api.MLProjectSpec | None = None
    """The referenced MLProject's spec; set unless ``unresolved`` (or the spec is invalid)."""
    registry: project_api.MLProjectStatus = dataclasses.field(default_factory=project_api.MLProjectStatus)
    """The MLProject's status: the registry summary and the champion."""
    versions: tuple[dict[str, Any], ...] = ()
    """The project's ModelVersions, as listed: the registry's source of truth (digests, approvals, aliases)."""
    unresolved: plans.Unresolved | None = None
    """Why the project cannot be used (ProjectNotFound, ProjectInvalid)."""
    isvcs: Mapping[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """This deployment's InferenceServices, by version."""
    router_service: dict[str, Any] | None = None
    router_deployment: dict[str, Any] | None = None
    router_autoscaler: dict[str, Any] | None = None
    """The router's HorizontalPodAutoscaler, when one exists."""
    stats: dict[str, Any] | None = None
    """The routers' cumulative counters (``GET /mlkube/stats`` of every ready router pod, summed:
    ``routerstats.merged``); None when none answered."""
    metric_readings: Mapping[str, tuple[float | None, str | None]] = dataclasses.field(default_factory=dict)
    """``strategy.analysis.metrics`` by name: (value, error) of this pass's query (``metricchecks``)."""
    replay: replay_plans.Observed = dataclasses.field(default_factory=replay_plans.Observed)
    """The deployment's replay Jobs."""


def plan(obj: dict[str, Any], observed: Observed, *, now: datetime.datetime, image: str) -> plans.Plan:
    """The pass over ModelDeployment ``obj`` (as read) given ``observed``; ``image`` runs the router."""
    current = kinds.MODELDEPLOYMENT.parse_status(obj.get("status"))
    generation = obj["metadata"].get("generation", 1)
    try:
        spec = kinds.MODELDEPLOYMENT.parse_spec(obj["spec"])
    except pydantic.ValidationError as error:
        return plans.Plan(
            status=not_ready(
                current, phase="Degraded", reason="InvalidSpec", message=errors.describe(error), generation=generation, now=now
            )
        )
    desired = observed.unresolved or served_version(spec, observed)
    if isinstance(desired, plans.Unresolved):
        status = not_ready(
            current,
            phase=current.phase or "Pending",
            reason=desired.reason,
            message=desired.message,
            generation=generation,
            now=now,
        )
        return plans.Plan(status=status, retry_after=RETRY_SECONDS, retry_reason=desired.message)

    state = deployment_rollout.state_of(current)
    seen = kserve.Seen.of(observed.isvcs)
    router_url = kserve.service_url(observed.router_service)
    result, report = deployment_rollout.measure(
        spec,
        state,
        current,
        seen,
        router_url=router_url,
        stats=observed.stats,
        readings=observed.metric_readings,
        problem=observed.project.problem,
        known=_known(observed),
    )
    action = (obj["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION)
    task = observed.project.problem.task
    judged = replay_plans.verdict(spec.strategy, state, current, observed.replay, task=task, now=now)
    decision = rollout.decide(
        spec.strategy,
        state,
        rollout.Observation(
            desired=desired,
            ready=seen.ready,
            verdict=result.verdict if result else None,
            action=action if action in ("promote", "abort") else None,
            now=now,
            load_failures=seen.load_failures,
            failed_checks=tuple(result.failed_checks) if result else (),
            ab_winner=report.winner if report else None,
            ab_summary=report.conclusion if report else "",
            ab_sequential_winner=report.sequential.winner if report and report.sequential else None,
            ab_sequential_summary=report.sequential.conclusion if report and report.sequential else "",
            inconclusive_checks=tuple(result.inconclusive_checks) if result else (),
            requests=result.requests if result else 0,
            replay=judged,
        ),
    )
    after = decision.state
    replay = replay_plans.planned(
        obj,
        spec,
        before=state,
        after=after,
        current=current,
        judged=judged,
        observed=observed.replay,
        seen=seen,
        project=observed.project,
        project_name=spec.project_ref,
        image=image,
        now=now,
    )

    served = sorted({after.stable, after.candidate, after.previous} - {None})  # previous: warm until scaleDownAt
    backends = {v: url for v in served if (url := seen.urls.get(v)) and (seen.ready.get(v) or v == after.stable)}
    traffic = deployment_rollout.routed(rollout.traffic(spec.strategy, after), backends)
    unserved = {v for v in observed.isvcs if v not in served}
    retiring = set(current.retiring_versions)

    baseline, ab_baseline = current.analysis_baseline, current.ab_test_baseline
    if decision.window_reset and router_url and deployment_rollout.watched(after) is not None:
        stats = observed.stats
        baseline = analysis.snapshot(stats, deployment_rollout.watched(after)) if stats else None
        ab_baseline = analysis.snapshot(stats, after.stable) if stats and spec.strategy.type == "ABTest" else None
    router_ready = bool(router_url) and ((observed.router_deployment or {}).get("status") or {}).get("availableReplicas", 0) >= 1
    status = current.model_copy(
        update={
            "phase": after.phase,
            "traffic": traffic,
            "traffic_summary": rollout.summary(traffic),
            "message": (not decision.events and replay.message)
            or deployment_rollout.message(current, decision, traffic, seen, result),
            "stable_version": after.stable if after.stable is not None else current.stable_version,
            "candidate_version": after.candidate,
            "current_step": after.step,
            "step_started_at": timestamps.format(after.step_started) if after.step_started else None,
            "candidate_ready_at": timestamps.format(after.candidate_ready_at) if after.candidate_ready_at else None,
            "inconclusive_since": timestamps.format(after.inconclusive_since) if after.inconclusive_since else None,
            "rolled_back_version": after.rolled_back,
            "url": router_url,
            "preview_url": f"{router_url}/preview" if router_url and any(t.role == "preview" for t in traffic) else None,
            "analysis_baseline": baseline if deployment_rollout.watched(after) is not None else None,
            "previous_version": after.previous,
            "scale_down_at": timestamps.format(after.scale_down_at) if after.scale_down_at else None,
            "retiring_versions": sorted(unserved - retiring),
            "replaying_since": timestamps.format(after.replay_started) if after.replay_started else None,
            "replay": replay.status,
        }
    )
    if result is not None:
        status = status.model_copy(update={"analysis": result, "last_analysis_time": timestamps.format(now)})
    status = deployment_rollout.with_ab_test(
        status,
        current,
        before=state,
        after=after,
        report=report,
        baseline=ab_baseline,
        now=now,
        stopped_early=decision.ab_stopped_early,
    )
    stable_ready = after.stable is not None and seen.ready.get(after.stable, False)
    serving_ok = stable_ready and router_ready
    status = conditions.with_ready(
        status,
        ready=serving_ok,
        reason="Serving" if serving_ok else ("RouterNotReady" if stable_ready else "VersionNotReady"),
        message=(
            f"Version {after.stable} serves at {router_url}"
            if serving_ok
            else f"Waiting for version {after.stable} and the router to become ready"
        ),
        generation=generation,
        now=timestamps.format(now),
    )

    live = [t for t in traffic if t.version in backends]
    return plans.Plan(
        status=status,
        apply=deployment_children.children(
            obj,
            spec,
            storage=observed.project.storage,
            known=_known(observed),
            served=served,
            backends=backends,
            traffic=live,
            image=image,
            scored=deployment_children.scored(spec, after),
        )
        + replay.apply,
        create=replay.create,
        delete=replay.delete
        + deployment_children.unwanted_autoscaler(obj, spec, observed.router_autoscaler)
        + tuple(
            plans.ObjectRef(
                "serving.kserve.io/v1beta1",
                "InferenceService",
                observed.isvcs[v]["metadata"]["name"],
                obj["metadata"]["namespace"],
            )
            for v in sorted(unserved & retiring)
        ),
        events=tuple(plans.Event(reason, text, type_) for type_, reason, text in decision.events),
        clear_annotations=(ACTION_ANNOTATION,) if action else (),
    )


def served_version(spec: deployment_api.ModelDeploymentSpec, observed: Observed) -> int | plans.Unresolved:
    """The version the spec asks for (a pinned version, the champion or an alias), checked against
    the project's registry (``selection.select``)."""
    chosen = selection.select(
        spec.model,
        project_name=spec.project_ref,
        champion=observed.registry.champion_version,
        known=_known(observed),
        objects=observed.versions,
        criteria=eligibility.criteria_of(observed.project) if observed.project else [],
    )
    return plans.Unresolved(chosen.reason, chosen.message) if isinstance(chosen, selection.Refused) else chosen


def _known(observed: Observed) -> list[project_api.ModelEntry]:
    criteria = eligibility.criteria_of(observed.project) if observed.project else []
    return registry.known(observed.versions, observed.registry.models, criteria=criteria)


def not_ready(
    current: deployment_api.ModelDeploymentStatus,
    *,
    phase: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime.datetime,
) -> deployment_api.ModelDeploymentStatus:
    """The stored status with ``phase``, ``message`` and Ready=False for ``reason``."""
    status = current.model_copy(update={"phase": phase, "message": message})
    return conditions.with_ready(
        status, ready=False, reason=reason, message=message, generation=generation, now=timestamps.format(now)
    )


def is_rolling_out(status: deployment_api.ModelDeploymentStatus) -> bool:
    """Whether the ModelDeployment needs a pass every tick (a rollout, or cleanup, under way)."""
    return (
        status.candidate_version is not None
        or bool(status.retiring_versions)
        or status.previous_version is not None
        or status.phase in (None, "Pending", "Progressing", "Degraded")
    )


def awaits_champion(obj: dict[str, Any], *, project: str, champion: int | None) -> bool:
    """Whether ModelDeployment ``obj`` (as listed) tracks ``project``'s champion and serves
    neither it nor a rollout towards it."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    tracking = spec.get("projectRef") == project and (spec.get("model") or {}).get("track") == "champion"
    return tracking and champion is not None and champion not in (status.get("stableVersion"), status.get("candidateVersion"))
