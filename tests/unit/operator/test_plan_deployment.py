"""The ModelDeployment plan: pure (same input, same Plan) and complete (every child on every pass,
retired versions, status, Events and the consumed action, all as data). No cluster, no clock."""

import copy
import json

import pytest
from mdep_cases import IMAGE, ROUTER_URL, STAMP, counters, isvc, mdep, observed, plan, ready, registry, stats, stored

from mlkube.api import routing as routing_api
from mlkube.control.manifests import serving
from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.plans import plan as plans
from mlkube.serving import routing

ROLLING = {
    "phase": "Progressing",
    "stableVersion": 1,
    "candidateVersion": 2,
    "currentStep": 0,
    "stepStartedAt": STAMP,
    "candidateReadyAt": STAMP,
}


def rolling(**changes):
    """Version 2 (the new champion) rolling out over version 1, both Ready."""
    return observed(**{"registry": registry(champion=2), "isvcs": {1: isvc(1), 2: isvc(2)}, **changes})


def children(result) -> list[tuple[str, str]]:
    return [(c["kind"], c["metadata"]["name"]) for c in result.apply]


def table_of(result) -> routing_api.RoutingTable:
    (config,) = [c for c in result.apply if c["kind"] == "ConfigMap"]
    return routing.RoutingTable.parse(json.loads(config["data"][serving.ROUTES_KEY]))


def test_same_input_same_plan_and_the_input_is_left_as_it_was():
    obj = mdep(status=ROLLING, annotations={"mlkube.io/action": "promote"})
    seen = rolling(stats=stats(v1=counters(100), v2=counters(30)))
    before = copy.deepcopy((obj, seen))
    assert plan(obj, seen, at=5) == plan(obj, seen, at=5)
    assert (obj, seen) == before


