"""The ModelDeployment's status pieces: the traffic as routed, load failures from KServe's
modelStatus, and the A/B test report and its lifetime in status."""

import datetime

from mdep_cases import T0, isvc

from mlkube.api import deployment, rolloutstatus
from mlkube.api import strategy as strategy_api
from mlkube.control.plans import deployment_rollout
from mlkube.control.policy import analysis, kserve, rollout

CANARY = [
    rolloutstatus.TrafficEntry(version=1, role="stable", percent=75),
    rolloutstatus.TrafficEntry(version=2, role="canary", percent=25),
]


def test_a_version_the_router_cannot_call_yet_gets_no_share():
    assert deployment_rollout.routed(CANARY, {1: "http://a", 2: "http://b"}) == CANARY
    assert [t.wire() for t in deployment_rollout.routed(CANARY, {1: "http://a"})] == [
        {"version": 1, "role": "stable", "percent": 100},
        {"version": 2, "role": "canary", "percent": 0},
    ]


def test_load_failures_are_refusals_not_kills():
    refused = isvc(2, ready=False, failure={"reason": "ModelLoadFailed", "exitCode": 1, "message": "integrity: model.joblib"})
    assert kserve.load_failure(refused) == "integrity: model.joblib"
    killed = isvc(2, ready=False, failure={"reason": "ModelLoadFailed", "exitCode": 137, "message": "killed"})
    assert kserve.load_failure(killed) is None
    assert kserve.load_failure(isvc(2)) is None and kserve.load_failure(None) is None
    seen = kserve.Seen.of({1: isvc(1), 2: refused})
    assert (seen.ready, seen.load_failures) == ({1: True, 2: False}, {2: "integrity: model.joblib"})


def test_a_service_address_needs_a_cluster_ip():
    assert kserve.service_url({"spec": {"clusterIP": "127.1.0.4", "ports": [{"port": 8080}]}}) == "http://127.1.0.4:8080"
    assert kserve.service_url({"spec": {"clusterIP": "None"}}) is None and kserve.service_url(None) is None


def test_the_ab_report_compares_each_version_since_the_test_began():
    def counters(requests, labeled, correct):
        return {
            "requests": requests,
            "serverErrors": 0,
            "latency": {"buckets": [{"le": 5, "count": requests}, {"le": "+Inf", "count": requests}]},
            "quality": {"labeled": labeled, "correct": correct},
        }

    start = {"startTime": 1.0, "versions": {"1": counters(500, 100, 90), "2": counters(0, 0, 0)}}
    now = {"startTime": 1.0, "versions": {"1": counters(560, 140, 129), "2": counters(60, 40, 18)}}
    strategy = strategy_api.Strategy.model_validate({"type": "ABTest", "analysis": {"minRequests": 20}})
    report = deployment_rollout.ab_report(
        now,
        strategy,
        stable=1,
        candidate=2,
        candidate_window=analysis.window(now, 2, analysis.snapshot(start, 2)),
        stable_baseline=analysis.snapshot(start, 1),
        task="classification",
    )
    assert [(v.version, v.role, v.requests, v.labeled, v.value) for v in report.versions] == [
        (1, "stable", 60, 40, 0.975),
        (2, "b", 60, 40, 0.45),
    ]
    assert report.winner == 1


def test_the_ab_report_is_refreshed_while_the_test_runs_then_kept_until_the_next_rollout():
    running = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0)
    report = rolloutstatus.ABTestReport(metric="accuracy", winner=None, conclusion="so far")
    later = T0 + datetime.timedelta(minutes=10)
    baseline = rolloutstatus.AnalysisBaseline(requests=5)

    def ab(current, before, after, fresh, baseline=None):
        new = deployment.ModelDeploymentStatus(phase=after.phase)
        return deployment_rollout.with_ab_test(
            new, current, before=before, after=after, report=fresh, baseline=baseline, now=later
        )

    empty = deployment.ModelDeploymentStatus()
    new = ab(empty, running, running, report, baseline=baseline)
    assert new.wire()["abTest"] == {"versions": [], "metric": "accuracy", "conclusion": "so far"}
    assert new.ab_test_baseline == baseline
    assert ab(new, running, running, None).ab_test == new.ab_test  # the router did not answer this pass
    final = rolloutstatus.ABTestReport(metric="accuracy", winner=1, conclusion="version 1 beats 2")
    rolled_back = rollout.State(stable=1, phase="RolledBack", rolled_back=2)
    ended = ab(new, running, rolled_back, final)
    assert ended.ab_test.winner == 1 and ended.ab_test.finished_at == "2026-01-01T00:10:00Z"
    assert ended.ab_test_baseline is None
    assert ab(ended, rolled_back, rolled_back, None).ab_test == ended.ab_test  # kept while at rest
    paused_state = rollout.State(stable=1, candidate=2, phase="Paused")
    paused = ab(new, running, paused_state, final)
    assert paused.ab_test.finished_at
    assert ab(paused, paused_state, rollout.State(stable=2, phase="Healthy"), report).ab_test == paused.ab_test
    next_rollout = rollout.State(stable=1, candidate=3, phase="Progressing", step=0)
    assert ab(ended, rolled_back, next_rollout, None).ab_test is None
