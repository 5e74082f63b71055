"""The rollout state machine: each strategy's path, promotion, rollback, manual actions, and what an
undecided analysis does (keep collecting, say so once, then pause)."""

import dataclasses
import datetime

import pytest

from mlkube.api import rolloutstatus
from mlkube.api import strategy as strategy_api
from mlkube.control.policy import rollout

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def strategy(**kw):
    return strategy_api.Strategy.model_validate(
        {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "1m"}, {"weight": 50, "pause": "1m"}]}, **kw}
    )


def seen(desired, *, ready=(1, 2), verdict=None, action=None, at=0, requests=100, why=()):
    return rollout.Observation(
        desired=desired,
        ready={v: True for v in ready},
        verdict=verdict,
        action=action,
        now=T0 + datetime.timedelta(seconds=at),
        requests=requests,
        inconclusive_checks=why,
    )


def test_first_version_is_deployed_directly():
    d = rollout.decide(strategy(), rollout.State(), seen(1, ready=()))
    assert (d.state.stable, d.state.phase) == (1, "Progressing")
    d = rollout.decide(strategy(), d.state, seen(1))
    assert d.state.phase == "Healthy"
    assert rollout.traffic(strategy(), d.state) == [rolloutstatus.TrafficEntry(version=1, role="stable", percent=100)]


def test_canary_walks_its_steps_then_promotes():
    s = strategy()
    state = rollout.decide(s, rollout.State(stable=1, phase="Healthy"), seen(2)).state
    assert (state.candidate, state.step) == (2, 0)
    assert rollout.summary(rollout.traffic(s, state)) == "v1=75,v2=25"
    state = rollout.decide(s, state, seen(2, verdict="Inconclusive", at=0)).state  # ready: it serves from now
    assert rollout.decide(s, state, seen(2, verdict="Passing", at=30)).state.step == 0  # pause not over
    assert rollout.decide(s, state, seen(2, verdict="Inconclusive", at=90)).state.step == 0  # not enough traffic
    d = rollout.decide(s, state, seen(2, verdict="Passing", at=61))
    assert d.state.step == 1 and d.window_reset and rollout.summary(rollout.traffic(s, d.state)) == "v1=50,v2=50"
    d = rollout.decide(s, d.state, seen(2, verdict="Passing", at=122))
    assert (d.state.stable, d.state.candidate, d.state.phase) == (2, None, "Healthy")
    assert d.events[0][1] == "Promoted"


def test_failing_analysis_rolls_back_and_the_version_is_not_retried():
    s = strategy()
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=1, step_started=T0, candidate_ready_at=T0)
    d = rollout.decide(s, state, seen(2, verdict="Failing", at=5))
    assert (d.state.stable, d.state.candidate, d.state.phase, d.state.rolled_back) == (1, None, "RolledBack", 2)
    assert rollout.traffic(s, d.state) == [rolloutstatus.TrafficEntry(version=1, role="stable", percent=100)]
    assert rollout.decide(s, d.state, seen(2, at=60)).state.phase == "RolledBack"
    assert rollout.decide(s, d.state, seen(3, ready=(1, 3), at=60)).state.candidate == 3


def test_on_failure_pause_keeps_the_split_and_waits():
    s = strategy(onFailure="pause")
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    d = rollout.decide(s, state, seen(2, verdict="Failing"))
    assert d.state.phase == "Paused" and d.state.candidate == 2
    assert rollout.decide(s, d.state, seen(2, action="abort")).state.phase == "RolledBack"


def test_candidate_that_never_becomes_ready_is_rolled_back():
    s = strategy()
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    assert rollout.decide(s, state, seen(2, ready=(1,), at=60)).state.phase == "Progressing"
    assert rollout.decide(s, state, seen(2, ready=(1,), at=11 * 60)).state.phase == "RolledBack"


def test_manual_promotion_when_auto_promote_is_off():
    s = strategy(autoPromote=False, canary={"steps": [{"weight": 10, "pause": "1m"}]})
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    d = rollout.decide(s, state, seen(2, verdict="Passing", at=61))
    assert d.state.phase == "Paused"
    assert rollout.decide(s, d.state, seen(2, verdict="Passing", at=200)).state.phase == "Paused"
    assert rollout.decide(s, d.state, seen(2, action="promote", at=201)).state.stable == 2


