"""Replay before promote, the pure parts: the verdict on a replay's counts (decided on Wilson
intervals at analysis.confidence, as the live analysis is), reading a replay Job's answer, and the
Job itself (the tenant's namespace, no token, credentials by reference, the project's image)."""

import json

import pytest

from mlkube.api import kinds
from mlkube.api import replay as replay_api
from mlkube.control.manifests import replay as replay_manifests
from mlkube.control.policy import replay

ERRORS = replay_api.Replay(maxErrorRate=0.05)


def result(**counts):
    return replay_api.ReplayResult(**counts)


def verdict(counts, settings=ERRORS, confidence=0.95):
    return replay.judge(result(**counts), settings, version=3, stable=2, metric="accuracy", confidence=confidence)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0, "Passing"),  # interval [0, 0.037] within 0.05
        (2, "Inconclusive"),  # [0.0055, 0.070] contains 0.05: no evidence either way
        (15, "Failing"),  # [0.093, 0.233] wholly above
    ],
)
def test_the_error_gate_fails_only_when_the_whole_interval_is_above(errors, expected):
    status = verdict({"requests": 100, "errors": errors, "compared": 100 - errors, "agreed": 100 - errors})
    assert status.verdict == expected and status.errors == errors and status.requests == 100
    assert status.error_rate == errors / 100 and status.error_rate_interval[0] <= errors / 100 <= status.error_rate_interval[1]


def test_with_max_error_rate_zero_a_single_error_fails_and_none_passes():
    exact = replay_api.Replay()  # maxErrorRate 0.0 by default
    assert verdict({"requests": 1000, "errors": 0}, exact).verdict == "Passing"
    failing = verdict({"requests": 1000, "errors": 1, "firstError": "HTTP 500: log of zero"}, exact)
    assert failing.verdict == "Failing"
    assert failing.message == (
        "version 3 on 1000 captured requests of version 2: errorRate 0.001 > maxErrorRate 0 "
        "(1 of 1000 replayed requests; 95% interval 0.000177-0.00564); first: HTTP 500: log of zero"
    )


@pytest.mark.parametrize(("agreed", "expected"), [(99, "Passing"), (85, "Inconclusive"), (70, "Failing")])
def test_the_agreement_gate_applies_only_when_set_and_on_its_interval(agreed, expected):
    counts = {"requests": 100, "compared": 100, "agreed": agreed}
    gated = verdict(counts, replay_api.Replay(maxErrorRate=0.05, minAgreement=0.9))
    assert gated.verdict == expected and gated.agreement == agreed / 100 and gated.compared == 100
    assert verdict(counts).verdict == "Passing"  # no minAgreement: reported, not gated
    assert verdict(counts).agreement == agreed / 100


def test_a_lower_confidence_decides_on_fewer_requests():
    counts = {"requests": 100, "errors": 2}
    assert verdict(counts, confidence=0.95).verdict == "Inconclusive"
    assert verdict(counts, replay_api.Replay(maxErrorRate=0.06), confidence=0.6).verdict == "Passing"


def test_no_captured_traffic_is_inconclusive_and_says_what_is_needed():
    status = verdict({})
    assert status.verdict == "Inconclusive" and status.requests == 0
    assert "no captured request answered by version 2" in status.message and "spec.logging" in status.message
    assert "could be replayed" in verdict({"skipped": 4}).message


def test_quality_against_feedback_is_reported_beside_the_verdict():
    status = verdict({"requests": 50, "compared": 50, "agreed": 45, "labeled": 20, "candidateScore": 18, "stableScore": 15})
    assert status.quality == replay_api.ReplayQuality(metric="accuracy", labeled=20, candidate=0.9, stable=0.75)
    assert "accuracy 0.9 against 0.75 for version 2 on 20 labeled requests" in status.message
    assert verdict({"requests": 50}).quality is None  # no feedback: no quality


def job(condition=None, reason=""):
    status = {"startTime": "2026-11-24T12:00:00Z"}
    if condition:
        status["conditions"] = [{"type": condition, "status": "True", "reason": reason, "message": "m"}]
    return {"metadata": {"name": "p-replay-v3-1"}, "status": status}


