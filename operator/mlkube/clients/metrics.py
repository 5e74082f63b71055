"""The operator's Prometheus metrics: drift per monitor, training runs per project, rollouts per deployment.

The reconcilers record what a pass did after it was executed (the status transition it wrote,
the Events it posted), never from inside a plan; this module only keeps the series. What each
series means, and the alert rules and dashboard built on them, are in docs/monitoring.md.
"""

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
DRIFTING = prometheus_client.Gauge(
    "mlkube_drift_detected",
    "1 when the latest analysis found drift (data, prediction or performance): the monitor's phase is Drifting",
    ["namespace", "monitor"],
)

TRAINING_RUNS = prometheus_client.Counter(
    "mlkube_training_runs",
    "TrainingJobs that entered a phase (Running, Succeeded, Failed)",
    ["namespace", "project", "phase"],
)
TRAINING_DURATION = prometheus_client.Histogram(
    "mlkube_training_duration_seconds",
    "Wall time of finished TrainingJobs, from the trainer's start to its end, by outcome",
    ["namespace", "project", "phase"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, float("inf")),
)
PROMOTIONS = prometheus_client.Counter(
    "mlkube_rollout_promotions", "Candidate versions promoted to stable", ["namespace", "deployment"]
)
ROLLBACKS = prometheus_client.Counter(
    "mlkube_rollout_rollbacks",
    "Rollouts ended by a rollback (a failed analysis, a version that cannot load, an abort)",
    ["namespace", "deployment"],
)
TRAFFIC = prometheus_client.Gauge(
    "mlkube_rollout_traffic_percent",
    "Percent of requests the router's table sends to a version (shadow: the mirrored percent)",
    ["namespace", "deployment", "version", "role"],
)
VERDICT = prometheus_client.Gauge(
    "mlkube_rollout_analysis_verdict",
    "1 for the current analysis verdict, 0 for the others",
    ["namespace", "deployment", "verdict"],
)
PHASE = prometheus_client.Gauge(
    "mlkube_rollout_phase", "1 for the ModelDeployment's phase, 0 for the others", ["namespace", "deployment", "phase"]
)

TRAINING_PHASES = ("Running", "Succeeded", "Failed")
VERDICTS = ("Passing", "Failing", "Inconclusive")
DEPLOYMENT_PHASES = ("Pending", "Progressing", "Healthy", "Degraded", "RolledBack", "Paused")
_traffic_series: dict[tuple[str, str], set[tuple[str, str]]] = {}


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
    DRIFTING.labels(namespace, monitor).set(1 if result.phase == "Drifting" else 0)
    performance = result.performance
    if performance is not None and performance.current is not None:
        PERFORMANCE.labels(namespace, monitor, performance.metric).set(performance.current)


def record_training(namespace: str, project: str, phase: str, *, seconds: float | None = None) -> None:
    """A TrainingJob of ``project`` entered ``phase``; ``seconds``: how long a finished one ran."""
    if phase not in TRAINING_PHASES:
        return
    TRAINING_RUNS.labels(namespace, project, phase).inc()
    if seconds is not None and phase != "Running":
        TRAINING_DURATION.labels(namespace, project, phase).observe(max(seconds, 0.0))


def record_rollout_event(namespace: str, deployment: str, reason: str) -> None:
    """Count a promotion or a rollback, from the Event the pass posted."""
    if reason == "Promoted":
        PROMOTIONS.labels(namespace, deployment).inc()
    elif reason == "RolledBack":
        ROLLBACKS.labels(namespace, deployment).inc()


def record_rollout_state(
    namespace: str,
    deployment: str,
    *,
    phase: str | None,
    verdict: str | None,
    traffic: list[tuple[int, str, int]],
) -> None:
    """The deployment's state after a pass: its phase and verdict (one series each at 1, the others
    at 0), and the traffic table as (version, role, percent); versions that left the table are
    removed, so a panel shows only what is routed."""
    for known in DEPLOYMENT_PHASES:
        PHASE.labels(namespace, deployment, known).set(1 if known == phase else 0)
    for known in VERDICTS:
        VERDICT.labels(namespace, deployment, known).set(1 if known == verdict else 0)
    current = {(str(version), role) for version, role, _ in traffic}
    for version, role in _traffic_series.get((namespace, deployment), set()) - current:
        TRAFFIC.remove(namespace, deployment, version, role)
    for version, role, percent in traffic:
        TRAFFIC.labels(namespace, deployment, str(version), role).set(percent)
    _traffic_series[namespace, deployment] = current


def forget_deployment(namespace: str, deployment: str) -> None:
    """Drop the state series of a deleted ModelDeployment (its counters stay until restart, as
    counters of a finished thing do)."""
    for known in DEPLOYMENT_PHASES:
        _remove(PHASE, namespace, deployment, known)
    for known in VERDICTS:
        _remove(VERDICT, namespace, deployment, known)
    for version, role in _traffic_series.pop((namespace, deployment), set()):
        _remove(TRAFFIC, namespace, deployment, version, role)


def _remove(metric: prometheus_client.Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass  # never set


def serve(port: int) -> None:
    """Expose /metrics on ``port``."""
    prometheus_client.start_http_server(port)
