"""The operator's Prometheus metrics: drift scores, dataset drift and model performance per monitor."""

from __future__ import annotations

import prometheus_client

from mlkube.api import driftcheck

FEATURE_DRIFT = prometheus_client.Gauge(
    "mlkube_drift_feature_score", "Drift score of a feature on its method's scale", ["namespace", "monitor", "feature", "method"]
)
FEATURE_DRIFTED = prometheus_client.Gauge(
    "mlkube_drift_feature_drifted", "1 when the feature drifted", ["namespace", "monitor", "feature"]
)
DATASET_DRIFT = prometheus_client.Gauge("mlkube_drift_dataset", "1 when the dataset drifted", ["namespace", "monitor"])
DRIFT_SHARE = prometheus_client.Gauge("mlkube_drift_share", "Share of drifted features", ["namespace", "monitor"])
SAMPLES = prometheus_client.Gauge("mlkube_drift_samples", "Requests in the analysed window", ["namespace", "monitor"])
PERFORMANCE = prometheus_client.Gauge(
    "mlkube_model_performance", "Primary metric on labeled traffic", ["namespace", "monitor", "metric"]
)


def record_drift(namespace: str, monitor: str, result: driftcheck.DriftCheckResult) -> None:
    """Publish one analysis."""
    for feature in result.features or ():
        FEATURE_DRIFT.labels(namespace, monitor, feature.name, feature.method).set(feature.score)
        FEATURE_DRIFTED.labels(namespace, monitor, feature.name).set(1 if feature.drifted else 0)
    if result.dataset_drift is not None:
        DATASET_DRIFT.labels(namespace, monitor).set(1 if result.dataset_drift else 0)
    if result.drift_share is not None:
        DRIFT_SHARE.labels(namespace, monitor).set(result.drift_share)
    SAMPLES.labels(namespace, monitor).set(result.samples)
    performance = result.performance
    if performance is not None and performance.current is not None:
        PERFORMANCE.labels(namespace, monitor, performance.metric).set(performance.current)


def serve(port: int) -> None:
    """Expose /metrics on ``port``."""
    prometheus_client.start_http_server(port)
