"""The DriftMonitor's plan, pure: one analysis (or why there was none) in, the status, Events, the
retraining TrainingJob and the alerts out. Drift episodes: one Event, one alert (re-sent while it
lasts, resolved when it ends) and one run per episode, also when a pass is retried. The analysis is
a check Job in the monitor's namespace: created once per check under a deterministic name, followed
while it runs, its answer turned into the status, earlier checks' Jobs deleted. Alerts go only to
webhooks the operator's allowlist allows."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from mlkube.api import driftcheck, kinds
from mlkube.common import timestamps
from mlkube.control.plans import monitor
from mlkube.control.plans import plan as plans
from mlkube.control.policy import checkjob

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)
STAMP = "2026-11-24T12:00:00Z"
WEBHOOK = "http://alertmanager:9093/api/v2/alerts"
RUN = "churn-drift-20261124120000"


def dmon(status=None, **spec):
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "churn-drift", "namespace": "ml", "uid": "d", "generation": 2},
        "spec": {
            "deploymentRef": "churn-prod",
            "alerting": {"webhook": WEBHOOK, "severity": "critical"},
            "action": {"retrain": True},
            **spec,
        },
        **({"status": status} if status is not None else {}),
    }


def project(**status):
    entries = [
        {
            "version": v,
            "trainingJob": f"churn-{v}",
            "createdAt": "2026-11-20T00:00:00Z",
            "artifactUri": f"s3://m/v{v}/",
            "digest": f"sha256:{v:064x}",
        }
        for v in (1, 2)
    ]
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": "churn", "namespace": "ml", "uid": "p"},
        "spec": {
            "goal": {"description": "keep customers", "type": "Growth"},
            "problem": {"task": "classification", "target": "churned", "primaryMetric": "f1"},
            "data": {"uri": "file:///d.csv"},
            "storage": {"uri": "file:///s"},
            "training": {"template": {"tuning": {"maxTrials": 3}}},
            "retraining": {"onDrift": True, "cooldown": "1h"},
        },
        "status": {"models": entries, **status},
    }


def served(version=1, **project_status):
    mlp = project(**project_status)
    entry = kinds.MLPROJECT.parse_status(mlp["status"]).models[version - 1]
    return monitor.Served(project=mlp, project_spec=kinds.MLPROJECT.parse_spec(mlp["spec"]), entry=entry)


DRIFTING = driftcheck.DriftCheckResult.model_validate(
    {
        "phase": "Drifting",
        "samples": 500,
        "datasetDrift": True,
        "driftShare": 0.5,
        "reportUri": "file:///s/r1.html",
        "summary": "1 of 2 features drifted (dataset drift); most important: age.",
        "features": [
            {"name": "age", "method": "psi", "score": 0.4, "threshold": 0.2, "drifted": True},
            {"name": "income", "method": "psi", "score": 0.01, "threshold": 0.2, "drifted": False},
        ],
        "predictionDrift": {"method": "psi", "score": 0.05, "drifted": False},
        "performance": {"metric": "f1", "baseline": 0.9, "current": 0.7, "samples": 300, "drifted": True},
    }
)
HEALTHY = driftcheck.DriftCheckResult.model_validate(
    {
        "phase": "Healthy",
        "samples": 500,
        "datasetDrift": False,
        "driftShare": 0.0,
        "reportUri": "file:///s/r2.html",
        "summary": "No drift: none of 2 features moved past its threshold.",
        "features": [{"name": "age", "method": "psi", "score": 0.01, "drifted": False}],
        "predictionDrift": {"method": "psi", "score": 0.01, "drifted": False},
    }
)
INSUFFICIENT = driftcheck.DriftCheckResult(phase="InsufficientData", samples=40, summary="40 captured requests in the window")


def analysed(result, *, version=1, runs=(), checked_at=None, **project_status):
    """A due pass that finds the current check Job finished with ``result`` (checked at ``now`` unless ``checked_at``)."""
    check = checkjob.CheckState("Succeeded", result=result, checked_at=checked_at)
    return monitor.Observed(served=served(version, **project_status), check=check, runs=tuple(runs))


def status_after(obj, observed, now=NOW):
    """The stored status once the pass's plan is written."""
    return monitor.plan(obj, observed, now=now).plan.status.wire()


