"""The drift worker's request: built from the DriftMonitor, its project's storage and the served version, no I/O;
the worker reads it back with the same model (``api.driftcheck``)."""

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
        "digest": "sha256:x",
    }
)


def request(**spec):
    body = {"metadata": {"name": "churn-drift", "namespace": "ml"}, "spec": {"deploymentRef": "churn-prod", **spec}}
    built = drift.drift_request(
        body, kinds.DRIFTMONITOR.parse_spec(body["spec"]), storage=STORAGE, entry=ENTRY, primary_metric="roc_auc", now=NOW
    )
    return built.wire()


def test_stable_scope_reads_the_served_versions_window_and_writes_a_timestamped_report():
    built = request(window={"size": 500, "duration": "2h"}, minSamples=100)
    assert built["reference"] == {"uri": "s3://models/churn/runs/v3/", "endpoint": "http://minio:9000"}
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
