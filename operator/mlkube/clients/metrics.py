"""The operator's Prometheus metrics: drift scores, dataset drift and model performance per monitor."""

from __future__ import annotations

from typing import Any

import prometheus_client

FEATURE_DRIFT = prometheus_client.Gauge(
    "mlkube_drift_feature_score", "Drift score of a feature on its method's scale", ["namespace", "monitor", "feature", "method"])
FEATURE_DRIFTED = prometheus_client.Gauge(
    "mlkube_drift_feature_drifted", "1 when the feature drifted", ["namespace", "monitor", "feature"])
DATASET_DRIFT = prometheus_client.Gauge("mlkube_drift_dataset", "1 when the dataset drifted", ["namespace", "monitor"])
DRIFT_SHARE = prometheus_client.Gauge("mlkube_drift_share", "Share of drifted features", ["namespace", "monitor"])
SAMPLES = prometheus_client.Gauge("mlkube_drift_samples", "Requests in the analysed window", ["namespace", "monitor"])
PERFORMANCE = prometheus_client.Gauge(
    "mlkube_model_performance", "Primary metric on labeled traffic", ["namespace", "monitor", "metric"])


def record_drift(namespace: str, monitor: str, result: dict[str, Any]) -> None:
    """Publish one analysis."""
    for feature in result.get("features", []):
        FEATURE_DRIFT.labels(namespace, monitor, feature["name"], feature.get("method", "")).set(feature["score"])
        FEATURE_DRIFTED.labels(namespace, monitor, feature["name"]).set(1 if feature.get("drifted") else 0)
    if result.get("datasetDrift") is not None:
        DATASET_DRIFT.labels(namespace, monitor).set(1 if result["datasetDrift"] else 0)
    if result.get("driftShare") is not None:
        DRIFT_SHARE.labels(namespace, monitor).set(result["driftShare"])
    SAMPLES.labels(namespace, monitor).set(result.get("samples") or 0)
    performance = result.get("performance") or {}
    if performance.get("current") is not None:
        PERFORMANCE.labels(namespace, monitor, performance["metric"]).set(performance["current"])


def serve(port: int) -> None:
    """Expose /metrics on ``port``."""
    prometheus_client.start_http_server(port)