@pytest.mark.parametrize(
    ("kind", "table"),
    [
        ("BlueGreen", "v1=100,v2=0"),
        ("ABTest", "v1=50,v2=50"),
        ("Shadow", "v1=100,v2=[100]"),
    ],
)
def test_other_strategies_traffic(kind, table):
    s = strategy_api.Strategy(type=kind)
    assert rollout.summary(rollout.traffic(s, rollout.State(stable=1, candidate=2, phase="Progressing", step=0))) == table


def test_shadow_promotes_on_passing_agreement_after_its_duration():
    s = strategy_api.Strategy(type="Shadow", shadow={"percent": 100, "duration": "5m"})
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    assert rollout.decide(s, state, seen(2, verdict="Passing", at=60)).state.candidate == 2
    assert rollout.decide(s, state, seen(2, verdict="Passing", at=301)).state.stable == 2
    undecided = rollout.decide(s, state, seen(2, verdict="Inconclusive", at=301))
    assert undecided.state.phase == "Progressing" and [e[1] for e in undecided.events] == ["AnalysisInconclusive"]
    at_once = strategy_api.Strategy(type="Shadow", shadow={"duration": "5m"}, analysis={"inconclusiveLimit": 0})
    assert rollout.decide(at_once, state, seen(2, verdict="Inconclusive", at=301)).state.phase == "Paused"


CANARY_HELD = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
FEW = ("12 of 50 requests",)


def test_an_inconclusive_step_keeps_collecting_says_so_once_then_pauses():
    s = strategy(analysis={"interval": "10s", "inconclusiveLimit": 3})  # step 0: 25 % for 1m
    assert rollout.decide(s, CANARY_HELD, seen(2, verdict="Inconclusive", at=30, why=FEW)) == rollout.Decision(CANARY_HELD)
    first = rollout.decide(s, CANARY_HELD, seen(2, verdict="Inconclusive", at=61, why=FEW))
    assert first.state == dataclasses.replace(CANARY_HELD, inconclusive_since=T0 + datetime.timedelta(seconds=61))
    assert first.events == (
        (
            "Warning",
            "AnalysisInconclusive",
            "Canary step 0 of version 2 ended with an inconclusive analysis (12 of 50 requests); "
            "collecting for up to 3 more analysis intervals (30s), then the rollout pauses",
        ),
    )
    again = rollout.decide(s, first.state, seen(2, verdict="Inconclusive", at=75, why=FEW))
    assert again == rollout.Decision(first.state)  # one Event a step, not one a pass
    paused = rollout.decide(s, first.state, seen(2, verdict="Inconclusive", at=91, why=FEW))
    assert paused.state.phase == "Paused" and paused.state.candidate == 2
    assert paused.events == (
        (
            "Normal",
            "AwaitingDecision",
            "Canary step 0 of version 2 ended and 3 more analysis intervals (30s) with an inconclusive analysis "
            "(12 of 50 requests); annotate mlkube.io/action=promote or abort",
        ),
    )
    assert rollout.traffic(s, paused.state) == rollout.traffic(s, CANARY_HELD)  # the split holds while a person decides
    assert rollout.decide(s, paused.state, seen(2, verdict="Inconclusive", at=200)) == rollout.Decision(paused.state)
    assert rollout.decide(s, paused.state, seen(2, action="promote", at=201)).state.stable == 2
    assert rollout.decide(s, paused.state, seen(2, action="abort", at=201)).state.phase == "RolledBack"
    # Paused undecided, the candidate keeps its share and is still judged: a failure ends it.
    failing = rollout.decide(s, paused.state, seen(2, verdict="Failing", at=300))
    assert (failing.state.phase, failing.state.rolled_back) == ("RolledBack", 2)
    held = rollout.decide(strategy(onFailure="pause"), paused.state, seen(2, verdict="Failing", at=300))
    assert held.state.phase == "Paused" and held.state.inconclusive_since is None and held.events[0][1] == "RolloutPaused"
    assert rollout.decide(strategy(onFailure="pause"), held.state, seen(2, verdict="Failing", at=301)).events == ()


