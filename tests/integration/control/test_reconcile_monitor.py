"""The DriftMonitor reconciler on a real API server, one pass at a time: a due analysis becomes a check
Job in the monitor's namespace (token-less, credentials by reference, the served version's digest
pinned), created once; its answer, read from the termination message, becomes the status; a drift
episode's Events are posted once and it starts one TrainingJob even when the status write conflicts
and the pass is retried; earlier checks' Jobs are deleted; alerts are posted after the write, a
delivered one is recorded, and a webhook outside the operator's allowlist is never contacted; a
missing ModelDeployment is reported with what to fix.

The analysis itself is the check's (``tests/integration/drift`` runs it for real); here the test plays
the Job controller and the kubelet for the check Job: a pod terminated with the answer in its
termination message, and the Job Complete.
"""

from __future__ import annotations

import json
import re

import pytest
from control_helpers import Interrupted, events_of

from mlkube.api import driftcheck
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.manifests import drift
from mlkube.control.plans import monitor as monitor_plans
from mlkube.control.reconcile import execute, monitor
from mlkube.local import scenario

IMAGE = "img:7"
DIGEST = "sha256:" + "d1" * 32
SUMMARY = "1 of 2 features drifted (dataset drift); most important: age."
DRIFTING = driftcheck.DriftCheckResult.model_validate(
    {
        "phase": "Drifting",
        "samples": 500,
        "datasetDrift": True,
        "driftShare": 0.5,
        "summary": SUMMARY,
        "features": [{"name": "age", "method": "psi", "score": 0.4, "threshold": 0.2, "drifted": True}],
        "predictionDrift": {"method": "psi", "score": 0.05, "drifted": False},
        "reportUri": "file:///s/r.html",
    }
)
HEALTHY = driftcheck.DriftCheckResult.model_validate(
    {
        "phase": "Healthy",
        "samples": 500,
        "datasetDrift": False,
        "driftShare": 0.0,
        "summary": "No drift.",
        "features": [{"name": "age", "method": "psi", "score": 0.01, "drifted": False}],
    }
)


def given(client, loop, namespace, *, webhook=None, deployment="churn-prod", secret=None):
    """A project with version 1 registered, a deployment serving it, and a monitor of the deployment."""

    async def create():
        storage = {"uri": "file:///s", **({"credentialsSecret": secret} if secret else {})}
        await client.create(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "MLProject",
                "metadata": {"name": "churn", "namespace": namespace},
                "spec": {
                    "goal": {"description": "keep customers", "type": "Growth"},
                    "problem": {"task": "regression", "target": "y", "primaryMetric": "rmse"},
                    "data": {"uri": "file:///d.csv"},
                    "storage": storage,
                    "retraining": {"onDrift": True, "cooldown": "1h"},
                },
            }
        )
        await client.patch_status(
            k8s.MLPROJECTS,
            "churn",
            namespace,
            {
                "models": [
                    {
                        "version": 1,
                        "trainingJob": "first",
                        "createdAt": "2026-11-20T00:00:00Z",
                        "artifactUri": "file:///s/v1/",
                        "digest": DIGEST,
                    }
                ],
                "championVersion": 1,
            },
        )
        await client.create(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "churn-prod", "namespace": namespace},
                "spec": {"projectRef": "churn", "model": {"track": "champion"}},
            }
        )
        await client.patch_status(k8s.MODELDEPLOYMENTS, "churn-prod", namespace, {"stableVersion": 1})
        spec = {"deploymentRef": deployment, "interval": "5m", "action": {"retrain": True}}
        if webhook:
            spec["alerting"] = {"webhook": webhook}
        await client.create(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "DriftMonitor",
                "metadata": {"name": "m", "namespace": namespace},
                "spec": spec,
            }
        )

    loop.run_until_complete(create())


def status_of(client, loop, namespace):
    return loop.run_until_complete(client.get(k8s.DRIFTMONITORS, "m", namespace)).get("status") or {}


def drift_runs(client, loop, namespace):
    return [r["metadata"]["name"] for r in loop.run_until_complete(client.list(k8s.TRAININGJOBS, namespace))]


def check_jobs(client, loop, namespace):
    return loop.run_until_complete(client.list(k8s.JOBS, namespace, labels={"app.kubernetes.io/component": "driftcheck"}))


