"""The rollout state machine of a ModelDeployment, as pure functions (in the Argo Rollouts manner).

``decide`` takes the strategy, the state kept in status and what was observed (the version the
spec asks for, which versions are ready, the latest analysis verdict, a manual action, the
time, and during an A/B test its report's winners) and returns the next state plus the
events to post. ``traffic`` turns a state into the
traffic table the router applies. The stable version serves throughout: every path that does
not promote ends with the candidate at 0%.

Each step holds (a canary step's pause, or the preview, A/B test or shadow duration) while the
analysis collects; a Failing verdict ends the rollout at any time. When the hold is over the step
advances on a Passing verdict (a blue/green preview on having answered ``minRequests`` requests,
unless ``promoteWithoutTraffic``; an A/B test on its winner first). An A/B test with
``abTest.earlyStop`` ends before its duration once its sequential test (``abtest.sequential_test``,
valid at every pass) has a winner, deciding on it as on the end-of-duration winner and saying so
(``Decision.ab_stopped_early``). Otherwise the analysis is
undecided and the step keeps collecting, with one ``AnalysisInconclusive`` Event, for
``analysis.inconclusiveLimit`` more analysis intervals (as Argo Rollouts tolerates that many
inconclusive measurements); still undecided then, the rollout pauses (``AwaitingDecision``) until
``mlkube.io/action=promote`` or ``abort``, with the candidate still judged: a Failing verdict
still ends it. ``State.inconclusive_since`` remembers when the hold ended undecided, so the
Event is posted once per step and the limit counts from there.

With ``strategy.replay`` every rollout begins with a replay step (``State.replay_started``): the
candidate's InferenceService is applied but it is out of the traffic table (no split, mirror or
preview share), and once it is Ready it scores the newest captured requests (a Job; its judged
answer arrives in ``Observation.replay``). Failing rejects it as a failing analysis does
(``onFailure``: rolled back, or paused with the candidate still out of traffic); Passing and
Inconclusive go on to the strategy's first step on the same pass, with a ``ReplayPassed`` or
``ReplayInconclusive`` Event.

With ``strategy.scaleDownDelay`` a promotion keeps the previous stable version as
``State.previous`` (warm, at 0%) until ``State.scale_down_at``; the analysis keeps judging the new
stable version meanwhile (its verdict arrives in ``Observation.verdict``), and a Failing verdict,
a version that cannot load or ``mlkube.io/action=abort`` in that window switches all traffic back
to the previous version at once (phase RolledBack). When the window ends the previous version
leaves the state, so the plan retires it as it retires any version leaving the table.
"""

from __future__ import annotations

import dataclasses
import datetime

from mlkube.api import base
from mlkube.api import strategy as strategy_api
from mlkube.common import timestamps
from mlkube.control.policy import rolloutstate

CANDIDATE_READY_DEADLINE = datetime.timedelta(minutes=10)


# The state, the observation and the decision live in ``rolloutstate``; named here too, since
# they are this module's vocabulary.
State = rolloutstate.State
Observation = rolloutstate.Observation
Decision = rolloutstate.Decision
traffic = rolloutstate.traffic
summary = rolloutstate.summary


