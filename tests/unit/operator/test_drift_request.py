"""The drift check's request and Job: built from the DriftMonitor, its project's storage and the served version
(pinned to its registered digest), no I/O; the check reads the request back with the same model (``api.driftcheck``).
The Job runs in the monitor's namespace under the token-less trainers' ServiceAccount, with the project's
credentials by reference only."""

from __future__ import annotations

import datetime

from mlkube.api import driftcheck, kinds, project
from mlkube.control.manifests import drift

NOW = datetime.datetime(2026, 11, 24, 12, 0, 0, tzinfo=datetime.UTC)
STORAGE = project.Storage.model_validate({"uri": "s3://models/churn/", "endpoint": "http://minio:9000"})
ENTRY = project.ModelEntry.model_validate(
    {
        "version": 3,
        "artifactUri": "s3://models/churn/runs/v3/",
        "trainingJob": "churn-3",
        "createdAt": "2026-11-20T00:00:00Z",
        "digest": "sha256:" + "ab" * 32,
    }
)


def monitor(status=None, generation=1, **spec):
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "churn-drift", "namespace": "ml", "uid": "d", "generation": generation},
        "spec": {"deploymentRef": "churn-prod", **spec},
        **({"status": status} if status else {}),
    }


def request(storage=STORAGE, **spec):
    body = monitor(**spec)
    built = drift.drift_request(
        body, kinds.DRIFTMONITOR.parse_spec(body["spec"]), storage=storage, entry=ENTRY, primary_metric="roc_auc", now=NOW
    )
    return built.wire()


def test_stable_scope_reads_the_served_versions_window_and_writes_a_timestamped_report():
    built = request(window={"size": 500, "duration": "2h"}, minSamples=100)
    assert built["reference"] == {"uri": "s3://models/churn/runs/v3/", "endpoint": "http://minio:9000", "digest": ENTRY.digest}
    assert built["traffic"] == {
        "uri": "s3://models/churn",
        "endpoint": "http://minio:9000",
        "namespace": "ml",
        "deployment": "churn-prod",
        "versions": [3],
        "size": 500,
        "since": "2026-11-24T10:00:00Z",
    }
    assert built["minSamples"] == 100
    assert built["report"] == {"uri": "s3://models/churn/reports/ml/churn-drift/20261124T120000Z.html"}


def test_all_scope_reads_every_version_and_concept_drift_defaults_to_the_primary_metric():
    built = request(scope="all", conceptDrift={"maxDrop": 0.1})
    assert "versions" not in built["traffic"]
    assert built["conceptDrift"] == {"metric": "roc_auc", "maxDrop": 0.1, "minLabeled": 50}
    assert request(conceptDrift={"metric": "f1"})["conceptDrift"]["metric"] == "f1"


def test_the_analysis_options_are_the_monitors_with_their_defaults_declared_once():
    built = request(dataDrift={"method": "ks", "threshold": 0.01}, explainability={"topK": 3})
    assert built["dataDrift"] == {"method": "ks", "threshold": 0.01, "datasetShare": 0.5}
    assert built["predictionDrift"] == {"method": "psi"}
    assert built["explainability"] == {"enabled": True, "topK": 3}


def test_the_worker_reads_the_wire_form_back_into_the_same_request():
    built = request(scope="all", dataDrift={"method": "psi"})
    parsed = driftcheck.DriftCheckRequest.model_validate(built)
    assert parsed.wire() == built
    assert parsed.traffic.versions is None and parsed.data_drift.dataset_share == 0.5
    assert parsed.concept_drift.min_labeled == 50 and parsed.prediction_drift.threshold is None


def test_the_result_of_an_insufficient_window_carries_only_its_phase_samples_and_summary():
    wire = {"phase": "InsufficientData", "samples": 40, "summary": "40 captured requests in the window; 100 are needed"}
    assert driftcheck.DriftCheckResult.model_validate(wire).wire() == wire


def test_the_default_credential_chain_is_used_only_when_the_project_opts_in_without_a_secret():
    assert request()["defaultCredentials"] is False
    opted = STORAGE.model_copy(update={"use_default_credentials": True})
    assert request(storage=opted)["defaultCredentials"] is True
    with_secret = opted.model_copy(update={"credentials_secret": "s3"})
    assert request(storage=with_secret)["defaultCredentials"] is False, "a Secret's keys are the project's credentials"


def test_the_check_job_runs_token_less_in_the_monitors_namespace_with_credentials_by_reference():
    body = monitor()
    parsed = driftcheck.DriftCheckRequest.model_validate(request())
    job = drift.check_job(
        body,
        parsed,
        name="churn-drift-check-1",
        checked_at="2026-11-24T12:00:00Z",
        project_name="churn",
        image="img:1",
        secret="s3",
    )
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == ("churn-drift-check-1", "ml")
    assert job["metadata"]["ownerReferences"][0]["name"] == "churn-drift"
    assert job["metadata"]["annotations"] == {"mlkube.io/check-time": "2026-11-24T12:00:00Z"}
    assert job["metadata"]["labels"].items() >= drift.check_labels(body).items()
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == drift.TTL_SECONDS
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mlkube-trainer" and pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "mlkube.driftcheck"] and container["image"] == "img:1"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    env = {e["name"]: e for e in container["env"]}
    assert driftcheck.DriftCheckRequest.model_validate_json(env[driftcheck.REQUEST_ENV]["value"]) == parsed
    assert env["AWS_ACCESS_KEY_ID"] == {
        "name": "AWS_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "s3", "key": "AWS_ACCESS_KEY_ID"}},
    }
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"], "the operator never copies the Secret's values"
    bare = drift.check_job(body, parsed, name="n", checked_at="t", project_name="churn", image="img:1", secret=None)
    assert [e["name"] for e in bare["spec"]["template"]["spec"]["containers"][0]["env"]] == [driftcheck.REQUEST_ENV]


def test_one_check_job_name_per_generation_served_version_and_last_check():
    first = drift.check_job_name(monitor(), version=3)
    assert first == drift.check_job_name(monitor(), version=3), "a retried pass finds the Job an earlier one created"
    assert first.startswith("churn-drift-check-") and len(first) <= 63
    others = {
        drift.check_job_name(monitor(generation=2), version=3),
        drift.check_job_name(monitor(), version=4),
        drift.check_job_name(monitor({"lastCheckTime": "2026-11-24T12:00:00Z"}), version=3),
    }
    assert first not in others and len(others) == 3
