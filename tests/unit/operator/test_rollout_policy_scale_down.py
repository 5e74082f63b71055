"""Instant rollback after a promotion (``strategy.scaleDownDelay``): the previous stable version
stays warm through the window, a failure inside it switches back at once (said once), the window's
end retires it, and without a delay a promotion retires it at once as before."""

import datetime

from mlkube.api import rolloutstatus
from mlkube.api import strategy as strategy_api
from mlkube.control.policy import rollout

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def strategy(**kw):
    return strategy_api.Strategy.model_validate({"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1m"}]}, **kw})


def seen(desired=2, *, ready=(1, 2), verdict=None, action=None, at=0, failed=(), load_failures=None):
    return rollout.Observation(
        desired=desired,
        ready={v: True for v in ready},
        verdict=verdict,
        action=action,
        now=T0 + datetime.timedelta(seconds=at),
        failed_checks=failed,
        load_failures=load_failures or {},
    )


ROLLING = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0, candidate_ready_at=T0)


def promoted(s):
    return rollout.decide(s, ROLLING, seen(verdict="Passing", at=61))


def test_a_promotion_with_a_delay_keeps_the_previous_version_warm_at_zero_percent():
    s = strategy(scaleDownDelay="10m")
    d = promoted(s)
    assert (d.state.stable, d.state.candidate, d.state.previous, d.state.phase) == (2, None, 1, "Healthy")
    assert d.state.scale_down_at == T0 + datetime.timedelta(seconds=61, minutes=10)
    assert d.window_reset  # the analysis starts a new window on the new stable version
    (event,) = d.events
    assert event[1] == "Promoted" and "version 1 stays warm for 10m (until 2026-01-01T00:11:01Z)" in event[2]
    assert rollout.traffic(s, d.state) == [rolloutstatus.TrafficEntry(version=2, role="stable", percent=100)]
    held = rollout.decide(s, d.state, seen(verdict="Passing", at=300))
    assert (held.state.previous, held.state.phase, held.events) == (1, "Healthy", ())


def test_a_failure_inside_the_window_switches_back_at_once_and_says_so_once():
    s = strategy(scaleDownDelay="10m")
    state = promoted(s).state
    why = ("errorRate 0.300 > maxErrorRate 0.05 (30 of 100 requests; 95% interval 0.219-0.396)",)
    d = rollout.decide(s, state, seen(verdict="Failing", at=120, failed=why))
    assert (d.state.stable, d.state.candidate, d.state.previous, d.state.phase, d.state.rolled_back) == (
        1,
        None,
        None,
        "RolledBack",
        2,
    )
    assert rollout.traffic(s, d.state) == [rolloutstatus.TrafficEntry(version=1, role="stable", percent=100)]
    (event,) = d.events
    assert event[0:2] == ("Warning", "RolledBack")
    assert "switched 100% of traffic back to warm version 1" in event[2] and why[0] in event[2]
    again = rollout.decide(s, d.state, seen(verdict="Failing", at=125, failed=why))
    assert (again.state.stable, again.state.phase, again.events) == (1, "RolledBack", ())  # not retried, said once


def test_a_new_stable_version_that_cannot_load_or_an_abort_switches_back_too():
    s = strategy(scaleDownDelay="10m")
    state = promoted(s).state
    broken = rollout.decide(s, state, seen(ready=(1,), at=90, load_failures={2: "OOMKilled"}))
    assert (broken.state.stable, broken.state.phase) == (1, "RolledBack") and "OOMKilled" in broken.events[0][2]
    aborted = rollout.decide(s, state, seen(action="abort", at=90))
    assert (aborted.state.stable, aborted.state.rolled_back) == (1, 2)


def test_no_switch_back_to_a_previous_version_that_is_not_ready():
    s = strategy(scaleDownDelay="10m")
    d = rollout.decide(s, promoted(s).state, seen(ready=(2,), verdict="Failing", at=90))
    assert (d.state.stable, d.state.previous, d.events) == (2, 1, ())


def test_the_end_of_the_window_retires_the_previous_version():
    s = strategy(scaleDownDelay="10m")
    state = promoted(s).state
    d = rollout.decide(s, state, seen(verdict="Passing", at=61 + 600))
    assert (d.state.stable, d.state.previous, d.state.scale_down_at, d.state.phase) == (2, None, None, "Healthy")
    assert [e[1] for e in d.events] == ["ScaledDown"]
    late = rollout.decide(s, d.state, seen(verdict="Failing", at=61 + 610))
    assert (late.state.stable, late.events) == (2, ())  # after the window a failure no longer switches back


def test_a_new_rollout_inside_the_window_ends_it_and_asking_for_the_previous_version_switches_back():
    s = strategy(scaleDownDelay="10m")
    state = promoted(s).state
    d = rollout.decide(s, state, seen(3, ready=(1, 2, 3), at=90))
    assert (d.state.stable, d.state.candidate, d.state.previous) == (2, 3, None)
    back = rollout.decide(s, state, seen(1, at=90))
    assert (back.state.stable, back.state.phase, back.state.rolled_back) == (1, "Healthy", None)


def test_without_a_delay_a_promotion_retires_the_previous_version_at_once():
    s = strategy()
    d = promoted(s)
    assert d.state == rollout.State(stable=2, phase="Healthy")
    assert d.events == (("Normal", "Promoted", "Version 2 is stable (all canary steps passed)"),)
    after = rollout.decide(s, d.state, seen(verdict="Failing", at=90))
    assert (after.state.stable, after.events) == (2, ())


def test_direct_and_manual_promotions_keep_the_previous_version_too():
    direct = strategy(type="Direct", scaleDownDelay="30s")
    d = rollout.decide(direct, ROLLING, seen(at=1))
    assert (d.state.stable, d.state.previous) == (2, 1)
    manual = strategy(scaleDownDelay="30s")
    d = rollout.decide(manual, ROLLING, seen(action="promote", at=1))
    assert (d.state.stable, d.state.previous) == (2, 1)
