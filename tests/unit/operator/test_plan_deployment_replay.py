"""The ModelDeployment plan with ``strategy.replay``: the candidate's InferenceService is applied
but the router's table never routes to it while it replays; its replay Job is created once it is
Ready (in the deployment's namespace, calling its own address); the Job's answer becomes
``status.replay`` and decides the rollout; consumed Jobs are deleted a pass later."""

import json

from mdep_cases import STAMP, isvc, mdep, observed, plan, registry, stored

from mlkube.api import replay as replay_api
from mlkube.api import routing as routing_api
from mlkube.control.manifests import serving
from mlkube.control.plans import plan as plans
from mlkube.control.plans import replay as replay_plans
from mlkube.control.policy import replay as replay_policy
from mlkube.serving import routing

STRATEGY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 25, "pause": "1m"}]},
    "analysis": {"minRequests": 20},
    "replay": {"requests": 300, "maxErrorRate": 0.0},
}
HEALTHY = {"phase": "Healthy", "stableVersion": 1}


def table_of(result) -> routing_api.RoutingTable:
    (config,) = [c for c in result.apply if c["kind"] == "ConfigMap"]
    return routing.RoutingTable.parse(json.loads(config["data"][serving.ROUTES_KEY]))


def routes(result) -> tuple:
    table = table_of(result)
    return [(t.version, t.weight) for t in table.split], table.shadow, table.compare, table.preview


def both(*, candidate_ready=True, run=None, jobs=()):
    return observed(
        registry=registry(champion=2),
        isvcs={1: isvc(1), 2: isvc(2, ready=candidate_ready)},
        replay=replay_plans.Observed(run=run, jobs=jobs),
    )


def rolling_out(strategy=STRATEGY):
    """The pass that starts the rollout, then the pass that finds the candidate Ready."""
    obj = mdep(status=HEALTHY, strategy=strategy)
    first = plan(obj, both(candidate_ready=False))
    obj = stored(obj, first)
    second = plan(obj, both(), at=10)
    return first, stored(obj, second), second


def answered(counts, *, phase="Complete"):
    if phase == "Complete":
        return replay_policy.Run("Succeeded", result=replay_api.ReplayResult(**counts))
    return replay_policy.Run("Failed", message=counts)