def decide(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """The next state."""
    if seen.desired is None:
        return Decision(dataclasses.replace(state, phase=state.phase if state.stable else "Pending"))
    if state.stable is None:
        ready = seen.ready.get(seen.desired, False)
        return Decision(
            State(stable=seen.desired, phase="Healthy" if ready else "Progressing"),
            (("Normal", "Deploying", f"Serving version {seen.desired}"),),
            window_reset=True,
        )
    if state.candidate is None and state.previous is not None:
        after = _after_promotion(state, seen)
        if after is not None:
            return after
        state = dataclasses.replace(state, previous=None, scale_down_at=None)  # a new rollout: the window ends
    if state.candidate is None:
        if seen.desired in (state.stable, state.rolled_back):
            return Decision(dataclasses.replace(state, phase=_steady_phase(state, seen)))
        return Decision(
            _started(strategy, state.stable, seen),
            (("Normal", "RolloutStarted", f"Rolling out version {seen.desired} over {state.stable} ({_how(strategy)})"),),
            window_reset=True,
        )
    if seen.desired != state.candidate:
        if seen.desired == state.stable:
            return _rollback(state, f"the spec asks for version {state.stable} again", mark=False)
        return Decision(
            _started(strategy, state.stable, seen),
            (("Normal", "RolloutRestarted", f"Version {seen.desired} replaces candidate {state.candidate}"),),
            window_reset=True,
        )
    if seen.action == "abort":
        return _rollback(state, "aborted by annotation")
    candidate_ready = seen.ready.get(state.candidate, False)
    if seen.action == "promote":
        if candidate_ready:
            return _promote(strategy, state, "promoted by annotation", now=seen.now)
        return Decision(state, (("Warning", "PromotionRefused", f"Version {state.candidate} is not ready to take traffic"),))
    if state.phase == "Paused":  # a person decides from here: promote or abort
        if state.inconclusive_since is not None and seen.verdict == "Failing" and candidate_ready:
            # Paused undecided, the candidate keeps its share and the analysis keeps running: a
            # failure found meanwhile still ends it.
            return _fail(strategy, state, "analysis failed: " + ("; ".join(seen.failed_checks) or "thresholds exceeded"))
        return Decision(state)
    if not candidate_ready:
        if state.candidate in seen.load_failures:
            return _fail(strategy, state, f"version {state.candidate} cannot load: {seen.load_failures[state.candidate]}")
        if seen.now - (state.step_started or seen.now) > CANDIDATE_READY_DEADLINE:
            return _fail(strategy, state, f"version {state.candidate} did not become ready within {CANDIDATE_READY_DEADLINE}")
        return Decision(dataclasses.replace(state, phase="Progressing"))
    if state.replay_started is not None:
        return _replaying(strategy, state, seen)
    return _judged(strategy, state, seen)


def _started(strategy: strategy_api.Strategy, stable: int, seen: Observation) -> State:
    """A rollout of ``seen.desired`` over ``stable`` begins: with its replay step when the strategy has one."""
    replay_started = seen.now if strategy.replay is not None else None
    return State(
        stable=stable, candidate=seen.desired, phase="Progressing", step=0, step_started=seen.now, replay_started=replay_started
    )


def _how(strategy: strategy_api.Strategy) -> str:
    if strategy.replay is None:
        return strategy.type
    return f"{strategy.type}, after a replay of up to {strategy.replay.requests} captured requests"


def _replaying(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """The replay step of a Ready candidate: hold until its verdict; Failing rejects the candidate
    (``onFailure``), Passing and Inconclusive start the strategy's first step on this pass."""
    replay = seen.replay
    if replay is None or replay.verdict is None:
        return Decision(dataclasses.replace(state, phase="Progressing"))
    if replay.verdict == "Failing":
        failed = _fail(strategy, state, f"replay failed: {replay.message}")
        return dataclasses.replace(failed, events=(("Warning", "ReplayFailed", _sentence(replay.message)), *failed.events))
    if replay.verdict == "Passing":
        event = ("Normal", "ReplayPassed", _sentence(replay.message))
    else:
        event = (
            "Warning",
            "ReplayInconclusive",
            f"Replay inconclusive ({replay.message}); the {strategy.type} analysis judges version {state.candidate} on live traffic",
        )
    after = _judged(strategy, dataclasses.replace(state, replay_started=None), seen)
    return dataclasses.replace(after, events=(event, *after.events))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _judged(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """A Ready candidate past its replay: a Failing analysis ends the rollout, else its step advances."""
    if seen.verdict == "Failing":
        return _fail(strategy, state, "analysis failed: " + ("; ".join(seen.failed_checks) or "thresholds exceeded"))
    if state.candidate_ready_at is None:
        # The candidate takes traffic from now: its first pause (or preview, or test) and its
        # analysis window start here, not while it was still loading.
        serving = dataclasses.replace(state, candidate_ready_at=seen.now, step_started=seen.now)
        return dataclasses.replace(_advance(strategy, serving, seen), window_reset=True)
    return _advance(strategy, state, seen)


def _advance(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    if strategy.type == "Direct":
        return _promote(strategy, state, "direct rollout", now=seen.now)
    if seen.now - (state.step_started or seen.now) < _hold(strategy, state):
        if strategy.type == "ABTest" and strategy.ab_test.early_stop and seen.ab_sequential_winner is not None:
            return _stop_ab_test_early(strategy, state, seen)
        return Decision(dataclasses.replace(state, phase="Progressing"))
    if strategy.type == "Canary":
        if seen.verdict != "Passing":
            return _undecided(strategy, state, seen)
        steps = strategy.canary.steps
        if state.step + 1 < len(steps):
            nxt = state.step + 1
            return Decision(
                dataclasses.replace(state, step=nxt, step_started=seen.now, phase="Progressing", inconclusive_since=None),
                (
                    (
                        "Normal",
                        "StepCompleted",
                        f"Canary step {state.step} passed; {steps[nxt].weight}% to version {state.candidate}",
                    ),
                ),
                window_reset=True,
            )
        return _finish(strategy, state, "all canary steps passed", now=seen.now)
    if strategy.type == "ABTest":
        return _end_ab_test(strategy, state, seen)
    duration = _duration(strategy)
    if strategy.type == "BlueGreen" and (_has_traffic(strategy, seen) or strategy.blue_green.promote_without_traffic):
        return _finish(strategy, state, f"BlueGreen ran for {duration} without failing", now=seen.now)
    if strategy.type == "Shadow" and seen.verdict == "Passing":
        return _finish(strategy, state, f"Shadow ran for {duration} without failing", now=seen.now)
    return _undecided(strategy, state, seen)


def _hold(strategy: strategy_api.Strategy, state: State) -> datetime.timedelta:
    """How long the current step holds before its analysis decides: a canary step's pause (one
    analysis interval by default), or the preview, A/B test or shadow duration."""
    if strategy.type == "Canary":
        pause = strategy.canary.steps[state.step].pause
        return base.parse_duration(pause or strategy.analysis.interval)
    return base.parse_duration(_duration(strategy))


def _duration(strategy: strategy_api.Strategy) -> str:
    return {
        "BlueGreen": strategy.blue_green.preview_duration,
        "ABTest": strategy.ab_test.duration,
        "Shadow": strategy.shadow.duration,
    }[strategy.type]


def _has_traffic(strategy: strategy_api.Strategy, seen: Observation) -> bool:
    return seen.requests >= max(strategy.analysis.min_requests, 1)


def _undecided(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """The step's hold is over and nothing decided: keep collecting for ``inconclusiveLimit``
    analysis intervals, saying so once (an AnalysisInconclusive Event when the hold ends), then
    pause for a person (AwaitingDecision)."""
    limit = strategy.analysis.inconclusive_limit
    extra = base.parse_duration(strategy.analysis.interval) * limit
    since = state.inconclusive_since or seen.now
    what = _step_name(strategy, state)
    why = _why_undecided(strategy, seen)
    if seen.now - since >= extra:
        waited = f" and {limit} more analysis intervals ({_shown(extra)})" if limit else ""
        return Decision(
            dataclasses.replace(state, phase="Paused", inconclusive_since=since),
            (
                (
                    "Normal",
                    "AwaitingDecision",
                    f"{what} ended{waited} with an inconclusive analysis ({why}); annotate mlkube.io/action=promote or abort",
                ),
            ),
        )
    progressing = dataclasses.replace(state, phase="Progressing", inconclusive_since=since)
    if state.inconclusive_since is not None:
        return Decision(progressing)
    return Decision(
        progressing,
        (
            (
                "Warning",
                "AnalysisInconclusive",
                f"{what} ended with an inconclusive analysis ({why}); collecting for up to {limit} more "
                f"analysis intervals ({_shown(extra)}), then the rollout pauses",
            ),
        ),
    )


def _step_name(strategy: strategy_api.Strategy, state: State) -> str:
    if strategy.type == "Canary":
        return f"Canary step {state.step} of version {state.candidate}"
    return {"BlueGreen": "The preview", "ABTest": "The A/B test", "Shadow": "The shadow"}[strategy.type] + (
        f" of version {state.candidate}"
    )


def _why_undecided(strategy: strategy_api.Strategy, seen: Observation) -> str:
    if strategy.type == "BlueGreen" and not _has_traffic(strategy, seen):
        needed = max(strategy.analysis.min_requests, 1)
        return (
            f"the preview answered {seen.requests} of {needed} requests; send requests to status.previewUrl "
            "or set blueGreen.promoteWithoutTraffic"
        )
    if seen.verdict is None:
        return "the router's counters are unavailable"
    return "; ".join(seen.inconclusive_checks) or f"verdict {seen.verdict}"


def _shown(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s" if seconds < 120 else f"{seconds / 60:g}m"


def _end_ab_test(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """The A/B test's duration is over: a significantly worse candidate fails, a significantly
    better one finishes; without a winner the operational verdict decides, as for Shadow, and an
    undecided one keeps the test running up to ``inconclusiveLimit`` intervals, then pauses. The
    report's conclusion is posted with the decision that ends the test."""
    duration = strategy.ab_test.duration
    if seen.ab_winner == state.stable:
        decision = _fail(strategy, state, f"A/B test: {seen.ab_summary}")
    elif seen.ab_winner == state.candidate:
        decision = _finish(strategy, state, f"A/B test: {seen.ab_summary}", now=seen.now)
    elif seen.verdict == "Passing":
        decision = _finish(strategy, state, f"ABTest ran for {duration} without failing", now=seen.now)
    else:
        decision = _undecided(strategy, state, seen)
    if not seen.ab_summary or decision.state.phase == "Progressing":
        return decision
    return dataclasses.replace(decision, events=(("Normal", "ABTestReport", seen.ab_summary), *decision.events))


def _stop_ab_test_early(strategy: strategy_api.Strategy, state: State, seen: Observation) -> Decision:
    """The sequential test has a winner before the duration is over: decide on it as
    ``_end_ab_test`` decides on the fixed-horizon winner, with its conclusion in the
    ``ABTestReport`` Event and the reason."""
    elapsed = (seen.now - (state.step_started or seen.now)).total_seconds()
    ran = _shown(seen.now - (state.step_started or seen.now)) if elapsed < 7200 else f"{elapsed / 3600:.3g}h"
    why = f"A/B test stopped early after {ran} of {strategy.ab_test.duration}: {seen.ab_sequential_summary}"
    if seen.ab_sequential_winner == state.stable:
        decision = _fail(strategy, state, why)
    elif seen.ab_sequential_winner == state.candidate:
        decision = _finish(strategy, state, why, now=seen.now)
    else:  # a winner of another pair: not this test's (the plan compares exactly these two)
        return Decision(dataclasses.replace(state, phase="Progressing"))
    report = ("Normal", "ABTestReport", seen.ab_sequential_summary)
    return dataclasses.replace(decision, events=(report, *decision.events), ab_stopped_early=True)


def _finish(strategy: strategy_api.Strategy, state: State, why: str, *, now: datetime.datetime) -> Decision:
    if strategy.auto_promote:
        return _promote(strategy, state, why, now=now)
    return Decision(
        dataclasses.replace(state, phase="Paused"),
        (("Normal", "AwaitingPromotion", f"{why}; annotate mlkube.io/action=promote to switch"),),
    )


def _promote(strategy: strategy_api.Strategy, state: State, why: str, *, now: datetime.datetime) -> Decision:
    """The candidate becomes stable; with ``scaleDownDelay`` the old stable version stays warm
    until the delay is over (see ``_after_promotion``)."""
    if strategy.scale_down_delay is None or state.stable is None:
        return Decision(
            State(stable=state.candidate, phase="Healthy"),
            (("Normal", "Promoted", f"Version {state.candidate} is stable ({why})"),),
            window_reset=True,
        )
    until = now + base.parse_duration(strategy.scale_down_delay)
    return Decision(
        State(stable=state.candidate, phase="Healthy", previous=state.stable, scale_down_at=until),
        (
            (
                "Normal",
                "Promoted",
                f"Version {state.candidate} is stable ({why}); version {state.stable} stays warm for "
                f"{strategy.scale_down_delay} (until {timestamps.format(until)}) to switch back at once on a failure",
            ),
        ),
        window_reset=True,
    )


def _after_promotion(state: State, seen: Observation) -> Decision | None:
    """Inside the ``scaleDownDelay`` window (``state.previous`` set, no candidate): switch back to
    the warm previous version on a failure, retire it when the window is over, else hold. None: the
    spec asks for another version, so a new rollout starts over the current stable version."""
    stable, previous = state.stable, state.previous
    if seen.desired == previous:
        return _switch_back(state, f"the spec asks for version {previous} again", mark=False)
    if seen.desired != stable:
        return None
    if seen.ready.get(previous, False):
        if seen.action == "abort":
            return _switch_back(state, "aborted by annotation")
        if seen.verdict == "Failing":
            return _switch_back(state, "analysis failed: " + ("; ".join(seen.failed_checks) or "thresholds exceeded"))
        if stable in seen.load_failures:
            return _switch_back(state, f"version {stable} cannot load: {seen.load_failures[stable]}")
    if seen.now >= (state.scale_down_at or seen.now):
        return Decision(
            dataclasses.replace(state, previous=None, scale_down_at=None, phase=_steady_phase(state, seen)),
            (("Normal", "ScaledDown", f"Version {stable} passed its scaleDownDelay window; version {previous} is retired"),),
        )
    return Decision(dataclasses.replace(state, phase=_steady_phase(state, seen)))


def _switch_back(state: State, why: str, *, mark: bool = True) -> Decision:
    """All traffic back to the warm previous version at once; the failed version is marked rolled
    back (not retried until the spec asks for another version)."""
    return Decision(
        State(stable=state.previous, phase="RolledBack" if mark else "Healthy", rolled_back=state.stable if mark else None),
        (
            (
                "Warning" if mark else "Normal",
                "RolledBack",
                f"Version {state.stable} rolled back within its scaleDownDelay window ({why}); "
                f"switched 100% of traffic back to warm version {state.previous}",
            ),
        ),
        window_reset=True,
    )


def _fail(strategy: strategy_api.Strategy, state: State, why: str) -> Decision:
    if strategy.on_failure == "pause":
        return Decision(
            dataclasses.replace(state, phase="Paused", inconclusive_since=None),
            (
                (
                    "Warning",
                    "RolloutPaused",
                    f"Version {state.candidate}: {why}; stable version {state.stable} keeps its traffic share",
                ),
            ),
        )
    return _rollback(state, why)


def _rollback(state: State, why: str, *, mark: bool = True) -> Decision:
    return Decision(
        State(stable=state.stable, phase="RolledBack" if mark else "Healthy", rolled_back=state.candidate if mark else None),
        (
            (
                "Warning" if mark else "Normal",
                "RolledBack",
                f"Version {state.candidate} rolled back ({why}); version {state.stable} serves all traffic",
            ),
        ),
        window_reset=True,
    )


def _steady_phase(state: State, seen: Observation) -> str:
    if not seen.ready.get(state.stable, False):
        if state.stable in seen.load_failures:
            return "Degraded"
        return "Progressing" if state.phase in ("Pending", "Progressing") else "Degraded"
    return "RolledBack" if state.rolled_back is not None and seen.desired == state.rolled_back else "Healthy"