def condition(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_the_same_observations_give_the_same_plan():
    observed = analysed(DRIFTING)
    assert monitor.plan(dmon(), observed, now=NOW) == monitor.plan(dmon(), observed, now=NOW)


def test_drift_starts_an_episode_one_event_one_alert_and_one_run():
    outcome = monitor.plan(dmon(), analysed(DRIFTING), now=NOW)
    status = outcome.plan.status.wire()
    assert status["phase"] == "Drifting" and status["modelVersion"] == 1 and status["lastCheckTime"] == STAMP
    assert status["driftStartedAt"] == STAMP and status["retrainingJob"] == RUN
    assert status["features"][0] == {"name": "age", "method": "psi", "score": 0.4, "threshold": 0.2, "drifted": True}
    assert status["performance"]["current"] == 0.7 and status["reportUri"] == "file:///s/r1.html"
    assert "lastAlertTime" not in status, "recorded by the reconciler once the alert is delivered"
    assert condition(status, "Drifting") | {"lastTransitionTime": None} == {
        "type": "Drifting",
        "status": "True",
        "reason": "DriftDetected",
        "message": DRIFTING.summary,
        "observedGeneration": 2,
        "lastTransitionTime": None,
    }
    assert condition(status, "Ready")["reason"] == "Analysed" and status["observedGeneration"] == 2
    assert outcome.plan.events == (
        plans.warning("DriftDetected", DRIFTING.summary),
        plans.info("RetrainingStarted", f"Started TrainingJob {RUN}"),
    )
    [run] = outcome.plan.create
    assert run["metadata"]["name"] == RUN and run["spec"] == {
        "tuning": {"maxTrials": 3},
        "projectRef": "churn",
        "trigger": "drift",
    }
    assert run["metadata"]["labels"]["mlkube.io/source"] == "churn-drift"
    assert outcome.plan.apply == () and outcome.plan.delete == ()
    [alert] = outcome.alerts
    assert alert.url == WEBHOOK and alert.records
    assert alert.body[0]["labels"] == {
        "alertname": "MLModelDrift",
        "namespace": "ml",
        "monitor": "churn-drift",
        "project": "churn",
        "deployment": "churn-prod",
        "version": "1",
        "severity": "critical",
    }
    assert alert.body[0]["startsAt"] == STAMP and "endsAt" not in alert.body[0]
    assert alert.body[0]["annotations"]["topDriftedFeatures"] == "age"


def test_a_pass_retried_after_its_status_write_conflicted_posts_the_events_and_starts_no_second_run():
    created = monitor.plan(dmon(), analysed(DRIFTING), now=NOW).plan.create[0]
    # The first attempt created the run; its status write conflicted: the stored status is unchanged.
    retried = monitor.plan(
        dmon(), analysed(DRIFTING, runs=[{**created, "metadata": {**created["metadata"], "creationTimestamp": STAMP}}]), now=NOW
    )
    assert retried.plan.create == ()
    assert retried.plan.status.retraining_job == RUN
    assert retried.plan.events == (
        plans.warning("DriftDetected", DRIFTING.summary),
        plans.info("RetrainingStarted", f"Started TrainingJob {RUN}"),
    )


def test_a_lasting_episode_is_quiet_and_its_alert_is_resent_every_few_minutes():
    first = status_after(dmon(), analysed(DRIFTING))
    stored = {**first, "lastAlertTime": STAMP}
    run = {
        "metadata": {"name": RUN, "creationTimestamp": STAMP, "labels": {"mlkube.io/source": "churn-drift"}},
        "spec": {"projectRef": "churn", "trigger": "drift"},
    }
    later = NOW + datetime.timedelta(minutes=1)
    quiet = monitor.plan(dmon(stored), analysed(DRIFTING, runs=[run]), now=later)
    assert quiet.plan.events == () and quiet.plan.create == () and quiet.alerts == ()
    assert quiet.plan.status.retraining_job == RUN and quiet.plan.status.drift_started_at == STAMP
    resent = monitor.plan(dmon(stored), analysed(DRIFTING, runs=[run]), now=NOW + datetime.timedelta(minutes=5))
    [alert] = resent.alerts
    assert alert.body[0]["startsAt"] == STAMP and "endsAt" not in alert.body[0]


def test_the_end_of_an_episode_resolves_its_alert_and_keeps_its_start():
    stored = status_after(dmon(), analysed(DRIFTING))
    later = NOW + datetime.timedelta(minutes=5)
    outcome = monitor.plan(dmon(stored), analysed(HEALTHY), now=later)
    status = outcome.plan.status.wire()
    assert status["phase"] == "Healthy" and status["driftStartedAt"] == STAMP and status["retrainingJob"] == RUN
    assert "performance" not in status and status["features"] == [
        {"name": "age", "method": "psi", "score": 0.01, "drifted": False}
    ]
    assert condition(status, "Drifting")["status"] == "False" and condition(status, "Drifting")["reason"] == "NoDrift"
    assert outcome.plan.events == (plans.info("DriftResolved", "No drift in the latest window (500 samples)"),)
    [alert] = outcome.alerts
    assert alert.body[0]["startsAt"] == STAMP and alert.body[0]["endsAt"] == timestamps.format(later)


def test_a_new_stable_version_ends_the_old_versions_episode():
    stored = status_after(dmon(), analysed(DRIFTING))
    later = NOW + datetime.timedelta(minutes=5)
    outcome = monitor.plan(dmon(stored), analysed(HEALTHY, version=2), now=later)
    assert outcome.plan.events == (
        plans.info("DriftResolved", "Version 1 no longer serves; version 2 is judged on its own reference"),
    )
    [alert] = outcome.alerts
    assert not alert.records and alert.body[0]["labels"]["version"] == "1"
    assert alert.body[0]["startsAt"] == STAMP and alert.body[0]["endsAt"] == timestamps.format(later)
    assert alert.body[0]["annotations"]["summary"] == "model input drift"
    assert alert.body[0]["annotations"]["reportUri"] == "file:///s/r1.html"
    assert outcome.plan.status.model_version == 2 and outcome.plan.status.phase == "Healthy"


def test_a_refused_retraining_says_why_once():
    cooling = {"retrainTimes": ["2026-11-24T11:30:00Z"]}
    outcome = monitor.plan(dmon(), analysed(DRIFTING, **cooling), now=NOW)
    reason = "retraining cooling down until 2026-11-24T12:30:00Z (spec.retraining.cooldown 1h)"
    assert outcome.plan.status.message == reason and outcome.plan.create == ()
    assert outcome.plan.events == (plans.warning("DriftDetected", DRIFTING.summary), plans.info("RetrainingSkipped", reason))
    stored = outcome.plan.status.wire()
    again = monitor.plan(dmon(stored), analysed(DRIFTING, **cooling), now=NOW + datetime.timedelta(minutes=1))
    assert again.plan.events == () and again.plan.status.message == reason


def test_no_alert_without_a_webhook_and_no_run_without_the_retrain_action():
    outcome = monitor.plan(dmon(alerting={}, action={}), analysed(DRIFTING), now=NOW)
    assert outcome.alerts == () and outcome.plan.create == ()
    assert outcome.plan.events == (plans.warning("DriftDetected", DRIFTING.summary),)


def test_an_insufficient_window_is_ready_and_clears_the_last_analysis_but_keeps_its_report():
    stored = status_after(dmon(), analysed(HEALTHY))
    status = status_after(dmon(stored), analysed(INSUFFICIENT), now=NOW + datetime.timedelta(minutes=5))
    assert status["phase"] == "InsufficientData" and status["samples"] == 40
    assert "datasetDrift" not in status and "predictionDrift" not in status and status["features"] == []
    assert status["reportUri"] == "file:///s/r2.html"
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "InsufficientData", INSUFFICIENT.summary)