def test_the_rollout_begins_with_the_replay_and_the_router_never_routes_to_the_candidate():
    first, obj, second = rolling_out()
    status = first.status
    assert (status.phase, status.candidate_version, status.replaying_since) == ("Progressing", 2, STAMP)
    assert status.replay == replay_api.ReplayStatus(version=2, message="waiting for version 2 to become ready before its replay")
    assert ("InferenceService", "churn-prod-v2") in [(c["kind"], c["metadata"]["name"]) for c in first.apply]
    assert first.create == () and routes(first) == ([(1, 100)], None, None, None)
    assert status.traffic_summary == "v1=100"

    # Ready: the replay Job is created, calling the candidate at its own address, not the router.
    (job,) = second.create
    assert job["kind"] == "Job" and job["metadata"]["name"] == replay_plans.current_job(obj)
    request = replay_api.ReplayRequest.model_validate_json(job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"])
    assert (request.candidate.url, request.candidate.model) == ("http://127.1.0.12", "churn-prod-v2")
    assert (request.capture.version, request.capture.size, request.capture.deployment) == (1, 300, "churn-prod")
    assert ("ServiceAccount", "mlkube-trainer") in [(c["kind"], c["metadata"]["name"]) for c in second.apply]
    assert second.status.replay.started_at == "2026-01-01T00:00:10Z"
    assert second.status.message.startswith("Version 2 takes no traffic until its replay is judged: replaying up to 300")
    assert routes(second) == ([(1, 100)], None, None, None)  # the candidate has an address, still no route
    assert second.events == ()

    # Running: nothing new is created, nothing deleted.
    name = job["metadata"]["name"]
    running = plan(obj, both(run=replay_policy.Run("Running"), jobs=(name,)), at=20)
    assert running.create == () and running.delete == () and running.status.replay == second.status.replay


def test_a_failing_replay_rolls_back_with_the_figures_and_the_candidate_never_routed():
    _, obj, second = rolling_out()
    name = second.create[0]["metadata"]["name"]
    counts = {"requests": 300, "errors": 100, "compared": 200, "agreed": 200, "firstError": "HTTP 500: bad input"}
    result = plan(obj, both(run=answered(counts), jobs=(name,)), at=30)
    status = result.status
    assert (status.phase, status.stable_version, status.candidate_version, status.rolled_back_version) == (
        "RolledBack",
        1,
        None,
        2,
    )
    assert status.replay.verdict == "Failing" and (status.replay.requests, status.replay.errors) == (300, 100)
    assert (status.replay.started_at, status.replay.finished_at) == ("2026-01-01T00:00:10Z", "2026-01-01T00:00:30Z")
    assert status.replaying_since is None and routes(result) == ([(1, 100)], None, None, None)
    assert [e.reason for e in result.events] == ["ReplayFailed", "RolledBack"]
    assert "errorRate 0.333 > maxErrorRate 0 (100 of 300 replayed requests" in result.events[1].message
    assert "first: HTTP 500: bad input" in status.message
    assert result.delete == ()  # the answered Job stays until the verdict is written...
    later = plan(stored(obj, result), both(jobs=(name,)), at=31)
    assert plans.ObjectRef("batch/v1", "Job", name, "ml") in later.delete  # ...and goes on the next pass
    assert later.status.replay == status.replay and later.events == ()


def test_a_passing_replay_starts_the_first_canary_step():
    _, obj, second = rolling_out()
    name = second.create[0]["metadata"]["name"]
    result = plan(obj, both(run=answered({"requests": 300, "compared": 300, "agreed": 290}), jobs=(name,)), at=30)
    assert (result.status.phase, result.status.traffic_summary, result.status.replaying_since) == (
        "Progressing",
        "v1=75,v2=25",
        None,
    )
    assert routes(result)[0] == [(1, 75), (2, 25)]
    assert result.status.replay.verdict == "Passing" and result.status.replay.agreement == 0.9667
    assert [e.reason for e in result.events] == ["ReplayPassed"]
    assert result.status.candidate_ready_at == "2026-01-01T00:00:30Z"  # its first pause counts from here


def test_a_replay_that_could_not_run_is_inconclusive_and_the_live_analysis_takes_over():
    _, obj, second = rolling_out()
    name = second.create[0]["metadata"]["name"]
    result = plan(obj, both(run=answered("StorageError: access denied", phase="Failed"), jobs=(name,)), at=30)
    assert result.status.replay.verdict == "Inconclusive" and result.status.traffic_summary == "v1=75,v2=25"
    (event,) = result.events
    assert (event.type, event.reason) == ("Warning", "ReplayInconclusive")
    assert "the replay could not run: StorageError: access denied" in event.message
    gone = plan(obj, both(), at=30)  # the Job was deleted behind the operator's back
    assert gone.status.replay.message == "the replay could not run: its Job is gone"


def test_the_plan_is_a_pure_function_of_its_input():
    _, obj, second = rolling_out()
    name = second.create[0]["metadata"]["name"]
    seen = both(run=answered({"requests": 300, "errors": 3}), jobs=(name, "churn-prod-replay-v9-old"))
    assert plan(obj, seen, at=30) == plan(obj, seen, at=30)
    assert plans.ObjectRef("batch/v1", "Job", "churn-prod-replay-v9-old", "ml") in plan(obj, seen, at=30).delete


def test_without_replay_nothing_of_it_appears():
    strategy = {k: v for k, v in STRATEGY.items() if k != "replay"}
    first, _, second = rolling_out(strategy)
    assert first.status.replay is None and first.status.replaying_since is None and second.create == ()
    assert second.status.traffic_summary == "v1=75,v2=25"


def test_a_rollout_that_leaves_the_step_before_a_verdict_says_so_and_deletes_the_job():
    _, obj, second = rolling_out()
    name = second.create[0]["metadata"]["name"]
    aborted = {**obj, "metadata": {**obj["metadata"], "annotations": {"mlkube.io/action": "abort"}}}
    result = plan(aborted, both(run=replay_policy.Run("Running"), jobs=(name,)), at=20)
    assert result.status.phase == "RolledBack" and result.status.replaying_since is None
    replay = result.status.replay
    assert (replay.verdict, replay.finished_at) == (None, "2026-01-01T00:00:20Z")
    assert replay.message == "not judged: the rollout of version 2 left its replay step first"
    later = plan(stored(aborted, result), both(jobs=(name,)), at=21)
    assert plans.ObjectRef("batch/v1", "Job", name, "ml") in later.delete


def test_removing_replay_from_the_spec_during_the_step_lets_the_rollout_go_on():
    first, _, _ = rolling_out()
    obj = mdep(status=first.status.wire(), strategy={k: v for k, v in STRATEGY.items() if k != "replay"})
    result = plan(obj, both(), at=10)
    assert result.status.traffic_summary == "v1=75,v2=25" and result.create == ()
    assert result.status.replay.verdict == "Inconclusive"
    assert "spec.strategy.replay was removed" in result.events[0].message
