"""Drift-triggered retraining: one run per episode, within cooldown and daily budget."""

import datetime

from mlkube.api import project as project_api
from mlkube.control.manifests import retraining as retraining_manifests
from mlkube.control.policy import retraining

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)
MLP = {"apiVersion": "mlkube.io/v1alpha1", "kind": "MLProject", "metadata": {"name": "churn", "namespace": "ml", "uid": "u"}}
SPEC = {
    "goal": {"description": "keep customers", "type": "Growth"},
    "problem": {"task": "classification", "target": "churned", "primaryMetric": "f1"},
    "data": {"uri": "file:///d.csv"},
    "storage": {"uri": "file:///s"},
    "training": {"template": {"tuning": {"maxTrials": 3}}},
}


def decide(runs=(), *, status=None, episode="e", **policy):
    retraining_policy = project_api.Retraining.model_validate({"onDrift": True, "cooldown": "1h", "maxPerDay": 2, **policy})
    recorded = project_api.MLProjectStatus.model_validate(status or {})
    return retraining.decide(retraining_policy, project="churn", recorded=recorded, runs=list(runs), episode=episode, now=NOW)


def run(name, minutes_ago, trigger="drift"):
    created = (NOW - datetime.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"projectRef": "churn", "trigger": trigger}}


def test_first_drift_starts_a_run_named_after_the_episode():
    decision = decide(episode="2026-11-24T11:59:00Z")
    assert decision == retraining.Decision(True, "churn-drift-20261124115900")
    spec = project_api.MLProjectSpec.model_validate(SPEC)
    tj = retraining_manifests.training_job(MLP, spec, name=decision.name, trigger="drift", source="m")
    assert tj["spec"] == {"tuning": {"maxTrials": 3}, "projectRef": "churn", "trigger": "drift"}
    assert tj["metadata"]["name"] == "churn-drift-20261124115900" and tj["metadata"]["namespace"] == "ml"
    assert tj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "mlkube",
        "mlkube.io/project": "churn",
        "mlkube.io/trigger": "drift",
        "mlkube.io/source": "m",
    }
    assert tj["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "MLProject",
            "name": "churn",
            "uid": "u",
            "controller": False,
            "blockOwnerDeletion": True,
        }
    ]


def test_never_two_runs_for_one_episode():
    name = retraining.run_name("churn", "2026-11-24T11:59:00Z")
    decision = decide([run(name, 0)], episode="2026-11-24T11:59:00Z")
    assert not decision.allowed and decision.reason is None


def test_cooldown_and_budget():
    cooling = decide([run("a", 30)])
    assert not cooling.allowed and "cooling down until 2026-11-24T12:30:00Z" in cooling.reason
    spent = decide([run("a", 300), run("b", 120, "schedule")], cooldown="1m")
    assert not spent.allowed and spent.reason == "retraining budget spent: 2 automatic runs in 24 h (spec.retraining.maxPerDay 2)"
    manual_runs_do_not_count = decide([run("a", 10, "manual")])
    assert manual_runs_do_not_count.allowed
    other_projects_do_not_count = decide([{**run("a", 10), "spec": {"projectRef": "other", "trigger": "drift"}}])
    assert other_projects_do_not_count.allowed


def ago(minutes):
    return (NOW - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_runs_deleted_by_the_history_limit_still_count_from_the_project_status():
    cooling = decide(status={"retrainTimes": [ago(30)]})
    assert (
        not cooling.allowed
        and cooling.reason == "retraining cooling down until 2026-11-24T12:30:00Z (spec.retraining.cooldown 1h)"
    )
    # The same run listed and recorded counts once; a pruned one counts as well: 2 of maxPerDay 2.
    assert not decide([run("b", 120)], status={"retrainTimes": [ago(300), ago(120)]}, cooldown="1m").allowed
    assert decide([run("b", 120)], status={"retrainTimes": [ago(120)]}, cooldown="1m").allowed
    # A cooldown longer than the 24 h of retrainTimes is kept by lastRetrainTime.
    assert "cooling down" in decide(status={"lastRetrainTime": ago(30 * 60)}, cooldown="48h").reason


def test_automatic_starts_are_the_last_day_of_runs_and_records_without_repeats():
    runs = [run("a", 10), run("b", 20, "schedule"), run("c", 5, "manual"), run("d", 25 * 60)]
    starts = retraining.automatic_starts(runs, recorded=[ago(20), ago(600), ago(2000)], now=NOW)
    assert starts == [ago(600), ago(20), ago(10)]


def test_off_unless_the_project_allows_it():
    decision = decide(onDrift=False)
    assert not decision.allowed
    assert decision.reason == "project churn has spec.retraining.onDrift false; drift does not start retraining"
