"""The DriftMonitor reconciler on a real API server, one pass at a time: a drift episode's Events are
posted once and it starts one TrainingJob even when the status write conflicts and the pass is
retried; alerts are posted after the write and a delivered one is recorded; a missing
ModelDeployment is reported with what to fix.

The analysis itself is the worker process's (``tests/integration/drift`` runs it for real); here the
reconciler's ``analyser`` seam answers with canned results in the contract's wire form.
"""

from __future__ import annotations

import pytest
from control_helpers import events_of

from mlkube.api import driftcheck
from mlkube.clients import k8s
from mlkube.control.plans import monitor as monitor_plans
from mlkube.control.reconcile import execute, monitor
from mlkube.local import scenario

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


class Worker:
    """Stands in for ``python -m mlkube.driftcheck``: answers each request with the next result;
    ``meanwhile`` runs during the first analysis (someone else writing the monitor)."""

    def __init__(self, *results, meanwhile=None):
        self.results, self.meanwhile, self.requests = list(results), meanwhile, []

    async def __call__(self, request, env):
        self.requests.append(request)
        if self.meanwhile is not None and len(self.requests) == 1:
            await self.meanwhile()
        return self.results.pop(0).wire()


def given(client, loop, namespace, *, webhook=None, deployment="churn-prod"):
    """A project with version 1 registered, a deployment serving it, and a monitor of the deployment."""

    async def create():
        await client.create(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "MLProject",
                "metadata": {"name": "churn", "namespace": namespace},
                "spec": {
                    "goal": {"description": "keep customers", "type": "Growth"},
                    "problem": {"task": "regression", "target": "y", "primaryMetric": "rmse"},
                    "data": {"uri": "file:///d.csv"},
                    "storage": {"uri": "file:///s"},
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
                        "digest": "sha256:x",
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
    return loop.run_until_complete(client.get(k8s.DRIFTMONITORS, "m", namespace))["status"]


def drift_runs(client, loop, namespace):
    return [r["metadata"]["name"] for r in loop.run_until_complete(client.list(k8s.TRAININGJOBS, namespace))]


def test_an_episode_posts_its_events_once_and_starts_one_run_when_the_status_write_conflicts(client, loop, kubectl, namespace):
    given(client, loop, namespace)

    async def someone_else_writes():
        await client.patch(k8s.DRIFTMONITORS, "m", namespace, {"metadata": {"labels": {"touched": "yes"}}})

    worker = Worker(DRIFTING, DRIFTING, meanwhile=someone_else_writes)
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=worker))

    assert len(worker.requests) == 2, "the conflicting write makes the whole pass start again"
    request = worker.requests[0]
    assert request.reference.uri == "file:///s/v1/" and request.traffic.versions == [1] and request.concept_drift.metric == "rmse"
    status = status_of(client, loop, namespace)
    assert status["phase"] == "Drifting" and status["modelVersion"] == 1 and status["features"][0]["name"] == "age"
    run = status["retrainingJob"]
    assert drift_runs(client, loop, namespace) == [run]
    episode = [("DriftDetected", SUMMARY), ("RetrainingStarted", f"Started TrainingJob {run}")]
    assert sorted(events_of(kubectl, namespace, "m")) == episode  # Events of one second come in any order

    # Not due again before the interval: no analysis. A forced pass of the lasting drift is quiet.
    idle = Worker()
    seen = loop.run_until_complete(client.get(k8s.DRIFTMONITORS, "m", namespace))
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, seen=seen, analyser=idle))
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, analyser=idle))
    assert idle.requests == []
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=Worker(DRIFTING)))
    assert drift_runs(client, loop, namespace) == [run]
    assert sorted(events_of(kubectl, namespace, "m")) == episode

    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=Worker(HEALTHY)))
    assert status_of(client, loop, namespace)["phase"] == "Healthy"
    resolved = ("DriftResolved", "No drift in the latest window (500 samples)")
    assert sorted(events_of(kubectl, namespace, "m")) == sorted([*episode, resolved])


def test_a_delivered_alert_is_recorded_and_an_undelivered_one_is_not(client, loop, namespace):
    with scenario.AlertReceiver() as receiver:
        given(client, loop, namespace, webhook=receiver.url)
        loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=Worker(DRIFTING)))
        status = status_of(client, loop, namespace)
        assert receiver.posts == 1 and status["lastAlertTime"] == status["lastCheckTime"] == status["driftStartedAt"]
        [alert] = receiver.alerts
        assert alert["labels"]["monitor"] == "m" and alert["labels"]["version"] == "1"
        assert alert["startsAt"] == status["driftStartedAt"] and alert["annotations"]["reportUri"] == "file:///s/r.html"

    loop.run_until_complete(
        client.patch(k8s.DRIFTMONITORS, "m", namespace, {"spec": {"alerting": {"webhook": "http://127.0.0.1:9/api/v2/alerts"}}})
    )
    loop.run_until_complete(client.patch_status(k8s.DRIFTMONITORS, "m", namespace, {"lastAlertTime": None}))
    loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=Worker(DRIFTING)))
    assert "lastAlertTime" not in status_of(client, loop, namespace), "an alert that was not delivered is sent again next time"


def test_a_missing_deployment_is_ready_false_with_what_to_fix(client, loop, namespace):
    given(client, loop, namespace, deployment="nope")
    worker = Worker()
    with pytest.raises(execute.RetryLater) as retry:
        loop.run_until_complete(monitor.reconcile(client, "m", namespace, force=True, analyser=worker))
    status = status_of(client, loop, namespace)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeploymentNotFound")
    assert "ModelDeployment 'nope' does not exist" in ready["message"] and "fix spec.deploymentRef" in ready["message"]
    assert status["phase"] == "Pending" and "lastCheckTime" not in status
    assert retry.value.message == ready["message"] and retry.value.delay == monitor_plans.RETRY_SECONDS
    assert worker.requests == []
