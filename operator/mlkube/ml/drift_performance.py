"""Concept drift: the model's primary metric on labelled traffic against its test-set baseline.

Traffic that received ground truth (``__target__``) is scored with the same definitions as the
test set (``evaluation.scores``: binary metrics about the positive class, multiclass ones macro
averages), so "current" and "baseline" are comparable. Owns only the comparison; must not
load models or read files: the caller passes what was captured (labels or values, and the
class probabilities where the metric needs them: roc_auc, pr_auc, log_loss).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mlkube.api import base
from mlkube.ml import evaluation


@dataclasses.dataclass(frozen=True)
class PerformanceDrift:
    """The metric now and at training time; ``drop`` is positive when the model got worse."""

    metric: str
    baseline: float
    current: float | None
    drop: float | None
    max_drop: float
    samples: int
    drifted: bool
    note: str | None = None

    def to_status(self) -> dict[str, Any]:
        status = {"metric": self.metric, "baseline": self.baseline, "samples": self.samples, "drifted": self.drifted}
        if self.current is not None:
            status["current"] = float(f"{self.current:.4g}")
        return status


class _Recorded:
    """Captured predictions standing in for the model, so ``evaluation.scores`` scores them."""

    def __init__(self, labels: np.ndarray, probabilities: np.ndarray | None):
        self._labels = labels
        if probabilities is not None:
            self.predict_proba = lambda _features: probabilities

    def predict(self, _features: Any) -> np.ndarray:
        return self._labels


def performance(
    metric: str,
    y_true: Any,
    y_pred_or_proba: Any,
    *,
    baseline: float,
    max_drop: float,
    classes: list | None = None,
    positive_class: Any = None,
) -> PerformanceDrift:
    """Score labelled traffic on ``metric`` and compare with ``baseline`` (the model card's test value).

    ``y_pred_or_proba``: predicted labels (classification) or values (regression), or a 2-D array
    of class probabilities whose columns follow ``classes`` (the model card's ``classes``).
    ``positive_class`` defaults to the second class, as in training, and matches a class by its
    text as the project spec gives it ("1" names the class 1). Drifted when the metric
    worsened by more than ``max_drop`` (in the metric's units; lower-is-better metrics such as
    rmse count a rise as a drop). A metric undefined on these rows (one class only, roc_auc
    without probabilities) gives ``current=None`` and no verdict, with a note saying why.
    """
    y_true = np.asarray(y_true)
    predicted = np.asarray(y_pred_or_proba)
    if len(y_true) != len(predicted):
        raise ValueError(f"performance: {len(y_true)} targets but {len(predicted)} predictions; pass one per labelled request")
    if metric not in base.CLASSIFICATION_METRICS + base.REGRESSION_METRICS + base.FORECASTING_METRICS:
        raise ValueError(f"conceptDrift.metric: unknown metric {metric!r}")
    samples = len(y_true)
    current = _current_value(metric, y_true, predicted, classes, positive_class) if samples else None
    if current is None:
        note = (
            f"{metric} is undefined on {samples} labelled requests{'' if predicted.ndim == 2 else ' without class probabilities'}"
        )
        return PerformanceDrift(metric, baseline, None, None, max_drop, samples, False, note)
    drop = current - baseline if metric in base.LOWER_IS_BETTER else baseline - current
    return PerformanceDrift(metric, baseline, current, drop, max_drop, samples, drop > max_drop)


def _current_value(
    metric: str, y_true: np.ndarray, predicted: np.ndarray, classes: list | None, positive_class: Any
) -> float | None:
    if metric in ("smape", "mase"):  # forecasting's own; mase has no in-sample scale on traffic: undefined
        from mlkube.ml.tasks import forecasting

        naive = np.full(len(y_true), np.nan)
        return forecasting.metrics(y_true.astype(float), predicted.astype(float), naive_mae=naive).get(metric)
    if metric in base.REGRESSION_METRICS:
        task = evaluation.Task("regression")
        model = _Recorded(predicted.astype(float), None)
        return evaluation.scores(model, None, y_true.astype(float), task).get(metric)
    probabilities = None
    if predicted.ndim == 2:
        if classes is None or len(classes) != predicted.shape[1]:
            raise ValueError("performance: class probabilities need `classes` naming their columns, in order")
        probabilities = predicted
        predicted = np.asarray(classes)[predicted.argmax(axis=1)]
    found = tuple(np.unique(np.concatenate([y_true, predicted])))
    task_classes = tuple(classes) if classes is not None else found
    if positive_class is not None:
        positive = _class_named(positive_class, task_classes)
    else:
        positive = task_classes[1] if len(task_classes) == 2 else None
    task = evaluation.Task("classification", task_classes, positive)
    return evaluation.scores(_Recorded(predicted, probabilities), None, y_true, task).get(metric)


def _class_named(name: Any, classes: tuple) -> Any:
    for candidate in classes:
        if str(candidate) == str(name):
            return candidate
    raise ValueError(f"positiveClass: {name!r} is none of the classes {list(classes)}")
