"""The ModelDeployment plan inside a ``scaleDownDelay`` window: the previous version's
InferenceService stays applied and its backend stays in the router's table (at 0%), the analysis
judges the new stable version, a failure is a table change back to it, and the window's end retires
it as any version leaving the table."""

import json

from mdep_cases import STAMP, counters, isvc, mdep, observed, plan, registry, stats, stored

from mlkube.api import routing as routing_api
from mlkube.control.manifests import serving
from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.plans import plan as plans
from mlkube.serving import routing

STRATEGY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 25, "pause": "1m"}]},
    "analysis": {"minRequests": 20},
    "scaleDownDelay": "10m",
}
ROLLING = {
    "phase": "Progressing",
    "stableVersion": 1,
    "candidateVersion": 2,
    "currentStep": 0,
    "stepStartedAt": STAMP,
    "candidateReadyAt": STAMP,
    "analysisBaseline": {"startTime": 1.0, "requests": 0, "errors": 0, "buckets": [0, 0]},
}


def children(result) -> list[tuple[str, str]]:
    return [(c["kind"], c["metadata"]["name"]) for c in result.apply]


def table_of(result) -> routing_api.RoutingTable:
    (config,) = [c for c in result.apply if c["kind"] == "ConfigMap"]
    return routing.RoutingTable.parse(json.loads(config["data"][serving.ROUTES_KEY]))


def both(**changes):
    return observed(**{"registry": registry(champion=2), "isvcs": {1: isvc(1), 2: isvc(2)}, **changes})


def promoted():
    obj = mdep(status=ROLLING, strategy=STRATEGY)
    result = plan(obj, both(stats=stats(v1=counters(300), v2=counters(2000))), at=61)
    return obj, result


def test_the_promotion_keeps_the_previous_inference_service_and_its_backend_in_the_table():
    obj, result = promoted()
    status = result.status
    assert (status.stable_version, status.previous_version, status.scale_down_at) == (2, 1, "2026-01-01T00:11:01Z")
    assert status.candidate_version is None and status.retiring_versions == [] and result.delete == ()
    assert status.analysis_baseline.requests == 2000  # the new stable version's window starts at the promotion
    assert ("InferenceService", "churn-prod-v1") in children(result)
    table = table_of(result)
    assert sorted(table.backends) == [1, 2]  # warm: switching back is a table change only
    assert [(t.version, t.weight) for t in table.split] == [(2, 100)]
    assert status.traffic_summary == "v2=100"
    assert plan_deployment.is_rolling_out(status)  # a pass every tick through the window

    held = plan(stored(obj, result), both(stats=stats(v1=counters(300), v2=counters(4000))), at=120)
    assert ("InferenceService", "churn-prod-v1") in children(held) and sorted(table_of(held).backends) == [1, 2]
    assert held.status.previous_version == 1 and held.delete == () and held.events == ()
    assert held.status.analysis.requests == 2000 and held.status.analysis.verdict == "Passing"


def test_a_failure_in_the_window_routes_everything_back_to_the_warm_version():
    obj, result = promoted()
    failing = both(stats=stats(v1=counters(300), v2=counters(2060, errors=30)))
    back = plan(stored(obj, result), failing, at=120)
    (event,) = back.events
    assert event.type == "Warning" and event.reason == "RolledBack"
    assert (
        "Version 2 rolled back within its scaleDownDelay window (analysis failed: errorRate 0.5 > maxErrorRate 0.01 (30 of 60 requests"
        in event.message
    )
    assert "switched 100% of traffic back to warm version 1" in event.message
    status = back.status
    assert (status.phase, status.stable_version, status.rolled_back_version, status.previous_version) == (
        "RolledBack",
        1,
        2,
        None,
    )
    assert [(t.version, t.weight) for t in table_of(back).split] == [(1, 100)]
    assert status.retiring_versions == [2] and ("InferenceService", "churn-prod-v1") in children(back)


def test_the_end_of_the_window_retires_the_previous_version_one_pass_later():
    obj, result = promoted()
    seen = both(stats=stats(v1=counters(300), v2=counters(4000)))
    ended = plan(stored(obj, result), seen, at=61 + 600)
    assert [e.reason for e in ended.events] == ["ScaledDown"]
    assert ended.status.previous_version is None and ended.status.retiring_versions == [1]
    assert ("InferenceService", "churn-prod-v1") not in children(ended) and sorted(table_of(ended).backends) == [2]
    gone = plan(stored(obj, ended), seen, at=61 + 601)
    assert gone.delete == (plans.ObjectRef("serving.kserve.io/v1beta1", "InferenceService", "churn-prod-v1", "ml"),)


def test_without_a_delay_the_previous_version_leaves_at_the_promotion():
    obj = mdep(status=ROLLING, strategy={k: v for k, v in STRATEGY.items() if k != "scaleDownDelay"})
    result = plan(obj, both(stats=stats(v1=counters(300), v2=counters(2000))), at=61)
    assert result.status.previous_version is None and result.status.retiring_versions == [1]
    assert ("InferenceService", "churn-prod-v1") not in children(result)
