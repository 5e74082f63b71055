"""Batch scoring of one chunk of rows with a loaded model version: the model server's validation,
pipeline and postprocessing, answered as an Arrow table instead of an HTTP response.

`Scorer.score` validates the chunk with the server's rules (`columns.validate`), predicts the
accepted rows in one pass (`postprocessing.Decider.decide`, the same call the server's
`predict` makes) and builds the output rows: the passthrough columns, then what ``include``
asks for: ``prediction`` (the label after the threshold and label names, or the value),
``probability_<class>`` per class (classifiers), ``model_version``; a model that answers
records (anomaly detection, clustering) puts its first field in ``prediction`` and each other
field in ``prediction_<field>`` (``prediction_score``, ``prediction_distance``). A label column has one Arrow
type for the whole run, chosen from the classes: text, integers, booleans, or text when the
label names mix types.

Must not: read or write storage, or know about Kubernetes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlkube.api import batch
from mlkube.serving import columns, postprocessing, schema


@dataclasses.dataclass(frozen=True)
class Scored:
    """One chunk scored: the output rows, the refused rows, and what was predicted (for sampling)."""

    table: pa.Table
    failures: list[columns.RowFailure]
    frame: pd.DataFrame
    labels: np.ndarray
    probabilities: np.ndarray | None


class Scorer:
    """Scores chunks with one verified model version (``card`` and ``pipeline`` from ``mlkube.ml.artifacts.load``)."""

    def __init__(
        self,
        pipeline: Any,
        card: dict[str, Any],
        *,
        block: postprocessing.Postprocessing,
        output: batch.Output,
        version: int,
    ) -> None:
        self.schema = schema.FeatureSchema.from_card(card)
        self.decider = postprocessing.Decider(pipeline, card, block)
        self.output = output
        self.version = version
        self.label_type = _label_type(self.decider)

    @property
    def features(self) -> list[str]:
        return self.schema.names

    @property
    def classes(self) -> list[str] | None:
        """The class names of the probability columns (classifiers), in the pipeline's order."""
        return self.decider.class_names

    def score(self, chunk: pa.RecordBatch | pa.Table) -> Scored:
        """The output of ``chunk`` (which holds the features and the passthrough columns)."""
        validated = columns.validate(self.schema, {name: chunk.column(name) for name in self.features})
        if len(validated.frame):
            decision = self.decider.decide(validated.frame)
        elif self.decider.answers_records:
            fields = self.decider.pipeline.record_fields
            decision = postprocessing.Decision(np.array([], dtype=np.int64), None, None, {f: np.array([]) for f in fields})
        else:
            empty = np.empty((0, len(self.classes))) if self.decider.is_classifier else None
            decision = postprocessing.Decision(np.array([], dtype=object), empty, np.array([], dtype=np.int64))
        mask = pa.array(validated.accepted)
        out: dict[str, pa.Array] = {name: pc.filter(chunk.column(name), mask) for name in self.output.passthrough}
        include = set(self.output.include)
        if "prediction" in include:
            out[batch.OUTPUT_COLUMNS["prediction"]] = self._labels(decision)
            for name, values in list((decision.records or {}).items())[1:]:
                out[f"{batch.OUTPUT_COLUMNS['prediction']}_{name}"] = pa.array(values, pa.float64())
        if "probabilities" in include and decision.probabilities is not None:
            for position, name in enumerate(self.classes):
                out[batch.PROBABILITY_PREFIX + name] = pa.array(decision.probabilities[:, position], pa.float64())
        if "modelVersion" in include:
            out[batch.OUTPUT_COLUMNS["modelVersion"]] = pa.array(np.full(len(decision.labels), self.version), pa.int64())
        return Scored(pa.table(out), validated.failures, validated.frame, decision.labels, decision.probabilities)

    def _labels(self, decision: postprocessing.Decision) -> pa.Array:
        """The prediction column, of the run's label type: classes are taken from the few label
        values by position (no Python object per row), values are converted as they are."""
        if decision.positions is None:
            return pa.array(decision.labels, self.label_type)
        named = [self.decider.postprocessing.labels.get(str(c), c) for c in self.decider.classes]
        if pa.types.is_string(self.label_type):
            named = [v if isinstance(v, str) else str(v) for v in named]
        values = pa.array(named, self.label_type)
        return values.take(pa.array(decision.positions, pa.int64()))


def _label_type(decider: postprocessing.Decider) -> pa.DataType:
    """One Arrow type for the prediction column of a run."""
    if decider.answers_records:
        return pa.int64()  # the anomaly flag or the cluster id
    if not decider.is_classifier:
        return pa.float64()
    named = [decider.postprocessing.labels.get(str(c), c) for c in decider.classes]
    kinds = {type(v) for v in named}
    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()
