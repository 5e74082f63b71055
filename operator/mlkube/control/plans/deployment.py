"""The ModelDeployment's pass as a pure function: what it saw in, what to do out.

``plan(obj, observed, *, now, image)`` parses the spec and the stored status, resolves the
version the spec asks for against the project's registry, lets ``rollout.decide`` pick the
next rollout state from what the InferenceServices and the router report (and, during an
ABTest, the report comparing the two versions: ``abtest.report``), and returns the whole
desired state: an InferenceService per served version, the router (ServiceAccount, Role,
RoleBinding, Deployment, Service) and its table (ConfigMap), the storage ServiceAccount; the
InferenceServices of versions that left the table on an earlier pass, to delete; the typed
status; the transition's Events; the consumed ``mlkube.io/action`` annotation to clear.

Versions that leave the table are deleted one pass later (``status.retiringVersions``): by then
the router has had a watch event's time to switch, so no request is sent to a version being
deleted. An ABTest's report is refreshed in ``status.abTest`` on every pass while the test
runs, continuing the sequential test of the one in status (its always-valid p-value is a
running minimum); when the test ends (promoted, rolled back, paused, aborted or replaced) it is
stamped ``finishedAt`` and kept until the next rollout starts. The analysis (``analysis.judge``,
with the strategy's agreement gate: ``analysis.min_agreement``, and its estimatedPerformance
gate against the version's test metric in the registry: ``analysis.estimation``) is written to ``status.analysis``
with its intervals; ``status.inconclusiveSince`` carries an undecided step across passes, so its
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
from mlkube.api import rolloutstatus as rolloutstatus_api
from mlkube.api import strategy as strategy_api
from mlkube.common import timestamps
from mlkube.control.manifests import serving
from mlkube.control.plans import plan as plans
from mlkube.control.plans import replay as replay_plans
from mlkube.control.policy import abtest, analysis, conditions, eligibility, kserve, metricchecks, registry, rollout, selection

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

    state = state_of(current)
    seen = kserve.Seen.of(observed.isvcs)
    router_url = kserve.service_url(observed.router_service)
    result, report = _measure(spec, state, current, observed, seen, router_url=router_url)
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
    traffic = routed(rollout.traffic(spec.strategy, after), backends)
    unserved = {v for v in observed.isvcs if v not in served}
    retiring = set(current.retiring_versions)

    baseline, ab_baseline = current.analysis_baseline, current.ab_test_baseline
    if decision.window_reset and router_url and watched(after) is not None:
        stats = observed.stats
        baseline = analysis.snapshot(stats, watched(after)) if stats else None
        ab_baseline = analysis.snapshot(stats, after.stable) if stats and spec.strategy.type == "ABTest" else None
    router_ready = bool(router_url) and ((observed.router_deployment or {}).get("status") or {}).get("availableReplicas", 0) >= 1
    status = current.model_copy(
        update={
            "phase": after.phase,
            "traffic": traffic,
            "traffic_summary": rollout.summary(traffic),
            "message": (not decision.events and replay.message) or _message(current, decision, traffic, seen, result),
            "stable_version": after.stable if after.stable is not None else current.stable_version,
            "candidate_version": after.candidate,
            "current_step": after.step,
            "step_started_at": timestamps.format(after.step_started) if after.step_started else None,
            "candidate_ready_at": timestamps.format(after.candidate_ready_at) if after.candidate_ready_at else None,
            "inconclusive_since": timestamps.format(after.inconclusive_since) if after.inconclusive_since else None,
            "rolled_back_version": after.rolled_back,
            "url": router_url,
            "preview_url": f"{router_url}/preview" if router_url and any(t.role == "preview" for t in traffic) else None,
            "analysis_baseline": baseline if watched(after) is not None else None,
            "previous_version": after.previous,
            "scale_down_at": timestamps.format(after.scale_down_at) if after.scale_down_at else None,
            "retiring_versions": sorted(unserved - retiring),
            "replaying_since": timestamps.format(after.replay_started) if after.replay_started else None,
            "replay": replay.status,
        }
    )
    if result is not None:
        status = status.model_copy(update={"analysis": result, "last_analysis_time": timestamps.format(now)})
    status = with_ab_test(
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
        apply=children(
            obj, spec, observed, served=served, backends=backends, traffic=live, image=image, scored=_scored(spec, after)
        )
        + replay.apply,
        create=replay.create,
        delete=replay.delete
        + _unwanted_autoscaler(obj, spec, observed)
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


def children(
    obj: dict[str, Any],
    spec: deployment_api.ModelDeploymentSpec,
    observed: Observed,
    *,
    served: list[int],
    backends: dict[int, str],
    traffic: list[rolloutstatus_api.TrafficEntry],
    image: str,
    scored: tuple[int, ...] = (),
) -> tuple[dict[str, Any], ...]:
    """Everything the deployment owns, in full: the storage ServiceAccount, an InferenceService per
    served version, the router's access, its table (only once some version can answer: the router
    keeps its current table rather than adopt one that routes nowhere; ``scored``: the versions
    whose served probabilities it accumulates) and the router itself."""
    namespace = obj["metadata"]["namespace"]
    storage = observed.project.storage
    registry = {m.version: m for m in _known(observed)}
    secret = storage.credentials_secret
    applied: list[dict[str, Any]] = [serving.storage_account(namespace, secret)] if secret else []
    applied += [
        serving.inference_service(
            obj,
            spec,
            version=v,
            storage_uri=registry[v].artifact_uri,
            digest=registry[v].digest,
            storage_account=serving.STORAGE_SERVICE_ACCOUNT if secret else None,
        )
        for v in served
    ]
    applied += serving.router_access(namespace)
    if any(t.percent > 0 for t in traffic):
        try:
            table = serving.routing_table(
                obj,
                spec,
                traffic=traffic,
                backends=backends,
                capture_uri=storage.uri.rstrip("/"),
                capture_endpoint=storage.endpoint,
                generation=obj["metadata"].get("generation", 1),
                scored=[v for v in scored if v in backends],
            )
            applied.append(serving.router_config_map(obj, spec, table))
        except pydantic.ValidationError:
            pass  # a table the router would refuse: it keeps routing by the one it has
    applied += [serving.router_deployment(obj, spec, image=image, secret=secret), serving.router_service(obj, spec)]
    if spec.router.autoscaled:
        applied.append(serving.router_autoscaler(obj, spec))
    return tuple(applied)


def _unwanted_autoscaler(
    obj: dict[str, Any], spec: deployment_api.ModelDeploymentSpec, observed: Observed
) -> tuple[plans.ObjectRef, ...]:
    """The router's HorizontalPodAutoscaler once ``router.maxReplicas`` no longer asks for one."""
    if observed.router_autoscaler is None or spec.router.autoscaled:
        return ()
    name = observed.router_autoscaler["metadata"]["name"]
    return (plans.ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", name, obj["metadata"]["namespace"]),)


def _scored(spec: deployment_api.ModelDeploymentSpec, state: rollout.State) -> tuple[int, ...]:
    """The versions whose probabilities the router accumulates: the analysed one, with an
    estimatedPerformance gate."""
    version = watched(state)
    return (version,) if version is not None and spec.strategy.analysis.estimated_performance is not None else ()


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


def routed(traffic: list[rolloutstatus_api.TrafficEntry], backends: Mapping[int, str]) -> list[rolloutstatus_api.TrafficEntry]:
    """The traffic table as the router applies it: a version it cannot call yet gets 0 % and the
    stable version the rest, so status never claims a share nobody serves."""
    if all(t.version in backends for t in traffic):
        return traffic
    return [
        t.model_copy(update={"percent": 0})
        if t.version not in backends
        else t.model_copy(update={"percent": 100})
        if t.role == "stable"
        else t
        for t in traffic
    ]


def ab_report(
    stats: dict[str, Any],
    strategy: strategy_api.Strategy,
    *,
    stable: int,
    candidate: int,
    candidate_window: analysis.Window,
    stable_baseline: rolloutstatus_api.AnalysisBaseline | None,
    task: str,
    previous: rolloutstatus_api.ABTestReport | None = None,
) -> rolloutstatus_api.ABTestReport:
    """The A/B test report from the router's counters: the stable version's window since the test
    began beside the candidate's; ``previous`` (status.abTest) carries the sequential test."""
    return abtest.report(
        abtest.Arm(stable, "stable", analysis.window(stats, stable, stable_baseline)),
        abtest.Arm(candidate, "b", candidate_window),
        task=task,
        min_labeled=strategy.analysis.min_requests,
        previous=previous,
    )


def with_ab_test(
    new: deployment_api.ModelDeploymentStatus,
    current: deployment_api.ModelDeploymentStatus,
    *,
    before: rollout.State,
    after: rollout.State,
    report: rolloutstatus_api.ABTestReport | None,
    baseline: rolloutstatus_api.AnalysisBaseline | None,
    now: datetime.datetime,
    stopped_early: bool = False,
) -> deployment_api.ModelDeploymentStatus:
    """``new`` with ``abTest`` and ``abTestBaseline``.

    A new rollout drops the previous report; a running test shows this pass's report (or keeps the
    last one while the router does not answer); the pass in which the test ends (the candidate
    leaves, or the rollout pauses) stamps ``finishedAt`` (and ``sequential.stoppedEarly`` when
    the rollout ended it on its sequential test); a finished report never changes again.
    """
    kept = current.ab_test
    if after.candidate is not None and after.candidate != before.candidate:
        kept = None  # a new rollout: the last test's report goes
    elif (kept is None or kept.finished_at is None) and before.candidate is not None:
        kept = report if report is not None else kept
        if kept is not None and (after.candidate is None or after.phase == "Paused"):
            kept = kept.model_copy(update={"finished_at": timestamps.format(now)})
            if stopped_early and kept.sequential is not None:
                kept = kept.model_copy(update={"sequential": kept.sequential.model_copy(update={"stopped_early": True})})
    return new.model_copy(update={"ab_test": kept, "ab_test_baseline": baseline if after.candidate is not None else None})


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


def state_of(status: deployment_api.ModelDeploymentStatus) -> rollout.State:
    """The rollout state kept in status."""
    started, ready_at, undecided = status.step_started_at, status.candidate_ready_at, status.inconclusive_since
    return rollout.State(
        stable=status.stable_version,
        candidate=status.candidate_version,
        phase=status.phase or "Pending",
        step=status.current_step,
        step_started=timestamps.parse(started) if started else None,
        rolled_back=status.rolled_back_version,
        candidate_ready_at=timestamps.parse(ready_at) if ready_at else None,
        inconclusive_since=timestamps.parse(undecided) if undecided else None,
        previous=status.previous_version,
        scale_down_at=timestamps.parse(status.scale_down_at) if status.scale_down_at else None,
        replay_started=timestamps.parse(status.replaying_since) if status.replaying_since else None,
    )


def watched(state: rollout.State) -> int | None:
    """The version the analysis judges: the candidate, or inside a scaleDownDelay window the
    newly promoted stable version; None: no analysis runs."""
    if state.candidate is not None:
        return state.candidate
    return state.stable if state.previous is not None else None


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


def _measure(
    spec: deployment_api.ModelDeploymentSpec,
    state: rollout.State,
    current: deployment_api.ModelDeploymentStatus,
    observed: Observed,
    seen: kserve.Seen,
    *,
    router_url: str | None,
) -> tuple[rolloutstatus_api.AnalysisResult | None, rolloutstatus_api.ABTestReport | None]:
    """The candidate's analysis (inside a scaleDownDelay window, the new stable version's: see
    ``watched``) over its current window and, during an ABTest, the report so far; only while that
    version serves and the router answers."""
    candidate, stats = watched(state), observed.stats
    if candidate is None or not seen.ready.get(candidate) or not router_url or stats is None:
        return None, None
    window = analysis.window(stats, candidate, current.analysis_baseline)
    # after a promotion nothing is compared with the new stable version: no agreement gate then
    agreement = analysis.min_agreement(spec.strategy) if state.candidate is not None else None
    entry = next((m for m in _known(observed) if m.version == candidate), None)
    problem = observed.project.problem
    estimated = analysis.estimation(
        spec.strategy.analysis.estimated_performance,
        version=candidate,
        task=problem.task,
        primary_metric=problem.primary_metric,
        test_metrics=entry.metrics if entry else None,
    )
    result = analysis.judge(window, spec.strategy.analysis, min_agreement=agreement, estimated=estimated)
    result = metricchecks.fold(result, _metric_outcomes(spec.strategy.analysis, observed))
    report = None
    judged = observed.project.problem.task in abtest.JUDGED_TASKS
    if spec.strategy.type == "ABTest" and state.stable is not None and state.candidate is not None and judged:
        report = ab_report(
            stats,
            spec.strategy,
            stable=state.stable,
            candidate=candidate,
            candidate_window=window,
            stable_baseline=current.ab_test_baseline,
            task=observed.project.problem.task,
            previous=current.ab_test,
        )
    return result, report


def _metric_outcomes(thresholds: strategy_api.Analysis, observed: Observed) -> list[metricchecks.Outcome]:
    """Each metric check's verdict on this pass's reading (Inconclusive when it was not queried)."""
    outcomes = []
    for check in thresholds.metrics:
        value, error = observed.metric_readings.get(check.name, (None, "not queried yet"))
        outcomes.append(metricchecks.evaluate(check, value, error=error))
    return outcomes


def _message(
    current: deployment_api.ModelDeploymentStatus,
    decision: rollout.Decision,
    traffic: list[rolloutstatus_api.TrafficEntry],
    seen: kserve.Seen,
    result: rolloutstatus_api.AnalysisResult | None,
) -> str:
    """One sentence on where the rollout stands. A transition's message stays until the next one
    when the phase waits on a person (RolledBack, Paused), so the reason remains readable."""
    state = decision.state
    if decision.events:
        return decision.events[-1][2]
    if state.phase in ("RolledBack", "Paused") and current.message:
        return current.message
    for version in (state.stable, state.candidate):
        if version is not None and not seen.ready.get(version):
            why = seen.load_failures.get(version) or seen.not_ready.get(version)
            return f"Waiting for version {version} to become ready" + (f": {why}" if why else "")
    if state.candidate is None:
        return f"Version {state.stable} serves all traffic"
    verdict = f"analysis {result.verdict} on {result.requests} requests" if result else "analysis not started"
    if result and result.inconclusive_checks:
        verdict += ": " + "; ".join(result.inconclusive_checks)
    return f"Rolling out version {state.candidate}: {rollout.summary(traffic)}; {verdict}"