def test_a_decision_while_collecting_ends_the_wait_and_the_next_step_starts_afresh():
    s = strategy(analysis={"interval": "10s"})
    waiting = dataclasses.replace(CANARY_HELD, inconclusive_since=T0 + datetime.timedelta(seconds=61))
    passed = rollout.decide(s, waiting, seen(2, verdict="Passing", at=80))
    assert (passed.state.step, passed.state.inconclusive_since, passed.window_reset) == (1, None, True)
    assert rollout.decide(s, waiting, seen(2, verdict="Failing", at=80)).state.phase == "RolledBack"
    lost = rollout.decide(s, CANARY_HELD, seen(2, verdict=None, at=61))  # the router did not answer
    assert "the router's counters are unavailable" in lost.events[0][2]


@pytest.mark.parametrize(
    ("requests", "without_traffic", "phase"),
    [(0, False, "Progressing"), (9, False, "Progressing"), (10, False, "Healthy"), (0, True, "Healthy")],
)
def test_blue_green_never_promotes_a_preview_nobody_tried(requests, without_traffic, phase):
    s = strategy_api.Strategy.model_validate(
        {
            "type": "BlueGreen",
            "blueGreen": {"previewDuration": "1m", "promoteWithoutTraffic": without_traffic},
            "analysis": {"minRequests": 10, "interval": "10s"},
        }
    )
    d = rollout.decide(s, CANARY_HELD, seen(2, verdict="Inconclusive", at=61, requests=requests))
    assert d.state.phase == phase
    if phase == "Progressing":
        assert (
            d.events[0][1] == "AnalysisInconclusive"
            and (
                f"the preview answered {requests} of 10 requests; send requests to status.previewUrl "
                "or set blueGreen.promoteWithoutTraffic"
            )
            in d.events[0][2]
        )
        paused = rollout.decide(s, d.state, seen(2, verdict="Inconclusive", at=91, requests=requests))
        assert paused.state.phase == "Paused" and paused.state.stable == 1
    assert rollout.decide(s, CANARY_HELD, seen(2, verdict="Failing", at=61, requests=requests)).state.phase == "RolledBack"


def test_spec_going_back_to_stable_cancels_the_candidate():
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    d = rollout.decide(strategy(), state, seen(1))
    assert (d.state.stable, d.state.candidate, d.state.phase) == (1, None, "Healthy")


def test_a_candidate_kserve_cannot_load_fails_at_once_with_the_reason():
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    refused = rollout.Observation(
        desired=2,
        ready={1: True, 2: False},
        verdict=None,
        action=None,
        now=T0,
        load_failures={2: "integrity check failed: model.joblib"},
    )
    d = rollout.decide(strategy(), state, refused)
    assert (d.state.phase, d.state.rolled_back) == ("RolledBack", 2)
    assert "cannot load: integrity check failed: model.joblib" in d.events[0][2]
    paused = rollout.decide(strategy(onFailure="pause"), state, refused)
    assert paused.state.phase == "Paused" and paused.events[0][1] == "RolloutPaused"
    assert rollout.decide(strategy(onFailure="pause"), paused.state, refused) == rollout.Decision(paused.state)  # no repeat


def test_a_stable_version_that_cannot_load_is_degraded():
    broken = rollout.Observation(desired=1, ready={1: False}, verdict=None, action=None, now=T0, load_failures={1: "bad"})
    assert rollout.decide(strategy(), rollout.State(stable=1, phase="Progressing"), broken).state.phase == "Degraded"


def test_a_failing_analysis_says_which_thresholds_broke():
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
    seen_failing = rollout.Observation(
        desired=2,
        ready={1: True, 2: True},
        verdict="Failing",
        action=None,
        now=T0,
        failed_checks=("errorRate 0.3 > maxErrorRate 0.05 (6 of 20 requests)",),
    )
    assert "analysis failed: errorRate 0.3" in rollout.decide(strategy(), state, seen_failing).events[0][2]


def test_promoting_a_candidate_that_is_not_ready_is_refused():
    state = rollout.State(stable=1, candidate=2, phase="Paused", step=0, step_started=T0)
    d = rollout.decide(strategy(), state, seen(2, ready=(1,), action="promote"))
    assert d.state == state and d.events[0][1] == "PromotionRefused"


