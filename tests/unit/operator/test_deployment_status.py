"""The ModelDeployment controller's pure parts: the traffic as routed, load failures from
KServe's modelStatus, the status message, and Ready."""

import datetime

from mlkube.api import deployment
from mlkube.control.handlers import deployment as controller
from mlkube.control.policy import analysis, rollout

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
CANARY = [{"version": 1, "role": "stable", "percent": 75}, {"version": 2, "role": "canary", "percent": 25}]


def isvc(*, ready: bool, failure: dict | None = None) -> dict:
    model_status = {"states": {"targetModelState": "FailedToLoad" if failure else "Loaded"}}
    if failure:
        model_status["lastFailureInfo"] = failure
    return {"status": {"conditions": [{"type": "Ready", "status": str(ready)}], "modelStatus": model_status,
                       "address": {"url": "http://127.1.0.9"}}}


def observed(**kw) -> controller.Observed:
    defaults = {"isvcs": {}, "ready": {1: True}, "load_failures": {}, "router_url": "http://127.1.0.1:80", "router_ready": True,
                "analysis": None}
    return controller.Observed(**{**defaults, **kw})


def test_a_version_the_router_cannot_call_yet_gets_no_share():
    assert controller._routed(CANARY, {1: "http://a", 2: "http://b"}) == CANARY
    assert controller._routed(CANARY, {1: "http://a"}) == [{"version": 1, "role": "stable", "percent": 100},
                                                           {"version": 2, "role": "canary", "percent": 0}]


def test_load_failures_are_refusals_not_kills():
    refused = isvc(ready=False, failure={"reason": "ModelLoadFailed", "exitCode": 1, "message": "integrity: model.joblib"})
    assert controller._load_failure(refused) == "integrity: model.joblib"
    killed = isvc(ready=False, failure={"reason": "ModelLoadFailed", "exitCode": 137, "message": "killed"})
    assert controller._load_failure(killed) is None
    assert controller._load_failure(isvc(ready=True)) is None and controller._load_failure(None) is None


def test_the_message_says_what_the_rollout_waits_for():
    state = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0)
    waiting = observed(ready={1: True, 2: False}, isvcs={2: isvc(ready=False)})
    assert controller._message({}, rollout.Decision(state), CANARY, waiting) == "Waiting for version 2 to become ready"
    result = deployment.AnalysisResult(requests=40, verdict="Passing")
    serving = observed(ready={1: True, 2: True}, analysis=result)
    assert controller._message({}, rollout.Decision(state), CANARY, serving) == \
        "Rolling out version 2: v1=75,v2=25; analysis Passing on 40 requests"
    rolled_back = rollout.State(stable=1, phase="RolledBack", rolled_back=2)
    assert controller._message({"message": "Version 2 rolled back (why)"}, rollout.Decision(rolled_back), CANARY[:1],
                               serving) == "Version 2 rolled back (why)"


def test_ready_needs_the_stable_version_and_the_router():
    state = rollout.State(stable=1, phase="Healthy")
    traffic = [{"version": 1, "role": "stable", "percent": 100}]

    def ready_of(seen):
        new = controller._status({}, state, traffic, seen, None, retiring=[], message="m", now=T0, generation=3)
        return next((c["status"], c["reason"]) for c in new["conditions"] if c["type"] == "Ready"), new
    (status, reason), new = ready_of(observed())
    assert (status, reason, new["observedGeneration"], new["url"]) == ("True", "Serving", 3, "http://127.1.0.1:80")
    assert ready_of(observed(router_ready=False))[0] == ("False", "RouterNotReady")
    assert ready_of(observed(ready={1: False}))[0] == ("False", "VersionNotReady")
    assert "retiringVersions" not in new
    assert controller._status({}, state, traffic, observed(), None, retiring=[2], message="m", now=T0,
                              generation=3)["retiringVersions"] == [2]


def test_the_ab_report_compares_each_version_since_the_test_began():
    def counters(requests, labeled, correct):
        return {"requests": requests, "serverErrors": 0, "latency": {"buckets": [{"le": 5, "count": requests},
                {"le": "+Inf", "count": requests}]}, "quality": {"labeled": labeled, "correct": correct}}
    start = {"startTime": 1.0, "versions": {"1": counters(500, 100, 90), "2": counters(0, 0, 0)}}
    now = {"startTime": 1.0, "versions": {"1": counters(560, 140, 129), "2": counters(60, 40, 18)}}
    strategy = deployment.Strategy.model_validate({"type": "ABTest", "analysis": {"minRequests": 20}})
    report = controller.ab_report(now, strategy, stable=1, candidate=2,
                                  candidate_window=analysis.window(now, 2, analysis.snapshot(start, 2)),
                                  stable_baseline=analysis.snapshot(start, 1), task="classification")
    assert [(v.version, v.role, v.requests, v.labeled, v.value) for v in report.versions] == [
        (1, "stable", 60, 40, 0.975), (2, "b", 60, 40, 0.45)]
    assert report.winner == 1


def test_the_ab_report_is_refreshed_while_the_test_runs_then_kept_until_the_next_rollout():
    running = rollout.State(stable=1, candidate=2, phase="Progressing", step=0, step_started=T0)
    report = deployment.ABTestReport(metric="accuracy", winner=None, conclusion="so far")
    later = T0 + datetime.timedelta(minutes=10)

    def ab(current, before, after, fresh, baseline=None):
        return controller._with_ab_test({"phase": after.phase}, current, before=before, after=after, report=fresh,
                                        baseline=baseline, now=later)
    new = ab({}, running, running, report, baseline={"requests": 5})
    assert new["abTest"] == {"versions": [], "metric": "accuracy", "conclusion": "so far"}
    assert new["abTestBaseline"] == {"requests": 5}
    assert ab(new, running, running, None)["abTest"] == new["abTest"]  # the router did not answer this pass
    final = deployment.ABTestReport(metric="accuracy", winner=1, conclusion="version 1 beats 2")
    rolled_back = rollout.State(stable=1, phase="RolledBack", rolled_back=2)
    ended = ab(new, running, rolled_back, final)
    assert ended["abTest"]["winner"] == 1 and ended["abTest"]["finishedAt"] == "2026-01-01T00:10:00Z"
    assert "abTestBaseline" not in ended
    assert ab(ended, rolled_back, rolled_back, None)["abTest"] == ended["abTest"]  # kept while at rest
    paused = ab(new, running, rollout.State(stable=1, candidate=2, phase="Paused"), final)
    assert paused["abTest"]["finishedAt"] and ab(paused, rollout.State(stable=1, candidate=2, phase="Paused"),
                                                 rollout.State(stable=2, phase="Healthy"), report)["abTest"] == paused["abTest"]
    next_rollout = rollout.State(stable=1, candidate=3, phase="Progressing", step=0)
    assert "abTest" not in ab(ended, rolled_back, next_rollout, None)