def pod(message):
    terminated = {"exitCode": 0, "message": message}
    return {
        "metadata": {"creationTimestamp": "1"},
        "status": {"containerStatuses": [{"name": "replay", "state": {"terminated": terminated}}]},
    }


def test_a_replay_job_answers_in_its_termination_message():
    answer = json.dumps({"requests": 10, "errors": 1, "compared": 9, "agreed": 9})
    assert replay.run(job(), [pod(answer)]) == replay.Run("Running")
    assert replay.run(job("Complete"), [pod(answer)]) == replay.Run(
        "Succeeded", result=result(requests=10, errors=1, compared=9, agreed=9)
    )
    failed = replay.run(job("Failed"), [pod(json.dumps({"error": "StorageError: s3://b/: access denied"}))])
    assert failed == replay.Run("Failed", message="StorageError: s3://b/: access denied")
    assert replay.run(job("Failed", "DeadlineExceeded"), []).message == "ran longer than 600 s"
    assert replay.run(job("Failed"), [pod("Traceback ...\nMemoryError")]).message == "MemoryError"
    assert replay.unanswered(3, "MemoryError") == replay_api.ReplayStatus(
        version=3, verdict="Inconclusive", message="the replay could not run: MemoryError"
    )


PROJECT = kinds.MLPROJECT.parse_spec(
    {
        "goal": {"description": "keep customers", "type": "Growth"},
        "problem": {"task": "classification", "target": "churned", "primaryMetric": "f1"},
        "data": {"uri": "file:///d.csv"},
        "storage": {"uri": "s3://models/churn/", "endpoint": "http://minio:9000", "credentialsSecret": "s3-creds"},
    }
)
MDEP = {
    "apiVersion": "mlkube.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "churn-prod", "namespace": "ml", "uid": "u-1"},
}


def test_the_replay_job_runs_in_the_tenant_namespace_without_a_token_and_with_credentials_by_reference():
    request = replay_manifests.replay_request(
        MDEP,
        replay_api.Replay(requests=500),
        storage=PROJECT.storage,
        stable=2,
        candidate=3,
        candidate_url="http://churn-prod-v3-predictor.ml",
        task="classification",
    )
    assert request == replay_api.ReplayRequest(
        capture=replay_api.Capture(
            uri="s3://models/churn", endpoint="http://minio:9000", namespace="ml", deployment="churn-prod", version=2, size=500
        ),
        candidate=replay_api.Candidate(version=3, url="http://churn-prod-v3-predictor.ml", model="churn-prod-v3"),
        metric="accuracy",
        timeoutSeconds=10.0,
        concurrency=8,
        budgetSeconds=300.0,
    )
    name = replay_manifests.job_name("churn-prod", candidate=3, since="2026-01-01T00:00:00Z")
    assert name.startswith("churn-prod-replay-v3-")
    assert name == replay_manifests.job_name("churn-prod", candidate=3, since="2026-01-01T00:00:00Z")
    assert name != replay_manifests.job_name("churn-prod", candidate=3, since="2026-01-02T00:00:00Z")  # a new rollout
    built = replay_manifests.replay_job(
        MDEP, request, name=name, project_name="churn", image="registry/mlkube:1", secret="s3-creds"
    )
    assert built["metadata"]["namespace"] == "ml" and built["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert built["spec"]["backoffLimit"] == 0 and built["spec"]["activeDeadlineSeconds"] == 600
    pod_spec = built["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "mlkube-trainer" and pod_spec["automountServiceAccountToken"] is False
    (container,) = pod_spec["containers"]
    assert (container["image"], container["command"]) == ("registry/mlkube:1", ["python", "-m", "mlkube.replay"])
    env = {e["name"]: e for e in container["env"]}
    assert replay_api.ReplayRequest.model_validate_json(env["MLKUBE_REPLAY_REQUEST"]["value"]) == request
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}
    assert not any("value" in e and "AWS" in e["name"] for e in container["env"])  # never a copied secret
    assert built["metadata"]["labels"]["app.kubernetes.io/component"] == "replay"
    assert replay_manifests.quality_metric("regression") == "mae" and replay_manifests.quality_metric("clustering") is None