def finish(client, loop, namespace, answer):
    """Play the Job controller and the kubelet for the one unfinished check Job: its pod terminated with
    ``answer`` in the termination message, the Job Complete (or Failed for an error answer), now.
    Returns the Job and the time of its check."""
    at = timestamps.format(timestamps.now())
    [job] = [j for j in check_jobs(client, loop, namespace) if not (j.get("status") or {}).get("conditions")]
    name = job["metadata"]["name"]
    failed = "error" in answer

    async def run():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-x", "namespace": namespace, "labels": {"job-name": name}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": drift.CONTAINER, "image": IMAGE}]},
        }
        await client.create(pod)
        terminated = {"exitCode": 1 if failed else 0, "message": json.dumps(answer)}
        await client.patch_status(
            k8s.PODS,
            pod["metadata"]["name"],
            namespace,
            {
                "phase": "Failed" if failed else "Succeeded",
                "containerStatuses": [{"name": drift.CONTAINER, "state": {"terminated": terminated}}],
            },
        )
        condition = {"type": "Failed" if failed else "Complete", "status": "True", "lastTransitionTime": at}
        status = {"startTime": at, "conditions": [condition], **({} if failed else {"completionTime": at, "succeeded": 1})}
        await client.patch_status(k8s.JOBS, name, namespace, status)

    loop.run_until_complete(run())
    return job, drift.check_time_of(job)


def test_a_due_analysis_is_one_token_less_check_job_in_the_monitors_namespace(client, loop, namespace):
    given(client, loop, namespace, secret="s3")
    with pytest.raises(execute.RetryLater, match=re.escape("Secret 's3' (spec.storage.credentialsSecret) does not exist")):
        loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    assert check_jobs(client, loop, namespace) == []
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3", "namespace": namespace}}
    loop.run_until_complete(client.create({**secret, "stringData": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}}))
    for _ in range(2):  # a second pass finds the Job the first one created
        loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    [job] = check_jobs(client, loop, namespace)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mlkube-trainer" and pod["automountServiceAccountToken"] is False
    account = loop.run_until_complete(client.get(k8s.SERVICEACCOUNTS, "mlkube-trainer", namespace))
    assert account["automountServiceAccountToken"] is False
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert "value" not in env["AWS_ACCESS_KEY_ID"], "the Secret's values are never copied into the Job"
    request = driftcheck.DriftCheckRequest.model_validate_json(env[driftcheck.REQUEST_ENV]["value"])
    assert request.reference.uri == "file:///s/v1/" and request.reference.digest == DIGEST
    assert request.traffic.versions == [1] and request.concept_drift.metric == "rmse"
    assert status_of(client, loop, namespace) == {}, "nothing to report before the check answers"


def test_an_episode_posts_its_events_once_and_starts_one_run_when_the_status_write_conflicts(client, loop, kubectl, namespace):
    given(client, loop, namespace)
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    first, ended = finish(client, loop, namespace, DRIFTING.wire())
    interrupted = Interrupted(client)
    loop.run_until_complete(monitor.reconcile(interrupted, "m", namespace, image=IMAGE))
    assert interrupted.conflicts == 1, "the conflicting write makes the whole pass start again"

    status = status_of(client, loop, namespace)
    assert status["phase"] == "Drifting" and status["modelVersion"] == 1 and status["features"][0]["name"] == "age"
    assert status["lastCheckTime"] == status["driftStartedAt"] == ended, "the time of the check"
    run = status["retrainingJob"]
    assert drift_runs(client, loop, namespace) == [run]
    episode = [("DriftDetected", SUMMARY), ("RetrainingStarted", f"Started TrainingJob {run}")]
    assert sorted(events_of(kubectl, namespace, "m")) == episode  # Events of one second come in any order

    # Not due again before the interval: no pass, no new check. A forced pass of the lasting drift is quiet.
    seen = loop.run_until_complete(client.get(k8s.DRIFTMONITORS, "m", namespace))
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, seen=seen, image=IMAGE))
    assert [j["metadata"]["name"] for j in check_jobs(client, loop, namespace)] == [first["metadata"]["name"]]
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    second, _ = finish(client, loop, namespace, DRIFTING.wire())
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, image=IMAGE))
    assert drift_runs(client, loop, namespace) == [run]
    assert sorted(events_of(kubectl, namespace, "m")) == episode
    assert [j["metadata"]["name"] for j in check_jobs(client, loop, namespace)] == [second["metadata"]["name"]], (
        "the consumed check's Job is deleted"
    )

    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    finish(client, loop, namespace, HEALTHY.wire())
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, image=IMAGE))
    assert status_of(client, loop, namespace)["phase"] == "Healthy"
    resolved = ("DriftResolved", "No drift in the latest window (500 samples)")
    assert sorted(events_of(kubectl, namespace, "m")) == sorted([*episode, resolved])


