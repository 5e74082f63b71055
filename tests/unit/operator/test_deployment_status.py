"""The ModelDeployment controller's pure parts: the traffic as routed, load failures from
KServe's modelStatus, the status message, and Ready."""

import datetime

from mlkube import rollout
from mlkube.api import deployment
from mlkube.controllers import deployment as controller

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
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
