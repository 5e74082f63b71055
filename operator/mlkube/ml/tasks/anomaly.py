"""Anomaly detection (`problem.task: anomaly_detection`): the candidates, the fitted detector that
answers `{"anomaly": 0|1, "score": s}`, its threshold and its metrics.

Candidates: isolation_forest, local_outlier_factor (novelty mode, so it scores rows it did not
see), one_class_svm (on standard-scaled features whatever `preprocessing.scale` says: its RBF
kernel needs them) and robust_covariance (EllipticEnvelope). Each detector's own
`score_samples` (higher = more normal) is negated into a raw anomaly score, then squashed into
the served `score = expit(asinh((raw - threshold) / spread))`, spread = the interquartile range of
the training rows' raw scores: increasing in the raw score, in [0, 1], and exactly 0.5 at the
threshold, so `anomaly` is 1 exactly when `score >= 0.5`. asinh keeps far outliers apart (local
outlier factors reach 1e10 on duplicated rows), so ranks are kept until |raw - threshold| nears
1e16 spreads. The
threshold is the (1 - contamination) quantile of the training rows' raw scores when
`problem.contamination` is set; else, with a label column, the raw score that maximises f1 on the
validation labels; else the DEFAULT_CONTAMINATION quantile.

Metrics: `anomaly_rate` (share flagged) always; with labels (1 = anomaly) `roc_auc`, `pr_auc`
(average precision) on the scores, `f1` on the flags, and `precision_at_k`/`recall_at_k` of the k
highest scores, k = contamination x rows when contamination is set, else the number of labelled
anomalies among the rows. A metric undefined on the rows (one class only) is left out.

Pure: estimators and arrays in, numbers out; no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special
from sklearn import base, covariance, ensemble, neighbors, pipeline, preprocessing, svm
from sklearn import metrics as skm

from mlkube.api import predictions

DEFAULT_CONTAMINATION = 0.05
FIELDS = predictions.FIELDS["anomaly_detection"]

# name: (estimator class, fixed defaults, default search space)
REGISTRY: dict[str, tuple[type, dict[str, Any], dict[str, Any]]] = {
    "isolation_forest": (ensemble.IsolationForest, {"n_jobs": 1}, {"n_estimators": [100, 200]}),
    "local_outlier_factor": (neighbors.LocalOutlierFactor, {"novelty": True, "n_jobs": 1}, {"n_neighbors": [20, 50]}),
    "one_class_svm": (svm.OneClassSVM, {}, {"nu": [0.05, 0.2]}),
    "robust_covariance": (covariance.EllipticEnvelope, {}, {}),
}


def build(name: str, params: dict[str, Any], *, seed: int) -> Any:
    """The unfitted detector `name` at `params` (registry defaults first; seeded where it takes a seed)."""
    cls, defaults, _ = REGISTRY[name]
    settings = dict(defaults)
    if "random_state" in cls().get_params():
        settings["random_state"] = seed
    settings.update(params)
    detector = cls(**settings)
    if name == "one_class_svm":
        return pipeline.make_pipeline(preprocessing.StandardScaler(), detector)
    return detector


class AnomalyDetector(base.BaseEstimator):
    """A detector with its threshold: `records(X)` answers `{"anomaly": 0|1, "score": s}` per row.

    `contamination` None keeps DEFAULT_CONTAMINATION until `use_labels` moves the threshold."""

    record_fields = FIELDS

    def __init__(self, detector: Any = None, contamination: float | None = None):
        self.detector = detector
        self.contamination = contamination

    def fit(self, X, y=None) -> AnomalyDetector:
        self.detector_ = base.clone(self.detector).fit(X)
        raw = self.raw_scores(X)
        low, high = np.quantile(raw, [0.25, 0.75])
        spread = float(high - low) or float(np.std(raw))
        self.spread_ = spread if spread > 0 else 1.0
        self.threshold_ = float(np.quantile(raw, 1.0 - (self.contamination or DEFAULT_CONTAMINATION)))
        return self

    def raw_scores(self, X) -> np.ndarray:
        """The detector's own anomaly score (negated `score_samples`): higher = more anomalous."""
        return -np.asarray(self.detector_.score_samples(X), dtype=float)

    def use_labels(self, X, y) -> AnomalyDetector:
        """Move the threshold to the raw score that maximises f1 on labelled rows `X`, `y` (1 = anomaly);
        unchanged when `y` holds a single class."""
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            return self
        precision, recall, thresholds = skm.precision_recall_curve(y, self.raw_scores(X))
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        self.threshold_ = float(thresholds[int(np.argmax(f1[:-1]))])
        return self

    def anomaly_scores(self, X) -> np.ndarray:
        """The served score: in [0, 1], increasing with the raw score, 0.5 at the threshold."""
        return special.expit(np.arcsinh((self.raw_scores(X) - self.threshold_) / self.spread_))

    def predict(self, X) -> np.ndarray:
        """1 for an anomaly, 0 otherwise."""
        return (self.anomaly_scores(X) >= 0.5).astype(int)

    def records(self, X) -> dict[str, np.ndarray]:
        score = self.anomaly_scores(X)
        return {"anomaly": (score >= 0.5).astype(int), "score": score}


def scores(score: np.ndarray, flagged: np.ndarray, y: Any = None, *, contamination: float | None = None) -> dict[str, float]:
    """The metrics of served `score`s and `flagged` (0/1) against labels `y` (1 = anomaly; None: no labels)."""
    found = {"anomaly_rate": float(np.mean(flagged)) if len(flagged) else float("nan")}
    if y is None or len(y) == 0:
        return found
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) == 2:
        found["roc_auc"] = float(skm.roc_auc_score(y, score))
        found["pr_auc"] = float(skm.average_precision_score(y, score))
    if y.sum() > 0:
        found["f1"] = float(skm.f1_score(y, flagged, zero_division=0))
        k = int(round(contamination * len(y))) if contamination else int(y.sum())
        k = max(1, min(k, len(y)))
        top = np.argsort(-score, kind="stable")[:k]
        found["precision_at_k"] = float(y[top].sum() / k)
        found["recall_at_k"] = float(y[top].sum() / y.sum())
    return {name: value for name, value in found.items() if np.isfinite(value)}


def performance(
    metric: str, truth: Any, served: list[dict[str, Any]], *, baseline: float, max_drop: float, contamination: float | None
):
    """Concept drift of a detector: `metric` on labelled traffic (`truth`, 1 = anomaly; `served`, the
    records it answered) against `baseline`, the test value in its model card. A metric undefined
    on these rows (one class only) gives no verdict, with a note saying why."""
    from mlkube.ml import drift_performance

    y = np.asarray([int(float(t)) for t in truth])
    score = np.asarray([float(r.get("score", np.nan)) if isinstance(r, dict) else np.nan for r in served])
    flagged = np.asarray([int(r.get("anomaly", 0)) if isinstance(r, dict) else 0 for r in served])
    known = np.isfinite(score)
    current = scores(score[known], flagged[known], y[known], contamination=contamination).get(metric)
    samples = int(known.sum())
    if current is None:
        note = f"{metric} is undefined on {samples} labelled requests (it needs both anomalies and normal rows)"
        return drift_performance.PerformanceDrift(metric, baseline, None, None, max_drop, samples, False, note)
    drop = baseline - current  # every anomaly metric but anomaly_rate is higher-is-better
    return drift_performance.PerformanceDrift(metric, baseline, current, drop, max_drop, samples, drop > max_drop)
