"""Drift-triggered retraining: one run per episode, within cooldown and daily budget."""

import datetime

from mlkube.clients import alerts
from mlkube.control.policy import retraining

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)


def project(**policy):
    return {"apiVersion": "mlkube.io/v1alpha1", "kind": "MLProject", "metadata": {"name": "churn", "namespace": "ml", "uid": "u"},
            "spec": {"retraining": {"onDrift": True, "cooldown": "1h", "maxPerDay": 2, **policy},
                     "training": {"template": {"tuning": {"maxTrials": 3}}}}}


def run(name, minutes_ago, trigger="drift"):
    created = (NOW - datetime.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"projectRef": "churn", "trigger": trigger}}


def test_first_drift_starts_a_run_named_after_the_episode():
    decision = retraining.decide(project(), [], episode="2026-11-24T11:59:00Z", now=NOW)
    assert decision == retraining.Decision(True, "churn-drift-20261124115900")
    tj = retraining.trainingjob(project(), decision.name, trigger="drift", source="m")
    assert tj["spec"] == {"tuning": {"maxTrials": 3}, "projectRef": "churn", "trigger": "drift"}
    assert tj["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_never_two_runs_for_one_episode():
    name = retraining.run_name("churn", "2026-11-24T11:59:00Z")
    decision = retraining.decide(project(), [run(name, 0)], episode="2026-11-24T11:59:00Z", now=NOW)
    assert not decision.allowed and decision.reason is None


def test_cooldown_and_budget():
    cooling = retraining.decide(project(), [run("a", 30)], episode="e", now=NOW)
    assert not cooling.allowed and "cooling down until 2026-11-24T12:30:00Z" in cooling.reason
    spent = retraining.decide(project(cooldown="1m"), [run("a", 300), run("b", 120, "schedule")], episode="e", now=NOW)
    assert not spent.allowed and "budget" in spent.reason
    manual_runs_do_not_count = retraining.decide(project(), [run("a", 10, "manual")], episode="e", now=NOW)
    assert manual_runs_do_not_count.allowed


def ago(minutes):
    return (NOW - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_runs_deleted_by_the_history_limit_still_count_from_the_project_status():
    recorded = {**project(), "status": {"retrainTimes": [ago(30)]}}
    cooling = retraining.decide(recorded, [], episode="e", now=NOW)
    assert not cooling.allowed and "cooling down until 2026-11-24T12:30:00Z" in cooling.reason
    # The same run listed and recorded counts once; a pruned one counts as well: 2 of maxPerDay 2.
    both = {**project(cooldown="1m"), "status": {"retrainTimes": [ago(300), ago(120)]}}
    assert not retraining.decide(both, [run("b", 120)], episode="e", now=NOW).allowed
    once = {**project(cooldown="1m"), "status": {"retrainTimes": [ago(120)]}}
    assert retraining.decide(once, [run("b", 120)], episode="e", now=NOW).allowed
    # A cooldown longer than the 24 h of retrainTimes is kept by lastRetrainTime.
    long_ago = {**project(cooldown="48h"), "status": {"lastRetrainTime": ago(30 * 60)}}
    assert "cooling down" in retraining.decide(long_ago, [], episode="e", now=NOW).reason


def test_automatic_starts_are_the_last_day_of_runs_and_records_without_repeats():
    runs = [run("a", 10), run("b", 20, "schedule"), run("c", 5, "manual"), run("d", 25 * 60)]
    starts = retraining.automatic_starts(runs, {"retrainTimes": [ago(20), ago(600), ago(2000)]}, now=NOW)
    assert starts == [ago(600), ago(20), ago(10)]


def test_off_unless_the_project_allows_it():
    decision = retraining.decide(project(onDrift=False), [], episode="e", now=NOW)
    assert not decision.allowed and "onDrift" in decision.reason


def test_alerts_fire_once_per_episode_and_resolve():
    assert alerts.should_send(drifting=True, was_drifting=False, last_alert=None, now=NOW)
    assert not alerts.should_send(drifting=True, was_drifting=True, last_alert="2026-11-24T11:58:00Z", now=NOW)
    assert alerts.should_send(drifting=True, was_drifting=True, last_alert="2026-11-24T11:50:00Z", now=NOW)
    assert alerts.should_send(drifting=False, was_drifting=True, last_alert="2026-11-24T11:58:00Z", now=NOW)
    assert not alerts.should_send(drifting=False, was_drifting=False, last_alert=None, now=NOW)
    body = alerts.payload({"alertname": "MLModelDrift"}, {"features": [{"name": "age", "drifted": True}], "reportUri": "r",
                          "performance": {"metric": "f1", "baseline": 0.9, "current": 0.7}}, starts_at="s", resolved_at="e")
    assert body[0]["annotations"]["topDriftedFeatures"] == "age" and body[0]["annotations"]["performanceDrop"] == (
        "f1 0.900 -> 0.700 (drop 0.200, 0 labeled requests)")
    assert body[0]["endsAt"] == "e"
