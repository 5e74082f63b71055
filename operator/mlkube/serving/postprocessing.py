"""From a fitted pipeline's raw output to the prediction a client sees.

Owns: the ModelDeployment's `postprocessing` block (`{"threshold": 0.35, "labels": {"0": "stay",
"1": "churn"}}`): the decision threshold on the positive class's probability (binary classifiers
only), and the label names that replace raw class values in predictions and probability keys.
Classifiers call `predict_proba` once and derive the label from it, so a prediction costs one
pass through the pipeline. A model that answers records (a pipeline with `records(X)`, such as
anomaly detection's and clustering's, see `mlkube.api.predictions`) is asked for them once: each
row's prediction is its record, the labels are its first field, and the block must be empty.

Must not: parse requests, know about HTTP, or load artifacts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Postprocessing:
    """The `postprocessing` block of a ModelDeployment."""

    threshold: float | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | dict | None) -> Postprocessing:
        """Read the block from JSON text or a dict; raises ValueError naming the field."""
        if raw is None or raw == "":
            return cls()
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f'postprocessing: not valid JSON ({e}); expected e.g. {{"threshold": 0.35}}') from e
        if not isinstance(raw, dict):
            raise ValueError("postprocessing: expected an object with 'threshold' and/or 'labels'")
        unknown = sorted(set(raw) - {"threshold", "labels"})
        if unknown:
            raise ValueError(f"postprocessing.{unknown[0]}: unknown field; expected 'threshold' and/or 'labels'")
        threshold = raw.get("threshold")
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
                raise ValueError(f"postprocessing.threshold: expected a probability in [0, 1], got {threshold!r}")
            threshold = float(threshold)
        labels = raw.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError('postprocessing.labels: expected an object mapping class values to names, e.g. {"1": "churn"}')
        return cls(threshold=threshold, labels={str(k): v for k, v in labels.items()})


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the pipeline said about a batch of rows, ready for either protocol."""

    labels: list[Any]  # records: one {field: value} per row
    probabilities: list[dict[str, float]] | None  # classifiers: one {label name: p} per row
    class_names: list[str] | None
    probability_matrix: np.ndarray | None
    records: dict[str, list] | None = None  # records: the values of each field, in field order

    def split(self, counts: Sequence[int]) -> list[Prediction]:
        """The predictions of consecutive runs of `counts` rows (one per request of a batch)."""
        parts, start = [], 0
        for count in counts:
            end = start + count
            parts.append(
                Prediction(
                    labels=self.labels[start:end],
                    probabilities=self.probabilities[start:end] if self.probabilities is not None else None,
                    class_names=self.class_names,
                    probability_matrix=self.probability_matrix[start:end] if self.probability_matrix is not None else None,
                    records=None if self.records is None else {k: v[start:end] for k, v in self.records.items()},
                )
            )
            start = end
        return parts


class Decider:
    """Turns a pipeline's output into labelled predictions under a Postprocessing block."""

    def __init__(self, pipeline: Any, card: dict[str, Any], postprocessing: Postprocessing):
        problem = card.get("problem") or {}
        task = problem.get("task") or ("classification" if hasattr(pipeline, "predict_proba") else "regression")
        self.pipeline = pipeline
        self.answers_records = hasattr(pipeline, "records")
        self.is_classifier = task == "classification" and not self.answers_records
        self.postprocessing = postprocessing
        self.positive_index: int | None = None
        if self.answers_records and (postprocessing.threshold is not None or postprocessing.labels):
            field = "threshold" if postprocessing.threshold is not None else "labels"
            raise ValueError(f"postprocessing.{field} applies to classifiers; this {task} model answers {_fields(pipeline)}")
        if not self.is_classifier:
            if postprocessing.threshold is not None:
                raise ValueError("postprocessing.threshold applies to binary classifiers; this model is a regression")
            self.classes, self.class_names = None, None
            return
        classes = list(getattr(pipeline, "classes_", card.get("classes") or []))
        self.classes = [_native(c) for c in classes]
        self.class_names = [postprocessing.labels.get(str(c), str(c)) for c in self.classes]
        self._named = [postprocessing.labels.get(str(c), c) for c in self.classes]
        if postprocessing.threshold is not None:
            if len(self.classes) != 2:
                raise ValueError(
                    f"postprocessing.threshold applies to binary classifiers; this model has {len(self.classes)} classes"
                )
            positive = problem.get("positiveClass")
            matches = [i for i, c in enumerate(self.classes) if positive is not None and str(c) == str(positive)]
            self.positive_index = matches[0] if matches else 1

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict every row of `frame` with one pass through the pipeline."""
        decision = self.decide(frame)
        labels, proba = decision.labels, decision.probabilities
        if decision.records is not None:
            columns = {name: values.tolist() for name, values in decision.records.items()}
            rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
            return Prediction(labels=rows, probabilities=None, class_names=None, probability_matrix=None, records=columns)
        if proba is None:
            return Prediction(labels=labels.tolist(), probabilities=None, class_names=None, probability_matrix=None)
        names = self.class_names
        return Prediction(
            labels=labels.tolist(),
            probabilities=[dict(zip(names, row)) for row in proba.tolist()],
            class_names=names,
            probability_matrix=proba,
        )

    def decide(self, frame: pd.DataFrame) -> Decision:
        """What `predict` answers for every row of `frame`, as arrays, without a Python object per
        row (batch scoring builds its output columns from them)."""
        if self.answers_records:
            found = self.pipeline.records(frame)
            first = next(iter(found.values()))
            return Decision(np.asarray(first), None, None, {name: np.asarray(values) for name, values in found.items()})
        if not self.is_classifier:
            return Decision(np.asarray(self.pipeline.predict(frame)), None, None)
        proba = self.pipeline.predict_proba(frame)
        if self.positive_index is not None:
            positive = self.positive_index
            chosen = np.where(proba[:, positive] >= self.postprocessing.threshold, positive, 1 - positive)
        else:
            chosen = proba.argmax(axis=1)
        named = np.empty(len(self._named), dtype=object)
        named[:] = self._named
        return Decision(named[chosen], proba, chosen)


@dataclasses.dataclass(frozen=True)
class Decision:
    """A batch of rows decided: labels (after the threshold, with the label names), and for
    classifiers the probability matrix (columns in `Decider.class_names` order) and each row's
    class position in it."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    positions: np.ndarray | None
    records: dict[str, np.ndarray] | None = None  # models that answer records: every field; labels is the first


def _fields(pipeline: Any) -> str:
    return "{" + ", ".join(f'"{name}"' for name in getattr(pipeline, "record_fields", ())) + "} records"


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
