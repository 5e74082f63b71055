"""A model served only in batch is monitored too: a DriftMonitor whose batchPredictionRef names a
BatchPrediction analyses the rows that run scored (a sample of them, written in the inference-log
layout by the scoring pods) against the reference of the version the run scored with."""

from __future__ import annotations

from batch_helpers import bp, finished, replicated, write_csv

from localcluster import wait_for

ROWS = 2_000


def test_a_drift_monitor_of_a_batch_prediction_analyses_the_scored_rows(cluster, trained, rows_dir):
    namespace = trained["namespace"]
    write_csv(replicated(ROWS, seed=5), rows_dir / "monitored-in", files=1)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "nightly-drift"},
            "spec": {"batchPredictionRef": "nightly", "interval": "5s", "minSamples": 100, "window": {"size": 500}},
        },
        namespace,
    )
    cluster.apply(
        bp(
            "nightly",
            input_={"uri": f"{(rows_dir / 'monitored-in').as_uri()}/", "format": "csv"},
            output={"uri": f"{(rows_dir / 'monitored-out').as_uri()}/"},
            monitor={"driftMonitorRef": "nightly-drift"},
        ),
        namespace,
    )
    assert finished(cluster, "nightly", namespace)["phase"] == "Succeeded"

    def analysed():
        status = cluster.get("driftmonitor", "nightly-drift", namespace).get("status") or {}
        return status if status.get("samples") else None

    status = wait_for(analysed, 120, "the DriftMonitor to analyse the scored rows", interval=1)
    assert status["modelVersion"] == 1 and status["samples"] == 500, status
    assert status["phase"] in ("Healthy", "Drifting"), status  # replicated training rows: judged, whatever the verdict
    assert status["features"], "each feature was compared with the version's reference"
