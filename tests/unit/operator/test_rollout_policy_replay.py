"""The replay step of the rollout state machine (``strategy.replay``): it comes before any traffic
for every strategy, holds until the replay is judged, rejects a failing candidate as a failing
analysis does (with no share ever given to it), and goes on to the strategy's first step on a
passing or inconclusive replay, saying which."""

import dataclasses
import datetime

import pytest

from mlkube.api import replay as replay_api
from mlkube.api import rolloutstatus
from mlkube.api import strategy as strategy_api
from mlkube.control.policy import rollout

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
STABLE_ONLY = [rolloutstatus.TrafficEntry(version=1, role="stable", percent=100)]
STRATEGIES = {
    "Canary": {"canary": {"steps": [{"weight": 25, "pause": "1m"}]}},
    "BlueGreen": {},
    "ABTest": {},
    "Shadow": {},
    "Direct": {},
}


def strategy(kind="Canary", **kw):
    return strategy_api.Strategy.model_validate(
        {"type": kind, **STRATEGIES[kind], "replay": {"requests": 200, "maxErrorRate": 0.0}, **kw}
    )


def judged(verdict, message="version 2 on 200 captured requests of version 1: 0 errors"):
    return replay_api.ReplayStatus(version=2, verdict=verdict, message=message)


def seen(*, ready=(1, 2), replay=None, verdict="Inconclusive", action=None, at=0):
    return rollout.Observation(
        desired=2,
        ready={v: True for v in ready},
        verdict=verdict,
        action=action,
        now=T0 + datetime.timedelta(seconds=at),
        requests=0,
        replay=replay,
    )


def started(s):
    d = rollout.decide(s, rollout.State(stable=1, phase="Healthy"), seen(ready=(1,)))
    return d


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_every_strategy_begins_with_the_replay_and_gives_the_candidate_nothing_meanwhile(kind):
    s = strategy(kind)
    d = started(s)
    assert (d.state.candidate, d.state.phase, d.state.replay_started) == (2, "Progressing", T0)
    assert d.events == (
        ("Normal", "RolloutStarted", f"Rolling out version 2 over 1 ({kind}, after a replay of up to 200 captured requests)"),
    )
    assert rollout.traffic(s, d.state) == STABLE_ONLY  # no split, mirror or preview share
    held = rollout.decide(s, d.state, seen(at=5))  # Ready, replay running
    assert held.state == dataclasses.replace(d.state, phase="Progressing") and held.events == ()
    assert rollout.traffic(s, held.state) == STABLE_ONLY


def test_without_replay_the_candidate_takes_its_share_at_once():
    s = strategy_api.Strategy.model_validate({"type": "Canary", **STRATEGIES["Canary"]})
    d = started(s)
    assert d.state.replay_started is None and rollout.summary(rollout.traffic(s, d.state)) == "v1=75,v2=25"


def test_a_passing_replay_starts_the_first_step_on_the_same_pass():
    s = strategy()
    d = rollout.decide(s, started(s).state, seen(replay=judged("Passing"), at=20))
    assert d.state.replay_started is None and d.state.candidate_ready_at == T0 + datetime.timedelta(seconds=20)
    assert d.state.step_started == d.state.candidate_ready_at and d.window_reset  # the pause counts from here
    assert rollout.summary(rollout.traffic(s, d.state)) == "v1=75,v2=25"
    assert d.events == (("Normal", "ReplayPassed", "Version 2 on 200 captured requests of version 1: 0 errors"),)


def test_a_passing_replay_of_a_direct_rollout_promotes():
    s = strategy("Direct")
    d = rollout.decide(s, started(s).state, seen(replay=judged("Passing"), at=20))
    assert (d.state.stable, d.state.candidate, d.state.phase) == (2, None, "Healthy")
    assert [reason for _, reason, _ in d.events] == ["ReplayPassed", "Promoted"]