def test_a_failed_check_is_ready_false_with_its_error(client, loop, namespace):
    given(client, loop, namespace)
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    error = f"IntegrityError: file:///s/v1/: MANIFEST.json has digest sha256:0, but the registry expects {DIGEST}"
    _, ended = finish(client, loop, namespace, {"error": error})
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, image=IMAGE))
    status = status_of(client, loop, namespace)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "AnalysisFailed", f"mlkube.driftcheck: {error}")
    assert status["lastCheckTime"] == ended, "a failed check waits for the next interval too"


def run_to_answer(client, loop, namespace, answer):
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    finish(client, loop, namespace, answer)
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, image=IMAGE))


def test_a_delivered_alert_is_recorded_and_an_undelivered_one_is_not(client, loop, namespace):
    with scenario.AlertReceiver() as receiver:
        given(client, loop, namespace, webhook=receiver.url)
        run_to_answer(client, loop, namespace, DRIFTING.wire())
        status = status_of(client, loop, namespace)
        assert receiver.posts == 1 and status["lastAlertTime"] >= status["lastCheckTime"] == status["driftStartedAt"]
        [alert] = receiver.alerts
        assert alert["labels"]["monitor"] == "m" and alert["labels"]["version"] == "1"
        assert alert["startsAt"] == status["driftStartedAt"] and alert["annotations"]["reportUri"] == "file:///s/r.html"

    loop.run_until_complete(
        client.patch(k8s.DRIFTMONITORS, "m", namespace, {"spec": {"alerting": {"webhook": "http://127.0.0.1:9/api/v2/alerts"}}})
    )
    loop.run_until_complete(client.patch_status(k8s.DRIFTMONITORS, "m", namespace, {"lastAlertTime": None}))
    run_to_answer(client, loop, namespace, DRIFTING.wire())
    assert "lastAlertTime" not in status_of(client, loop, namespace), "an alert that was not delivered is sent again next time"


def test_a_webhook_outside_the_operators_allowlist_is_never_contacted(client, loop, kubectl, namespace, monkeypatch):
    monkeypatch.setenv("MLKUBE_ALERT_WEBHOOK_ALLOW", "alertmanager.monitoring:9093")
    with scenario.AlertReceiver() as receiver:
        given(client, loop, namespace, webhook=receiver.url)
        run_to_answer(client, loop, namespace, DRIFTING.wire())
        assert receiver.posts == 0
    status = status_of(client, loop, namespace)
    blocked = next(c for c in status["conditions"] if c["type"] == "AlertsBlocked")
    assert (blocked["status"], blocked["reason"]) == ("True", "WebhookNotAllowed")
    assert f"spec.alerting.webhook {receiver.url} is not allowed" in blocked["message"]
    assert ("WebhookNotAllowed", blocked["message"]) in events_of(kubectl, namespace, "m")
    assert status["phase"] == "Drifting" and "lastAlertTime" not in status


def test_a_missing_deployment_is_ready_false_with_what_to_fix(client, loop, namespace):
    given(client, loop, namespace, deployment="nope")
    with pytest.raises(execute.RetryLater) as retry:
        loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, image=IMAGE))
    status = status_of(client, loop, namespace)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeploymentNotFound")
    assert "ModelDeployment 'nope' does not exist" in ready["message"] and "fix spec.deploymentRef" in ready["message"]
    assert status["phase"] == "Pending" and "lastCheckTime" not in status
    assert retry.value.message == ready["message"] and retry.value.delay == monitor_plans.RETRY_SECONDS
    assert check_jobs(client, loop, namespace) == []
