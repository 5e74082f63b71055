"""The ModelDeployment plan with an estimatedPerformance gate: the router's table asks for the
watched version's probabilities, a canary whose confidence collapsed is rolled back on the
estimate against its test accuracy, and inside scaleDownDelay late labels showing a drop switch
back to the warm version."""

import json

from mdep_cases import STAMP, counters, isvc, mdep, observed, plan, stats, stored

from mlkube.api import project as project_api
from mlkube.api import routing as routing_api
from mlkube.control.manifests import serving
from mlkube.serving import scores

GATE = {"metric": "accuracy", "maxDrop": 0.05, "minSamples": 100}
STRATEGY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 25, "pause": "1m"}]},
    "analysis": {"minRequests": 20, "estimatedPerformance": GATE},
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


def registry() -> project_api.MLProjectStatus:
    return project_api.MLProjectStatus(
        champion_version=2,
        models=[
            project_api.ModelEntry(
                version=v,
                training_job=f"run-{v}",
                created_at=STAMP,
                artifact_uri=f"s3://models/churn/v{v}/",
                digest=f"sha256:{v}",
                metrics={"accuracy": 0.95, "f1": 0.9},
            )
            for v in (1, 2)
        ],
    )


def both(**changes):
    return observed(**{"registry": registry(), "isvcs": {1: isvc(1), 2: isvc(2)}, **changes})


def scored(requests: int, confidence: float, **quality) -> dict:
    counted = scores.Scores()
    for _ in range(requests):
        counted.add(confidence=confidence, positive=None)
    return {**counters(requests, **quality), "scores": counted.as_json()}


def table_of(result) -> routing_api.RoutingTable:
    (config,) = [c for c in result.apply if c["kind"] == "ConfigMap"]
    return routing_api.RoutingTable.parse(json.loads(config["data"][serving.ROUTES_KEY]))


def test_the_table_asks_for_the_candidates_probabilities_only_with_the_gate():
    seen = both(stats=stats(v1=counters(100), v2=scored(10, 0.97)))
    with_gate = plan(mdep(status=ROLLING, strategy=STRATEGY), seen, at=10)
    assert table_of(with_gate).scores == routing_api.Scores(versions=[2])
    without = {**STRATEGY, "analysis": {"minRequests": 20}}
    assert table_of(plan(mdep(status=ROLLING, strategy=without), seen, at=10)).scores is None


def test_a_canary_whose_confidence_collapsed_is_rolled_back_on_the_estimate():
    result = plan(mdep(status=ROLLING, strategy=STRATEGY), both(stats=stats(v1=counters(300), v2=scored(150, 0.6))), at=20)
    status = result.status
    assert (status.phase, status.stable_version, status.rolled_back_version) == ("RolledBack", 1, 2)
    assert status.analysis.estimated_performance.estimate == 0.6 and status.analysis.estimated_performance.threshold == 0.9
    assert "estimated accuracy 0.6 < 0.9 (test accuracy 0.95 - maxDrop 0.05) (CBPE on 150 predictions" in status.message
    assert [e.reason for e in result.events] == ["RolledBack"]
    assert [(t.version, t.weight) for t in table_of(result).split] == [(1, 100)]


def test_late_labels_inside_scale_down_delay_roll_a_promoted_version_back():
    obj = mdep(status=ROLLING, strategy={**STRATEGY, "scaleDownDelay": "10m"})
    promoted = plan(obj, both(stats=stats(v1=counters(300), v2=scored(2000, 0.97))), at=61)
    assert (promoted.status.stable_version, promoted.status.previous_version) == (2, 1)
    assert table_of(promoted).scores == routing_api.Scores(versions=[2])  # the promoted version is still watched
    # Its probabilities stay confident, but the labels that arrive say 70 of 120 were right.
    late = both(stats=stats(v1=counters(300), v2=scored(2200, 0.97, labeled=120, correct=70)))
    back = plan(stored(obj, promoted), late, at=120)
    assert (back.status.phase, back.status.stable_version, back.status.rolled_back_version) == ("RolledBack", 1, 2)
    (event,) = back.events
    assert "rolled back within its scaleDownDelay window (analysis failed: labeled accuracy 0.583 < 0.9" in event.message
    assert "(70 of 120 labeled predictions" in event.message