def test_the_first_pause_counts_from_when_the_candidate_is_ready():
    s = strategy()
    started = rollout.decide(s, rollout.State(stable=1, phase="Healthy"), seen(2, ready=(1,))).state
    loading = rollout.decide(s, started, seen(2, ready=(1,), at=50)).state
    assert loading.candidate_ready_at is None and loading.step == 0
    d = rollout.decide(s, loading, seen(2, verdict="Passing", at=70))
    assert d.window_reset and d.state.candidate_ready_at == d.state.step_started == T0 + datetime.timedelta(seconds=70)
    assert rollout.decide(s, d.state, seen(2, verdict="Passing", at=125)).state.step == 0  # 55 s of a 1m pause served
    assert rollout.decide(s, d.state, seen(2, verdict="Passing", at=131)).state.step == 1


AB_RUNNING = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)
WORSE = "version 1 beats 2 on accuracy: 0.975 vs 0.425 (p=1.2e-08, 40/40 labeled)"
BETTER = "version 2 beats 1 on accuracy: 0.91 vs 0.84 (p=0.003, 412/398 labeled)"


def ab_seen(*, winner=None, summary="", verdict="Passing", at=601):
    return rollout.Observation(
        desired=2,
        ready={1: True, 2: True},
        verdict=verdict,
        action=None,
        now=T0 + datetime.timedelta(seconds=at),
        ab_winner=winner,
        ab_summary=summary,
    )


def ab_strategy(**kw):
    return strategy_api.Strategy.model_validate({"type": "ABTest", "abTest": {"duration": "10m"}, **kw})


def test_ab_test_runs_its_duration_whatever_the_report_says():
    d = rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(winner=1, summary=WORSE, at=599))
    assert d == rollout.Decision(AB_RUNNING)


def test_ab_test_rolls_back_a_significantly_worse_candidate_quoting_the_report():
    d = rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(winner=1, summary=WORSE))
    assert (d.state.stable, d.state.candidate, d.state.phase, d.state.rolled_back) == (1, None, "RolledBack", 2)
    assert d.events[0] == ("Normal", "ABTestReport", WORSE)
    assert d.events[1] == ("Warning", "RolledBack", f"Version 2 rolled back (A/B test: {WORSE}); version 1 serves all traffic")
    paused = rollout.decide(ab_strategy(onFailure="pause"), AB_RUNNING, ab_seen(winner=1, summary=WORSE))
    assert paused.state.phase == "Paused" and [e[1] for e in paused.events] == ["ABTestReport", "RolloutPaused"]


def test_ab_test_finishes_with_a_significantly_better_candidate():
    d = rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(winner=2, summary=BETTER, verdict="Inconclusive"))
    assert (d.state.stable, d.state.candidate, d.state.phase) == (2, None, "Healthy")
    assert [e[1] for e in d.events] == ["ABTestReport", "Promoted"] and f"(A/B test: {BETTER})" in d.events[1][2]
    manual = rollout.decide(ab_strategy(autoPromote=False), AB_RUNNING, ab_seen(winner=2, summary=BETTER))
    assert manual.state.phase == "Paused" and [e[1] for e in manual.events] == ["ABTestReport", "AwaitingPromotion"]


SEQUENTIAL_BETTER = "version 2 beats 1 on accuracy: 0.95 vs 0.75 (always-valid p=2.6e-06 < 0.05, mSPRT tau=0.2, 200/200 labeled)"
SEQUENTIAL_WORSE = "version 1 beats 2 on accuracy: 0.95 vs 0.5 (always-valid p=4.1e-05 < 0.05, mSPRT tau=0.2, 60/60 labeled)"


def ab_sequential(winner, summary, *, at=300, verdict="Inconclusive"):
    """Half-way through the 10m test, the sequential test has a winner; the fixed-horizon one too."""
    return dataclasses.replace(
        ab_seen(winner=winner, summary="fixed-horizon conclusion", verdict=verdict, at=at),
        ab_sequential_winner=winner,
        ab_sequential_summary=summary,
    )


