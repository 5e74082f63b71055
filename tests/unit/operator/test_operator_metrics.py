"""The operator's training and rollout metrics, derived from what an executed pass wrote and posted."""

from __future__ import annotations

import uuid

import prometheus_client
import pytest

from mlkube.api import deployment, driftcheck, rolloutstatus, training
from mlkube.clients import metrics
from mlkube.control.plans import plan as plans
from mlkube.control.reconcile import deployment as reconcile_deployment
from mlkube.control.reconcile import trainingjob as reconcile_trainingjob


def value(name: str, **labels: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(name, labels)


@pytest.fixture
def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:6]}"  # the registry is process-wide: each test its own series


def tj(namespace: str, phase: str | None) -> dict:
    status = {"phase": phase} if phase else {}
    return {"metadata": {"name": "nightly", "namespace": namespace}, "spec": {"projectRef": "penguins"}, "status": status}


def test_a_run_is_counted_once_per_phase_it_enters_and_a_finished_one_observes_its_duration(namespace):
    running = training.TrainingJobStatus(phase="Running", start_time="2026-12-05T11:00:00Z")
    succeeded = running.model_copy(update={"phase": "Succeeded", "completion_time": "2026-12-05T11:02:30Z"})
    reconcile_trainingjob.record_metrics(tj(namespace, None), plans.Plan(status=running))
    reconcile_trainingjob.record_metrics(tj(namespace, "Running"), plans.Plan(status=running))  # a pass with no change
    reconcile_trainingjob.record_metrics(tj(namespace, "Running"), plans.Plan(status=succeeded))
    reconcile_trainingjob.record_metrics(tj(namespace, "Succeeded"), plans.Plan(status=succeeded))
    labels = {"namespace": namespace, "project": "penguins"}
    assert value("mlkube_training_runs_total", **labels, phase="Running") == 1
    assert value("mlkube_training_runs_total", **labels, phase="Succeeded") == 1
    assert value("mlkube_training_runs_total", **labels, phase="Failed") is None
    assert value("mlkube_training_duration_seconds_count", **labels, phase="Succeeded") == 1
    assert value("mlkube_training_duration_seconds_sum", **labels, phase="Succeeded") == 150
    assert value("mlkube_training_duration_seconds_bucket", **labels, phase="Succeeded", le="120.0") == 0
    assert value("mlkube_training_duration_seconds_bucket", **labels, phase="Succeeded", le="300.0") == 1


def test_a_pass_that_writes_no_status_counts_nothing(namespace):
    reconcile_trainingjob.record_metrics(tj(namespace, "Running"), plans.Plan())
    assert value("mlkube_training_runs_total", namespace=namespace, project="penguins", phase="Running") is None


def canary_status(**changes) -> deployment.ModelDeploymentStatus:
    base = deployment.ModelDeploymentStatus(
        phase="Progressing",
        stable_version=2,
        candidate_version=3,
        traffic=[
            rolloutstatus.TrafficEntry(version=2, role="stable", percent=90),
            rolloutstatus.TrafficEntry(version=3, role="canary", percent=10),
        ],
        analysis=rolloutstatus.AnalysisResult(requests=40, verdict="Inconclusive"),
    )
    return base.model_copy(update=changes)


def test_a_rollout_records_its_split_verdict_phase_and_promotion(namespace):
    labels = {"namespace": namespace, "deployment": "prod"}
    reconcile_deployment.record_metrics(namespace, "prod", plans.Plan(status=canary_status()))
    assert value("mlkube_rollout_traffic_percent", **labels, version="2", role="stable") == 90
    assert value("mlkube_rollout_traffic_percent", **labels, version="3", role="canary") == 10
    assert value("mlkube_rollout_analysis_verdict", **labels, verdict="Inconclusive") == 1
    assert value("mlkube_rollout_analysis_verdict", **labels, verdict="Passing") == 0
    assert value("mlkube_rollout_phase", **labels, phase="Progressing") == 1

    promoted = canary_status(
        phase="Healthy",
        stable_version=3,
        candidate_version=None,
        traffic=[rolloutstatus.TrafficEntry(version=3, role="stable", percent=100)],
        analysis=rolloutstatus.AnalysisResult(requests=90, verdict="Passing"),
    )
    reconcile_deployment.record_metrics(
        namespace, "prod", plans.Plan(status=promoted, events=(plans.info("Promoted", "Version 3 is stable"),))
    )
    assert value("mlkube_rollout_promotions_total", **labels) == 1
    assert value("mlkube_rollout_rollbacks_total", **labels) is None
    assert value("mlkube_rollout_traffic_percent", **labels, version="3", role="stable") == 100
    assert value("mlkube_rollout_traffic_percent", **labels, version="2", role="stable") is None  # left the table
    assert value("mlkube_rollout_traffic_percent", **labels, version="3", role="canary") is None
    assert value("mlkube_rollout_analysis_verdict", **labels, verdict="Passing") == 1
    assert value("mlkube_rollout_phase", **labels, phase="Healthy") == 1
    assert value("mlkube_rollout_phase", **labels, phase="Progressing") == 0

    reconcile_deployment.deleted("prod", namespace)
    assert value("mlkube_rollout_traffic_percent", **labels, version="3", role="stable") is None
    assert value("mlkube_rollout_phase", **labels, phase="Healthy") is None
    assert value("mlkube_rollout_promotions_total", **labels) == 1


def test_a_rollback_is_counted_from_its_event(namespace):
    rolled_back = canary_status(phase="RolledBack", candidate_version=None, traffic=[])
    event = plans.warning("RolledBack", "Version 3 rolled back (analysis failed)")
    reconcile_deployment.record_metrics(namespace, "prod", plans.Plan(status=rolled_back, events=(event,)))
    assert value("mlkube_rollout_rollbacks_total", namespace=namespace, deployment="prod") == 1
    assert value("mlkube_rollout_phase", namespace=namespace, deployment="prod", phase="RolledBack") == 1


def test_drift_detected_follows_the_analysis_phase(namespace):
    drifting = driftcheck.DriftCheckResult(phase="Drifting", samples=400, summary="3 of 6 features drifted", drift_share=0.5)
    metrics.record_drift(namespace, "watch", drifting)
    assert value("mlkube_drift_detected", namespace=namespace, monitor="watch") == 1
    healthy = drifting.model_copy(update={"phase": "Healthy", "drift_share": 0.0})
    metrics.record_drift(namespace, "watch", healthy)
    assert value("mlkube_drift_detected", namespace=namespace, monitor="watch") == 0
    assert value("mlkube_drift_share", namespace=namespace, monitor="watch") == 0