def test_a_steady_pass_applies_every_child_and_changes_nothing_else():
    obj = mdep()
    for at in (0, 1):  # deploy, then settle
        obj = stored(obj, plan(obj, observed(), at=at))
    again = plan(obj, observed(), at=30)
    assert children(again) == [
        ("ServiceAccount", "mlkube-model"),
        ("InferenceService", "churn-prod-v1"),
        ("ServiceAccount", "mlkube-router"),
        ("Role", "mlkube-router"),
        ("RoleBinding", "mlkube-router"),
        ("ConfigMap", "churn-prod-router"),
        ("Deployment", "churn-prod-router"),
        ("Service", "churn-prod-router"),
    ]
    assert again.status.wire() == obj["status"]  # nothing changed: nothing to write
    assert (again.events, again.delete, again.clear_annotations, again.retry_after) == ((), (), (), None)
    status = obj["status"]
    assert (status["phase"], status["stableVersion"], status["trafficSummary"], status["url"]) == (
        "Healthy",
        1,
        "v1=100",
        ROUTER_URL,
    )
    assert status["message"] == "Version 1 serves all traffic"
    assert ready(status) == ("True", "Serving", f"Version 1 serves at {ROUTER_URL}")
    router = next(c for c in again.apply if c["kind"] == "Deployment")
    assert router["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_the_first_pass_deploys_the_champion_and_says_so_once():
    result = plan(mdep(), observed(isvcs={}))
    assert result.events == (plans.info("Deploying", "Serving version 1"),)
    status = result.status.wire()
    assert (status["phase"], status["message"], status["observedGeneration"]) == ("Progressing", "Serving version 1", 3)
    assert ready(status) == ("False", "VersionNotReady", "Waiting for version 1 and the router to become ready")
    assert ("InferenceService", "churn-prod-v1") in children(result)
    assert ("ConfigMap", "churn-prod-router") not in children(result)  # no version can answer yet
    later = plan(stored(mdep(), result), observed(isvcs={1: isvc(1, ready=False, message="pulling the model")}), at=1)
    assert later.events == () and later.status.message == "Waiting for version 1 to become ready: pulling the model"


def test_the_routing_table_is_the_contract_the_router_parses():
    obj = mdep(status=ROLLING, strategy={"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "1m"}]}})
    result = plan(obj, rolling(), at=1)
    table = table_of(result)
    assert (table.deployment, table.namespace, table.project, table.generation) == ("churn-prod", "ml", "churn", 3)
    assert table.backends == {
        1: routing.Backend(url="http://127.1.0.11", model="churn-prod-v1"),
        2: routing.Backend(url="http://127.1.0.12", model="churn-prod-v2"),
    }
    assert [(t.version, t.weight, t.role) for t in table.split] == [(1, 75, "stable"), (2, 25, "canary")]
    assert table.compare == routing.Mirror(version=2, percent=100) and table.shadow is None
    assert table.capture == routing.Capture(enabled=True, sample_rate=1.0, uri="s3://models/churn", endpoint="http://minio:9000")


def test_a_table_the_router_would_refuse_is_not_written():
    # The stable's InferenceService lost its address while the canary answers: a table comparing
    # the canary with no stable is invalid, so the router keeps the one it has.
    no_address = isvc(1)
    del no_address["status"]["address"]
    result = plan(mdep(status=ROLLING), rolling(isvcs={1: no_address, 2: isvc(2)}), at=1)
    assert ("ConfigMap", "churn-prod-router") not in children(result)
    assert ("Deployment", "churn-prod-router") in children(result)


def test_an_invalid_spec_is_degraded_and_nothing_is_applied():
    obj = mdep(model={"version": 0})
    result = plan(obj, plan_deployment.Observed())
    status = result.status.wire()
    assert status["phase"] == "Degraded" and ready(status)[:2] == ("False", "InvalidSpec")
    assert "spec.model.version" in status["message"]
    assert (result.apply, result.events, result.retry_after) == ((), (), None)


@pytest.mark.parametrize(
    ("seen", "reason", "message"),
    [
        (
            plan_deployment.Observed(unresolved=plans.Unresolved("ProjectNotFound", "spec.projectRef: gone")),
            "ProjectNotFound",
            "spec.projectRef: gone",
        ),
        (
            observed(registry=registry(1, champion=None)),
            "NoChampion",
            "spec.model.track: project 'churn' has no champion yet; train a model first",
        ),
    ],
)
def test_a_missing_reference_is_reported_and_retried(seen, reason, message):
    result = plan(mdep(), seen)
    status = result.status.wire()
    assert (status["phase"], status["message"], ready(status)) == ("Pending", message, ("False", reason, message))
    assert (result.apply, result.retry_after, result.retry_reason) == ((), plan_deployment.RETRY_SECONDS, message)


def test_a_version_the_registry_does_not_have_is_named():
    result = plan(mdep(model={"version": 7}), observed())
    assert result.status.message == ("spec.model.version: project 'churn' has no version 7; registered versions: [1, 2]")


def test_a_version_out_of_the_table_is_deleted_one_pass_later():
    obj = mdep(status={"phase": "Healthy", "stableVersion": 1, "rolledBackVersion": 2})
    seen = rolling()
    first = plan(obj, seen)
    assert first.status.retiring_versions == [2] and first.delete == ()
    assert plan_deployment.is_rolling_out(first.status)
    second = plan(stored(obj, first), seen, at=1)
    assert second.delete == (plans.ObjectRef("serving.kserve.io/v1beta1", "InferenceService", "churn-prod-v2", "ml"),)
    assert second.status.retiring_versions == [] and ("InferenceService", "churn-prod-v2") not in children(second)
    assert not plan_deployment.is_rolling_out(plan(stored(obj, second), observed(), at=2).status)


def test_a_new_champion_starts_a_rollout_with_a_window_from_the_routers_counters():
    obj = mdep(status={"phase": "Healthy", "stableVersion": 1})
    seen = observed(registry=registry(1, 2, champion=2), stats=stats(v1=counters(500), v2=counters(0)))
    result = plan(obj, seen)
    assert result.events == (plans.info("RolloutStarted", "Rolling out version 2 over 1 (Canary)"),)
    status = result.status
    assert (status.candidate_version, status.current_step, status.step_started_at) == (2, 0, STAMP)
    assert status.analysis_baseline.requests == 0 and status.analysis_baseline.start_time == 1.0
    assert ("InferenceService", "churn-prod-v2") in children(result)
    assert status.traffic_summary == "v1=100,v2=0"  # v2 cannot answer yet


def test_the_analysis_judges_the_window_and_a_failing_candidate_is_rolled_back():
    obj = mdep(status={**ROLLING, "analysisBaseline": {"startTime": 1.0, "requests": 10, "errors": 0, "buckets": [10, 10]}})
    seen = rolling(stats=stats(v1=counters(100), v2=counters(40, errors=20)))
    result = plan(obj, seen, at=5)
    assert result.events[0].reason == "RolledBack" and result.events[0].type == "Warning"
    assert "errorRate 0.667 > maxErrorRate 0.01 (20 of 30 requests; 95% interval 0.488-0.808)" in result.events[0].message
    status = result.status
    assert (status.phase, status.rolled_back_version, status.candidate_version) == ("RolledBack", 2, None)
    assert status.analysis.verdict == "Failing" and status.last_analysis_time == "2026-01-01T00:00:05Z"
    assert status.message == result.events[-1].message and status.analysis_baseline is None


def test_the_message_says_how_the_rollout_stands():
    obj = mdep(status=ROLLING)
    seen = rolling(stats=stats(v1=counters(2000), v2=counters(500)))
    assert plan(obj, seen, at=5).status.message == "Rolling out version 2: v1=75,v2=25; analysis Passing on 500 requests"
    few = rolling(stats=stats(v1=counters(100), v2=counters(12)))
    assert plan(obj, few, at=5).status.message == (
        "Rolling out version 2: v1=75,v2=25; analysis Inconclusive on 12 requests: 12 of 20 requests"
    )
    loading = rolling(isvcs={1: isvc(1), 2: isvc(2, ready=False)})
    assert plan(obj, loading, at=5).status.message == "Waiting for version 2 to become ready"
    rolled_back = {"phase": "RolledBack", "stableVersion": 1, "rolledBackVersion": 2, "message": "Version 2 rolled back (why)"}
    assert plan(mdep(status=rolled_back), rolling(), at=5).status.message == "Version 2 rolled back (why)"


def test_a_manual_action_is_acted_on_and_cleared():
    obj = mdep(status=ROLLING, annotations={"mlkube.io/action": "promote"})
    result = plan(obj, rolling(), at=5)
    assert [e.reason for e in result.events] == ["Promoted"] and result.status.stable_version == 2
    assert result.clear_annotations == (plan_deployment.ACTION_ANNOTATION,)
    unknown = plan(mdep(status=ROLLING, annotations={"mlkube.io/action": "later"}), rolling())
    assert unknown.events == () and unknown.clear_annotations == (plan_deployment.ACTION_ANNOTATION,)


def test_blue_green_gets_a_preview_address():
    obj = mdep(status=ROLLING, strategy={"type": "BlueGreen", "blueGreen": {"previewDuration": "5m"}})
    result = plan(obj, rolling(), at=5)
    assert result.status.preview_url == f"{ROUTER_URL}/preview"
    assert table_of(result).preview_version == 2


def test_ready_needs_the_stable_version_and_the_router():
    obj = mdep(status={"phase": "Healthy", "stableVersion": 1})
    assert ready(plan(obj, observed(router_deployment=None)).status.wire())[:2] == ("False", "RouterNotReady")
    assert ready(plan(obj, observed(isvcs={1: isvc(1, ready=False)})).status.wire())[:2] == ("False", "VersionNotReady")
    assert plan(obj, observed(router_service=None)).status.url is None


def test_deployments_tracking_the_champion_are_found():
    serving_1 = mdep(status={"stableVersion": 1})
    assert plan_deployment.awaits_champion(serving_1, project="churn", champion=2)
    assert not plan_deployment.awaits_champion(serving_1, project="churn", champion=1)
    assert not plan_deployment.awaits_champion(serving_1, project="other", champion=2)
    assert not plan_deployment.awaits_champion(mdep(model={"version": 1}), project="churn", champion=2)
    assert not plan_deployment.awaits_champion(serving_1, project="churn", champion=None)


def test_the_time_is_an_argument():
    obj = mdep(status=ROLLING)
    seen = rolling(stats=stats(v1=counters(100), v2=counters(30)))
    assert plan(obj, seen, at=5).status.last_analysis_time == "2026-01-01T00:00:05Z"
    assert plan(obj, seen, at=6).status.last_analysis_time == "2026-01-01T00:00:06Z"


def test_an_ab_test_reports_while_it_runs_and_its_end_is_announced_with_the_report():
    strategy = {
        "type": "ABTest",
        "abTest": {"duration": "10m", "stickyHeader": "X-User", "earlyStop": False},
        "analysis": {"minRequests": 20},
    }
    start = plan(
        mdep(status={"phase": "Healthy", "stableVersion": 1}, strategy=strategy),
        rolling(stats=stats(v1=counters(500, labeled=100, correct=90), v2=counters(0))),
    )
    assert start.status.ab_test_baseline.requests == 500 and start.status.ab_test is None
    obj = mdep(status={**start.status.wire(), "candidateReadyAt": STAMP, "stepStartedAt": STAMP}, strategy=strategy)
    now = stats(v1=counters(560, labeled=140, correct=129), v2=counters(60, labeled=40, correct=18))
    running = plan(obj, rolling(stats=now), at=300)
    assert running.events == () and running.status.ab_test.winner == 1 and running.status.ab_test.finished_at is None
    assert table_of(running).sticky_header == "x-user"
    assert [(t.version, t.weight, t.role) for t in table_of(running).split] == [(1, 50, "stable"), (2, 50, "canary")]
    ended = plan(obj, rolling(stats=now), at=601)
    assert [e.reason for e in ended.events] == ["ABTestReport", "RolledBack"]
    assert ended.events[0].message == ended.status.ab_test.conclusion
    assert ended.status.ab_test.finished_at == "2026-01-01T00:10:01Z" and ended.status.ab_test_baseline is None


def ab_test_under_way(strategy: dict) -> dict:
    """Version 2 in an A/B test over version 1 since T0; version 1 had 100 labels before it."""
    start = plan(
        mdep(status={"phase": "Healthy", "stableVersion": 1}, strategy=strategy),
        rolling(stats=stats(v1=counters(500, labeled=100, correct=90), v2=counters(0))),
    )
    return mdep(status={**start.status.wire(), "candidateReadyAt": STAMP, "stepStartedAt": STAMP}, strategy=strategy)


def test_a_clearly_better_candidate_is_promoted_before_the_ab_tests_duration_unless_early_stop_is_off():
    strategy = {"type": "ABTest", "abTest": {"duration": "1h"}, "analysis": {"minRequests": 50}}
    obj = ab_test_under_way(strategy)
    few = plan(
        obj, rolling(stats=stats(v1=counters(530, labeled=130, correct=112), v2=counters(30, labeled=30, correct=29))), at=60
    )
    assert few.events == () and few.status.ab_test.sequential.always_valid_p_value is None  # 30 of 50 labels
    better = stats(v1=counters(760, labeled=300, correct=240), v2=counters(200, labeled=200, correct=190))  # 0.75 vs 0.95
    stopped = plan(stored(obj, few), rolling(stats=better), at=600)
    report = stopped.status.ab_test
    assert (stopped.status.phase, stopped.status.stable_version, stopped.status.candidate_version) == ("Healthy", 2, None)
    assert [(e.reason, e.message) for e in stopped.events] == [
        ("ABTestReport", report.sequential.conclusion),
        ("Promoted", f"Version 2 is stable (A/B test stopped early after 10m of 1h: {report.sequential.conclusion})"),
    ]
    assert report.sequential.winner == 2 and report.sequential.stopped_early and report.finished_at == "2026-01-01T00:10:00Z"
    assert report.sequential.conclusion.startswith("version 2 beats 1 on accuracy: 0.95 vs 0.75 (always-valid p=")

    off = ab_test_under_way({**strategy, "abTest": {"duration": "1h", "earlyStop": False}})
    kept = plan(off, rolling(stats=better), at=600)
    assert kept.events == () and kept.status.candidate_version == 2 and kept.status.ab_test.finished_at is None
    assert kept.status.ab_test.sequential.winner == 2 and not kept.status.ab_test.sequential.stopped_early
    # the next pass continues the sequential test from status: its running minimum and winner stay
    closer = stats(v1=counters(1060, labeled=600, correct=480), v2=counters(500, labeled=500, correct=410))
    later = plan(stored(off, kept), rolling(stats=closer), at=1200)
    assert later.status.ab_test.sequential == kept.status.ab_test.sequential.model_copy(
        update={"conclusion": later.status.ab_test.sequential.conclusion}
    )
    ended = plan(stored(off, later), rolling(stats=closer), at=3601)
    assert [e.reason for e in ended.events] == ["ABTestReport", "Promoted"] and ended.status.stable_version == 2
    assert ended.events[0].message == ended.status.ab_test.conclusion  # the fixed-horizon test decides at the end
    assert not ended.status.ab_test.sequential.stopped_early


def test_each_inference_service_pins_its_versions_registered_digest_for_its_loaders():
    result = plan(mdep(), observed(isvcs={}))
    [isvc_] = [c for c in result.apply if c["kind"] == "InferenceService"]
    assert isvc_["metadata"]["annotations"]["mlkube.io/model-digest"] == "sha256:1"  # the storage initializer's
    model = isvc_["spec"]["predictor"]["model"]
    assert {"name": "MLKUBE_MODEL_DIGEST", "value": "sha256:1"} in model["env"]  # the model server's


def test_a_feedback_token_secret_is_mounted_into_the_router_and_named_on_its_command_line():
    def router(obj):
        applied = plan(obj, observed()).apply
        return next(o for o in applied if o["kind"] == "Deployment")["spec"]["template"]["spec"]

    open_router = router(mdep())
    assert "--feedback-token-file" not in open_router["containers"][0]["command"]
    guarded = router(mdep(feedback={"tokenSecretRef": {"name": "churn-feedback", "key": "bearer"}}))
    container = guarded["containers"][0]
    assert container["command"][-2:] == ["--feedback-token-file", "/var/run/secrets/mlkube/feedback/bearer"]
    assert {"name": "feedback-token", "mountPath": "/var/run/secrets/mlkube/feedback", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {
        "name": "feedback-token",
        "secret": {"secretName": "churn-feedback", "items": [{"key": "bearer", "path": "bearer"}]},
    } in guarded["volumes"]
    assert not any("bearer" in str(env) for env in container.get("env", []))  # never copied into the spec


def test_the_status_shows_the_intervals_the_verdict_was_decided_on():
    obj = mdep(status=ROLLING)
    analysis = plan(obj, rolling(stats=stats(v1=counters(4000), v2=counters(1000, errors=2))), at=5).status.analysis
    assert (analysis.verdict, analysis.error_rate_interval, analysis.latency_p99_interval_ms) == (
        "Passing",
        [0.0005, 0.0073],
        [0, 5],
    )
    assert analysis.agreement_interval is None  # a Canary without minAgreement has no agreement gate
    wire = plan(obj, rolling(stats=stats(v1=counters(100), v2=counters(30))), at=5).status.wire()["analysis"]
    assert wire["errorRateInterval"] == [0.0, 0.1135] and wire["latencyP99IntervalMs"] == [0, None]
    assert wire["inconclusiveChecks"] == [
        "errorRate 0 undecided against maxErrorRate 0.01 (0 of 30 requests; 95% interval 0-0.114)"
    ]


def test_an_undecided_step_is_announced_once_across_passes_then_pauses_until_a_person_decides():
    obj = mdep(status=ROLLING)  # step 0: 25 % for 1m; minRequests 20; analysis every 30s, inconclusiveLimit 3
    quiet = rolling(stats=stats(v1=counters(40), v2=counters(5)))
    first = plan(obj, quiet, at=61)
    assert [e.reason for e in first.events] == ["AnalysisInconclusive"] and first.events[0].type == "Warning"
    assert "(5 of 20 requests)" in first.events[0].message
    assert first.status.inconclusive_since == "2026-01-01T00:01:01Z" and first.status.phase == "Progressing"
    assert plan_deployment.is_rolling_out(first.status)
    obj = stored(obj, first)
    later = plan(obj, quiet, at=100)
    assert later.events == () and later.status.inconclusive_since == "2026-01-01T00:01:01Z"
    paused = plan(stored(obj, later), quiet, at=151)
    assert [e.reason for e in paused.events] == ["AwaitingDecision"]
    assert paused.status.phase == "Paused" and paused.status.message == paused.events[0].message
    assert "(5 of 20 requests); annotate mlkube.io/action=promote or abort" in paused.status.message
    assert paused.status.traffic_summary == "v1=75,v2=25"
    obj = stored(obj, paused)
    assert plan(obj, quiet, at=300).events == ()  # paused: nothing more is said
    promoted = plan({**obj, "metadata": {**obj["metadata"], "annotations": {"mlkube.io/action": "promote"}}}, quiet, at=301)
    assert [e.reason for e in promoted.events] == ["Promoted"] and promoted.status.inconclusive_since is None


def test_a_blue_green_preview_nobody_tried_is_not_promoted():
    strategy = {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m"}, "analysis": {"minRequests": 20}}
    obj = mdep(status=ROLLING, strategy=strategy)
    untried = plan(obj, rolling(stats=stats(v1=counters(500), v2=counters(0))), at=61)
    assert untried.status.stable_version == 1 and [e.reason for e in untried.events] == ["AnalysisInconclusive"]
    assert "the preview answered 0 of 20 requests; send requests to status.previewUrl" in untried.events[0].message
    tried = plan(obj, rolling(stats=stats(v1=counters(500), v2=counters(25))), at=61)
    assert tried.status.stable_version == 2 and [e.reason for e in tried.events] == ["Promoted"]
    allowed = mdep(status=ROLLING, strategy={**strategy, "blueGreen": {"previewDuration": "1m", "promoteWithoutTraffic": True}})
    assert plan(allowed, rolling(stats=stats(v1=counters(500), v2=counters(0))), at=61).status.stable_version == 2