def test_ab_test_stops_early_on_its_sequential_winner_unless_early_stop_is_off():
    better = ab_sequential(2, SEQUENTIAL_BETTER)
    d = rollout.decide(ab_strategy(), AB_RUNNING, better)
    assert d.state == rollout.State(stable=2, phase="Healthy") and d.ab_stopped_early and d.window_reset
    assert d.events == (
        ("Normal", "ABTestReport", SEQUENTIAL_BETTER),
        ("Normal", "Promoted", f"Version 2 is stable (A/B test stopped early after 5m of 10m: {SEQUENTIAL_BETTER})"),
    )
    off = ab_strategy(abTest={"duration": "10m", "earlyStop": False})
    assert rollout.decide(off, AB_RUNNING, better) == rollout.Decision(AB_RUNNING)  # runs its duration
    at_the_end = rollout.decide(off, AB_RUNNING, dataclasses.replace(better, now=T0 + datetime.timedelta(seconds=601)))
    assert at_the_end.state.stable == 2 and not at_the_end.ab_stopped_early  # then the fixed-horizon test decides
    assert at_the_end.events[0] == ("Normal", "ABTestReport", "fixed-horizon conclusion")
    undecided = dataclasses.replace(better, ab_sequential_winner=None, ab_sequential_summary="no winner yet")
    assert rollout.decide(ab_strategy(), AB_RUNNING, undecided) == rollout.Decision(AB_RUNNING)


def test_ab_test_stopped_early_on_a_worse_candidate_rolls_it_back_or_pauses():
    worse = ab_sequential(1, SEQUENTIAL_WORSE, at=90, verdict="Passing")
    d = rollout.decide(ab_strategy(), AB_RUNNING, worse)
    assert d.state == rollout.State(stable=1, phase="RolledBack", rolled_back=2) and d.ab_stopped_early
    assert [e[1] for e in d.events] == ["ABTestReport", "RolledBack"]
    assert d.events[1][2] == (
        f"Version 2 rolled back (A/B test stopped early after 90s of 10m: {SEQUENTIAL_WORSE}); version 1 serves all traffic"
    )
    paused = rollout.decide(ab_strategy(onFailure="pause"), AB_RUNNING, worse)
    assert paused.state.phase == "Paused" and [e[1] for e in paused.events] == ["ABTestReport", "RolloutPaused"]
    manual = rollout.decide(ab_strategy(autoPromote=False), AB_RUNNING, ab_sequential(2, SEQUENTIAL_BETTER))
    assert manual.state.phase == "Paused" and [e[1] for e in manual.events] == ["ABTestReport", "AwaitingPromotion"]
    week = strategy_api.Strategy.model_validate({"type": "ABTest", "abTest": {"duration": "7d"}})
    late = rollout.decide(week, AB_RUNNING, ab_sequential(1, SEQUENTIAL_WORSE, at=2 * 86400))
    assert "A/B test stopped early after 48h of 7d: " in late.events[1][2]


def test_ab_test_without_a_winner_keeps_the_operational_verdict():
    undecided = "not enough labeled feedback: 12 (version 1) and 9 (version 2) of 50 needed"
    d = rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(summary=undecided))
    assert d.state.stable == 2 and [e[1] for e in d.events] == ["ABTestReport", "Promoted"]
    assert "ABTest ran for 10m without failing" in d.events[1][2]
    d = rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(summary=undecided, verdict="Inconclusive"))
    assert d.state.phase == "Progressing" and [e[1] for e in d.events] == ["AnalysisInconclusive"]  # the test goes on
    d = rollout.decide(ab_strategy(), d.state, ab_seen(summary=undecided, verdict="Inconclusive", at=691))
    assert d.state.phase == "Paused" and [e[1] for e in d.events] == ["ABTestReport", "AwaitingDecision"]
    at_once = ab_strategy(analysis={"inconclusiveLimit": 0})
    no_report = rollout.decide(at_once, AB_RUNNING, ab_seen(verdict="Inconclusive"))
    assert [e[1] for e in no_report.events] == ["AwaitingDecision"]  # the router did not answer: nothing to report
    late_winner = rollout.decide(ab_strategy(), d.state, ab_seen(winner=2, summary=BETTER, at=650))
    assert late_winner == rollout.Decision(d.state)  # paused: a person decides from here
    assert rollout.decide(ab_strategy(), AB_RUNNING, ab_seen(summary=undecided, verdict="Failing")).state.phase == "RolledBack"
