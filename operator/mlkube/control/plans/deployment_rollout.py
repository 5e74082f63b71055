"""The rollout side of a ModelDeployment's pass, as pure functions of what the pass read.

``plans.deployment.plan`` takes from here the rollout state kept in status (``state_of``), the
version the analysis judges (``watched``: the candidate, or the new stable version inside a
scaleDownDelay window) and its measurement (``measure``); then the traffic as the router applies
it (``routed``), the status's A/B test report across passes (``with_ab_test``) and the status
message. ``rollout.decide`` takes the decision itself; the children the deployment owns are
``plans.deployment_children``'s.

The analysis (``analysis.judge``, with the strategy's agreement gate: ``analysis.min_agreement``,
its estimatedPerformance gate against the version's test metric in the registry:
``analysis.estimation``, and its metric checks: ``metricchecks``) is written to
``status.analysis`` with its intervals. An ABTest's report (``abtest.report``) is refreshed in
``status.abTest`` on every pass while the test runs, continuing the sequential test of the one in
status (its always-valid p-value is a running minimum); when the test ends (promoted, rolled back,
paused, aborted or replaced) it is stamped ``finishedAt`` and kept until the next rollout starts.

Must not: do I/O or read the clock (``now`` is an argument).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from mlkube.api import deployment as deployment_api
from mlkube.api import project as project_api
from mlkube.api import rolloutstatus as rolloutstatus_api
from mlkube.api import strategy as strategy_api
from mlkube.common import timestamps
from mlkube.control.policy import abtest, analysis, kserve, metricchecks, rollout


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


def measure(
    spec: deployment_api.ModelDeploymentSpec,
    state: rollout.State,
    current: deployment_api.ModelDeploymentStatus,
    seen: kserve.Seen,
    *,
    router_url: str | None,
    stats: dict[str, Any] | None,
    readings: Mapping[str, tuple[float | None, str | None]],
    problem: project_api.Problem,
    known: list[project_api.ModelEntry],
) -> tuple[rolloutstatus_api.AnalysisResult | None, rolloutstatus_api.ABTestReport | None]:
    """The candidate's analysis (inside a scaleDownDelay window, the new stable version's: see
    ``watched``) over its current window and, during an ABTest, the report so far; only while that
    version serves and the router answers. ``stats``: the routers' counters (None: none answered);
    ``readings``: the metric checks' (value, error) by name; ``problem``: the project's;
    ``known``: its registry, where the version's test metrics are."""
    candidate = watched(state)
    if candidate is None or not seen.ready.get(candidate) or not router_url or stats is None:
        return None, None
    window = analysis.window(stats, candidate, current.analysis_baseline)
    # after a promotion nothing is compared with the new stable version: no agreement gate then
    agreement = analysis.min_agreement(spec.strategy) if state.candidate is not None else None
    entry = next((m for m in known if m.version == candidate), None)
    estimated = analysis.estimation(
        spec.strategy.analysis.estimated_performance,
        version=candidate,
        task=problem.task,
        primary_metric=problem.primary_metric,
        test_metrics=entry.metrics if entry else None,
    )
    result = analysis.judge(window, spec.strategy.analysis, min_agreement=agreement, estimated=estimated)
    result = metricchecks.fold(result, _metric_outcomes(spec.strategy.analysis, readings))
    report = None
    judged = problem.task in abtest.JUDGED_TASKS
    if spec.strategy.type == "ABTest" and state.stable is not None and state.candidate is not None and judged:
        report = ab_report(
            stats,
            spec.strategy,
            stable=state.stable,
            candidate=candidate,
            candidate_window=window,
            stable_baseline=current.ab_test_baseline,
            task=problem.task,
            previous=current.ab_test,
        )
    return result, report


def _metric_outcomes(
    thresholds: strategy_api.Analysis, readings: Mapping[str, tuple[float | None, str | None]]
) -> list[metricchecks.Outcome]:
    """Each metric check's verdict on this pass's reading (Inconclusive when it was not queried)."""
    outcomes = []
    for check in thresholds.metrics:
        value, error = readings.get(check.name, (None, "not queried yet"))
        outcomes.append(metricchecks.evaluate(check, value, error=error))
    return outcomes


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


def message(
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