MISSING = plans.Unresolved(
    "DeploymentNotFound",
    "spec.deploymentRef: ModelDeployment 'churn-prod' does not exist in namespace 'ml'; create it or fix spec.deploymentRef",
)


@pytest.mark.parametrize(
    ("observed", "reason", "message", "checked"),
    [
        (monitor.Observed(missing=MISSING), "DeploymentNotFound", MISSING.message, False),
        (monitor.Observed(), "NothingServed", "ModelDeployment churn-prod serves no version yet", True),
        (
            monitor.Observed(served=served(), check=checkjob.CheckState("Failed", message="mlkube.driftcheck: boom")),
            "AnalysisFailed",
            "mlkube.driftcheck: boom",
            True,
        ),
    ],
)
def test_what_stops_an_analysis_is_ready_false_with_what_to_fix(observed, reason, message, checked):
    outcome = monitor.plan(dmon(), observed, now=NOW)
    status = outcome.plan.status.wire()
    assert status["phase"] == "Pending" and status["message"] == message
    assert condition(status, "Ready") == {
        "type": "Ready",
        "status": "False",
        "reason": reason,
        "message": message,
        "observedGeneration": 2,
        "lastTransitionTime": STAMP,
    }
    assert ("lastCheckTime" in status) == checked, "a checked attempt waits for the next interval"
    assert outcome.plan.events == () and outcome.alerts == () and outcome.plan.create == ()
    assert (outcome.plan.retry_after, outcome.plan.retry_reason) == (
        (monitor.RETRY_SECONDS, message) if not checked else (None, "")
    )


