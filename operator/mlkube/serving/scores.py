"""The probabilities a classifier version served: what a label-free performance estimate needs.

Owns reading a successful predict's response body for its class probabilities (KServe V1:
``predictions`` beside ``probabilities``, one ``{label: p}`` per row; V2: the ``predict`` output
beside the ``probabilities`` output, shape [rows, classes], with the class names in its
``parameters.classes``) and adding them to a version's ``Scores``:

- ``scored``: rows read; ``confidence_sum``: the sum over them of the probability of the class the
  version predicted (the row's ``predictions`` entry; the highest probability when the label is not
  among the classes). Its mean is the accuracy expected of calibrated probabilities.
- for two-class rows, a histogram of the probability of the second class (in the response's class
  order): ``BINS`` bins of equal width over [0, 1], with the count and the sum of the
  probabilities in each bin. ROC AUC does not depend on which class is called positive, so any
  fixed one will do. Rows with more classes add to ``scored`` and ``confidence_sum`` only.

Labels (``/v1/feedback``) for a single-row two-class answer add to a second histogram over the same
bins: ``labeled_counts`` rows and ``labeled_positives`` of them whose ground truth is the second
class (``labeled``), so the analysis can measure the ROC AUC that was realised, up to ties within a
bin.

Cumulative, like every router counter: the analysis judges the difference over its window. Memory
is fixed (two lists of ``BINS`` numbers per version) whatever the traffic.

The router calls ``observe`` only for the versions its routing table names (``scores``), so the
request path of a table without them reads no body. A body without probabilities (a regressor,
an error) adds nothing.

Must not: do I/O or know about HTTP.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import orjson

BINS = 100
MAX_BODY_BYTES = 1024 * 1024  # a larger answer is a big batch: not worth parsing on the request path


@dataclasses.dataclass
class Scores:
    """One version's served probabilities so far."""

    scored: int = 0
    confidence_sum: float = 0.0
    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * BINS)
    sums: list[float] = dataclasses.field(default_factory=lambda: [0.0] * BINS)
    labeled_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * BINS)
    labeled_positives: list[int] = dataclasses.field(default_factory=lambda: [0] * BINS)

    def add(self, *, confidence: float, positive: float | None) -> None:
        """One row: the probability of its predicted class, and of the positive class (two classes only)."""
        self.scored += 1
        self.confidence_sum += confidence
        if positive is not None:
            b = _bin(positive)
            self.counts[b] += 1
            self.sums[b] += positive

    def add_label(self, *, positive: float, is_positive: bool) -> None:
        """One labeled two-class row: its positive-class probability and whether its truth is that class."""
        b = _bin(positive)
        self.labeled_counts[b] += 1
        self.labeled_positives[b] += int(is_positive)

    def as_json(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "confidenceSum": self.confidence_sum,
            "bins": list(self.counts),
            "binSums": list(self.sums),
            "labeledBins": list(self.labeled_counts),
            "labeledPositives": list(self.labeled_positives),
        }


def observe(scores: Scores, body: bytes) -> int:
    """Add the rows of a predict response ``body`` to ``scores``; the number of rows added."""
    if len(body) > MAX_BODY_BYTES:
        return 0
    rows = rows_of(body)
    for confidence, positive in rows:
        scores.add(confidence=confidence, positive=positive)
    return len(rows)


def label(scores: Scores, body: bytes, truth: Any) -> bool:
    """Add a ground truth for a single-row two-class answer ``body``; False when it is not one, or
    ``truth`` names neither class."""
    found = labeled_row(body, truth)
    if found is not None:
        scores.add_label(positive=found[0], is_positive=found[1])
    return found is not None


def labeled_row(body: bytes, truth: Any) -> tuple[float, bool] | None:
    """(probability of the second class, whether ``truth`` is the second class) of an answer with
    one two-class row; None otherwise or when ``truth`` is neither class."""
    if truth is None or len(body) > MAX_BODY_BYTES:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    classes, row = _single_row(doc) if isinstance(doc, dict) else (None, None)
    if classes is None or len(classes) != 2 or not all(_is_probability(v) for v in row):
        return None
    text = _label_text(truth)
    if text not in classes:
        return None
    return float(row[1]), text == classes[1]