def test_an_inconclusive_replay_goes_on_to_the_live_analysis_and_says_so():
    s = strategy("BlueGreen")
    why = "no captured request answered by version 1 to replay; spec.logging must capture traffic"
    d = rollout.decide(s, started(s).state, seen(replay=judged("Inconclusive", why), at=20))
    assert d.state.replay_started is None and d.state.phase == "Progressing"
    assert rollout.traffic(s, d.state)[1] == rolloutstatus.TrafficEntry(version=2, role="preview", percent=0)
    assert d.events == (
        (
            "Warning",
            "ReplayInconclusive",
            f"Replay inconclusive ({why}); the BlueGreen analysis judges version 2 on live traffic",
        ),
    )


def test_a_failing_replay_rolls_the_candidate_back_without_it_ever_taking_traffic():
    s = strategy()
    failing = judged("Failing", "version 2 on 200 captured requests of version 1: errorRate 0.33 > maxErrorRate 0 (66 of 200)")
    d = rollout.decide(s, started(s).state, seen(replay=failing, at=20))
    assert (d.state.stable, d.state.candidate, d.state.phase, d.state.rolled_back) == (1, None, "RolledBack", 2)
    assert d.events == (
        (
            "Warning",
            "ReplayFailed",
            "Version 2 on 200 captured requests of version 1: errorRate 0.33 > maxErrorRate 0 (66 of 200)",
        ),
        (
            "Warning",
            "RolledBack",
            "Version 2 rolled back (replay failed: version 2 on 200 captured requests of version 1: "
            "errorRate 0.33 > maxErrorRate 0 (66 of 200)); version 1 serves all traffic",
        ),
    )
    assert rollout.traffic(s, d.state) == STABLE_ONLY


def test_a_failing_replay_with_on_failure_pause_keeps_the_candidate_out_of_traffic_until_a_person_decides():
    s = strategy(onFailure="pause")
    d = rollout.decide(s, started(s).state, seen(replay=judged("Failing", "version 2 ...: errorRate 1 > maxErrorRate 0"), at=20))
    assert (d.state.phase, d.state.candidate, d.state.replay_started) == ("Paused", 2, T0)
    assert [reason for _, reason, _ in d.events] == ["ReplayFailed", "RolloutPaused"]
    assert rollout.traffic(s, d.state) == STABLE_ONLY
    later = rollout.decide(s, d.state, seen(replay=judged("Failing"), at=300))
    assert later.state == d.state and later.events == ()  # paused, not decided again
    assert rollout.decide(s, d.state, seen(action="abort", at=400)).state.phase == "RolledBack"
    promoted = rollout.decide(s, d.state, seen(action="promote", at=400))
    assert (promoted.state.stable, promoted.state.phase) == (2, "Healthy")  # a person may overrule it


def test_the_replay_waits_for_a_ready_candidate_and_one_that_never_loads_fails_as_before():
    s = strategy()
    state = started(s).state
    waiting = rollout.decide(s, state, seen(ready=(1,), replay=judged("Passing"), at=30))
    assert waiting.state.replay_started == T0 and waiting.events == ()  # not Ready: nothing is judged
    late = rollout.decide(s, state, seen(ready=(1,), at=11 * 60))
    assert late.state.phase == "RolledBack" and "did not become ready" in late.events[0][2]


def test_a_failing_live_verdict_during_the_replay_is_not_taken_before_the_replay_ends():
    s = strategy()
    state = started(s).state
    # The candidate has no traffic during its replay: a verdict then (a metric check) waits.
    assert rollout.decide(s, state, seen(verdict="Failing", at=10)).state.phase == "Progressing"
    after = rollout.decide(s, state, seen(verdict="Failing", replay=judged("Passing"), at=20))
    assert after.state.phase == "RolledBack"
    assert [reason for _, reason, _ in after.events] == ["ReplayPassed", "RolledBack"]


def test_a_spec_change_during_the_replay_restarts_it_for_the_new_candidate():
    s = strategy()
    state = started(s).state
    d = rollout.decide(s, state, dataclasses.replace(seen(at=30), desired=3, ready={1: True, 2: True, 3: False}))
    assert (d.state.candidate, d.state.replay_started) == (3, T0 + datetime.timedelta(seconds=30))