def test_a_missing_storage_secret_is_retried_without_touching_the_status():
    outcome = monitor.plan(dmon(), monitor.Observed(served=served(), awaiting="Secret 's3' does not exist"), now=NOW)
    assert outcome.plan == plans.Plan(retry_after=monitor.RETRY_SECONDS, retry_reason="Secret 's3' does not exist")


def test_an_invalid_spec_is_reported_and_is_due_until_it_is():
    invalid = dmon(interval="0s")
    status = status_after(invalid, monitor.Observed())
    ready = condition(status, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec" and ready["message"].startswith("spec.interval:")
    assert monitor.is_due(invalid, now=NOW)
    assert not monitor.is_due(dmon(status, interval="0s"), now=NOW)


def test_an_analysis_is_due_every_interval():
    assert monitor.is_due(dmon(), now=NOW)
    checked = dmon({"lastCheckTime": STAMP}, interval="5m")
    assert not monitor.is_due(checked, now=NOW + datetime.timedelta(minutes=4, seconds=59))
    assert monitor.is_due(checked, now=NOW + datetime.timedelta(minutes=5))


def test_the_served_entry_is_the_deployments_stable_version_in_the_registry():
    mdep = {"status": {"stableVersion": 2}}
    assert monitor.served_entry(mdep, project()).artifact_uri == "s3://m/v2/"
    assert monitor.served_entry({"status": {}}, project()) is None
    assert monitor.served_entry({"status": {"stableVersion": 3}}, project()) is None


def check_name(obj, version=1):
    from mlkube.control.manifests import drift

    return drift.check_job_name(obj, version=version)


def test_a_due_analysis_creates_its_check_job_once_and_changes_no_status():
    obj = dmon()
    outcome = monitor.plan(obj, monitor.Observed(served=served(), image="img:2"), now=NOW)
    [job] = outcome.plan.create
    assert job["kind"] == "Job" and job["metadata"]["name"] == check_name(obj) and job["metadata"]["namespace"] == "ml"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    request = driftcheck.DriftCheckRequest.model_validate_json(env[0]["value"])
    assert request.reference.digest == "sha256:" + "0" * 63 + "1" and request.reference.uri == "s3://m/v1/"
    [account] = outcome.plan.apply
    assert account["metadata"]["name"] == "mlkube-trainer" and account["automountServiceAccountToken"] is False
    assert outcome.plan.status is None and outcome.plan.events == () and outcome.alerts == () and outcome.checking
    assert job["metadata"]["annotations"] == {"mlkube.io/check-time": STAMP}
    later = monitor.plan(obj, monitor.Observed(served=served(), image="img:2"), now=NOW + datetime.timedelta(seconds=3))
    assert later.plan.create[0]["metadata"]["name"] == job["metadata"]["name"], "a retried pass names the same Job"


def test_a_running_check_is_followed_without_a_status_change_and_earlier_checks_are_deleted():
    obj = dmon({"lastCheckTime": "2026-11-24T11:00:00Z"})
    current = check_name(obj)
    observed = monitor.Observed(served=served(), check=checkjob.CheckState("Running"), checks=("churn-drift-check-old", current))
    outcome = monitor.plan(obj, observed, now=NOW)
    assert outcome.checking and outcome.plan.status is None and outcome.plan.create == ()
    assert outcome.plan.delete == (plans.ObjectRef("batch/v1", "Job", "churn-drift-check-old", "ml"),)


def test_a_finished_check_is_the_status_and_its_time_is_the_last_check_time():
    observed = analysed(HEALTHY, checked_at="2026-11-24T11:59:57Z")
    observed = monitor.Observed(
        served=observed.served, check=observed.check, checks=(check_name(dmon()), "churn-drift-check-old")
    )
    outcome = monitor.plan(dmon(), observed, now=NOW)
    status = outcome.plan.status.wire()
    assert status["phase"] == "Healthy" and status["lastCheckTime"] == "2026-11-24T11:59:57Z" and not outcome.checking
    assert outcome.plan.delete == (plans.ObjectRef("batch/v1", "Job", "churn-drift-check-old", "ml"),)
    assert check_name(dmon(status)) != check_name(dmon()), "the consumed result names the next check's Job"


def test_a_webhook_outside_the_operators_allowlist_is_not_contacted_and_the_status_says_why():
    allow = ("alertmanager.monitoring:9093",)
    observed = monitor.Observed(served=served(), check=analysed(DRIFTING).check, webhook_allow=allow)
    outcome = monitor.plan(dmon(), observed, now=NOW)
    assert outcome.alerts == ()
    status = outcome.plan.status.wire()
    blocked = condition(status, "AlertsBlocked")
    assert (blocked["status"], blocked["reason"]) == ("True", "WebhookNotAllowed")
    assert blocked["message"].startswith(
        f"spec.alerting.webhook {WEBHOOK} is not allowed by the operator's MLKUBE_ALERT_WEBHOOK_ALLOW"
    )
    assert plans.warning("WebhookNotAllowed", blocked["message"]) in outcome.plan.events
    again = monitor.plan(dmon(status), observed, now=NOW + datetime.timedelta(minutes=5))
    assert not any(e.reason == "WebhookNotAllowed" for e in again.plan.events), "said once"
    allowed = dataclasses.replace(observed, webhook_allow=("alertmanager:9093",))
    fixed = monitor.plan(dmon(status), allowed, now=NOW + datetime.timedelta(minutes=10))
    assert fixed.alerts and not any(c["type"] == "AlertsBlocked" for c in fixed.plan.status.wire()["conditions"])


def test_each_check_has_a_time_and_a_job_of_its_own_even_within_one_second():
    from mlkube.control.manifests import drift

    assert drift.check_time(dmon(), now=NOW) == STAMP
    assert drift.check_time(dmon({"lastCheckTime": "2026-11-24T11:00:00Z"}), now=NOW) == STAMP
    within = dmon({"lastCheckTime": STAMP})  # the last check was at this very second (a forced pass)
    assert drift.check_time(within, now=NOW) == "2026-11-24T12:00:01Z"
    assert check_name(dmon({"lastCheckTime": "2026-11-24T12:00:01Z"})) != check_name(within)


def batch_monitor(status=None):
    obj = dmon(status)
    del obj["spec"]["deploymentRef"]
    obj["spec"]["batchPredictionRef"] = "churn-nightly"
    return obj


def test_a_monitor_of_a_batch_prediction_analyses_its_scored_rows_against_the_version_it_scored_with():
    obj = batch_monitor()
    [job] = monitor.plan(obj, monitor.Observed(served=served(2)), now=NOW).plan.create
    request = driftcheck.DriftCheckRequest.model_validate_json(
        job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    )
    assert request.traffic.deployment == "churn-nightly"  # the BatchPrediction's drift sample (ml/batchlog.py)
    assert request.reference.uri == "s3://m/v2/"
    waiting = monitor.plan(obj, monitor.Observed(), now=NOW).plan.status.wire()
    assert waiting["message"] == "BatchPrediction churn-nightly has scored with no version yet"
    bp = {"status": {"modelVersion": 2}}
    assert monitor.scored_entry(bp, project()).version == 2 and monitor.scored_entry({}, project()) is None


def test_a_check_job_goes_to_the_monitors_queue_or_else_the_projects():
    [job] = monitor.plan(dmon(queueName="drift"), monitor.Observed(served=served(), image="i"), now=NOW).plan.create
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "drift" and job["spec"]["suspend"] is True
    [job] = monitor.plan(dmon(), monitor.Observed(served=served(), image="i"), now=NOW).plan.create
    assert "suspend" not in job["spec"]