def _single_row(doc: dict[str, Any]) -> tuple[list[str] | None, list[Any] | None]:
    """(class names, probabilities) of a V1 or V2 answer holding exactly one row."""
    probabilities = doc.get("probabilities")
    if isinstance(probabilities, list):
        if len(probabilities) == 1 and isinstance(probabilities[0], dict):
            return list(probabilities[0].keys()), list(probabilities[0].values())
        return None, None
    outputs = doc.get("outputs") if isinstance(doc.get("outputs"), list) else []
    matrix = next((o for o in outputs if isinstance(o, dict) and o.get("name") == "probabilities"), None)
    if matrix is None or matrix.get("shape") != [1, 2] or not isinstance(matrix.get("data"), list):
        return None, None
    try:
        classes = orjson.loads((matrix.get("parameters") or {}).get("classes") or "null")
    except (orjson.JSONDecodeError, TypeError):
        return None, None
    if not isinstance(classes, list) or len(classes) != 2:
        return None, None
    return [str(c) for c in classes], matrix["data"]


def rows_of(body: bytes) -> list[tuple[float, float | None]]:
    """(probability of the predicted class, probability of the positive class or None) per row of a
    V1 or V2 predict response; [] when it holds no probabilities."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(doc, dict):
        return []
    if "probabilities" in doc:
        return _v1(doc.get("predictions"), doc["probabilities"])
    outputs = doc.get("outputs")
    if isinstance(outputs, list):
        return _v2(outputs)
    return []


def _v1(predictions: Any, probabilities: Any) -> list[tuple[float, float | None]]:
    if not isinstance(probabilities, list) or not isinstance(predictions, list) or len(predictions) != len(probabilities):
        return []
    rows = []
    for predicted, row in zip(predictions, probabilities):
        if not isinstance(row, dict) or not row:
            continue
        values = list(row.values())
        label = _label_text(predicted)
        row_scores = _row(values, row.get(label) if label is not None else None)
        if row_scores is not None:
            rows.append(row_scores)
    return rows


def _v2(outputs: list[Any]) -> list[tuple[float, float | None]]:
    named = {o.get("name"): o for o in outputs if isinstance(o, dict)}
    matrix, predict = named.get("probabilities"), named.get("predict")
    if matrix is None:
        return []
    shape, data = matrix.get("shape"), matrix.get("data")
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(data, list)):
        return []
    n, k = shape
    if not (isinstance(n, int) and isinstance(k, int) and k >= 1 and len(data) == n * k):
        return []
    try:
        classes = orjson.loads((matrix.get("parameters") or {}).get("classes") or "null")
    except (orjson.JSONDecodeError, TypeError):
        classes = None
    labels = predict.get("data") if isinstance(predict, dict) else None
    position = {str(c): i for i, c in enumerate(classes)} if isinstance(classes, list) and len(classes) == k else {}
    rows = []
    for i in range(n):
        values = data[i * k : (i + 1) * k]
        label = labels[i] if isinstance(labels, list) and len(labels) == n else None
        j = position.get(_label_text(label))
        row_scores = _row(values, values[j] if j is not None else None)
        if row_scores is not None:
            rows.append(row_scores)
    return rows


def _row(values: list[Any], predicted: Any) -> tuple[float, float | None] | None:
    """The row's scores, or None when its probabilities are not numbers within [0, 1]."""
    if not all(_is_probability(v) for v in values):
        return None
    confidence = float(predicted) if _is_probability(predicted) else float(max(values))
    return confidence, (float(values[1]) if len(values) == 2 else None)


def _is_probability(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _bin(probability: float) -> int:
    return min(int(probability * BINS), BINS - 1)


def _label_text(label: Any) -> str | None:
    """A label as the key of its class: the model server names classes ``str(value)`` (``1`` -> "1")."""
    return None if label is None else str(label)
