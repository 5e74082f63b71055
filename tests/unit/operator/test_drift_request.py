"""The drift worker's request: built from the DriftMonitor, its deployment and the served version, no I/O."""

from __future__ import annotations

import datetime

from mlkube.api import kinds, project
from mlkube.control.manifests import drift

NOW = datetime.datetime(2026, 11, 24, 12, 0, 0, tzinfo=datetime.UTC)
STORAGE = project.Storage.model_validate({"uri": "s3://models/churn/", "endpoint": "http://minio:9000"})
ENTRY = {"version": 3, "artifactUri": "s3://models/churn/runs/v3/"}


def monitor(**spec):
    body = {"metadata": {"name": "churn-drift", "namespace": "ml"}, "spec": {"deploymentRef": "churn-prod", **spec}}
    return body, kinds.DRIFTMONITOR.parse_spec(body["spec"])


def request(**spec):
    dmon, parsed = monitor(**spec)
    return drift.drift_request(dmon, parsed, mdep={"metadata": {"name": "churn-prod"}}, storage=STORAGE, entry=ENTRY,
                               primary_metric="roc_auc", now=NOW)


def test_stable_scope_reads_the_served_versions_window_and_writes_a_timestamped_report():
    built = request(window={"size": 500, "duration": "2h"}, minSamples=100)
    assert built["reference"] == {"uri": "s3://models/churn/runs/v3/", "endpoint": "http://minio:9000"}
    assert built["traffic"] == {"uri": "s3://models/churn", "endpoint": "http://minio:9000", "namespace": "ml",
                                "deployment": "churn-prod", "versions": [3], "size": 500, "since": "2026-11-24T10:00:00Z"}
    assert built["minSamples"] == 100
    assert built["report"] == {"uri": "s3://models/churn/reports/ml/churn-drift/20261124T120000Z.html"}


def test_all_scope_reads_every_version_and_concept_drift_defaults_to_the_primary_metric():
    built = request(scope="all", conceptDrift={"maxDrop": 0.1})
    assert built["traffic"]["versions"] is None
    assert built["conceptDrift"] == {"metric": "roc_auc", "maxDrop": 0.1, "minLabeled": 50}
    assert request(conceptDrift={"metric": "f1"})["conceptDrift"]["metric"] == "f1"
