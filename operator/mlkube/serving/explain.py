"""Per-request feature attributions by mean substitution (occlusion against the reference).

Method: for each row and each feature, the feature's value is replaced by its reference
baseline (the mean of the version's `reference.parquet` column for numeric features, the most
frequent value for categorical and boolean ones) and the model is scored again. A feature's
attribution is `score(row) - score(row with that feature at its baseline)`: how much that
feature's actual value moved the score away from a typical value. The score is P(positive
class) for binary classifiers, P(the row's predicted class) for multiclass ones, the
predicted value for regressors, and for a model that answers records its last field: an anomaly
detector's score, a clustering's distance to the centre of the cluster the (perturbed) row falls
in. All perturbed rows go through the pipeline in one batch.

A text feature's baseline is the empty text, and its words are explained too: each of the
text's words is removed in turn (`text.term_variants`) and the drop of the score is that word's
contribution; `terms` lists, per text feature, the words that moved the score most.

This is model-agnostic and exact for what it measures, but it ignores interactions (the
attributions need not sum to `score - baseline score`). Must not: parse requests or know HTTP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlkube.ml.tasks import text
from mlkube.serving import schema

METHOD = "mean-substitution occlusion against the reference data"


def baselines(reference: pd.DataFrame, feature_schema: schema.FeatureSchema) -> dict[str, Any]:
    """The value each feature is set to when it is occluded; raises ValueError naming a missing column."""
    values = {}
    for feature in feature_schema.features:
        if feature.name not in reference.columns:
            raise ValueError(f"reference.parquet: no column '{feature.name}' for the featureSchema entry of that name")
        column = reference[feature.name].dropna()
        if column.empty:
            raise ValueError(f"reference.parquet: column '{feature.name}' has no values to take a baseline from")
        if feature.kind == "text":
            values[feature.name] = ""
        elif feature.kind == "numeric":
            values[feature.name] = float(column.mean())
        else:
            mode = column.mode().iloc[0]
            values[feature.name] = mode.item() if isinstance(mode, np.generic) else mode
    return values


class Explainer:
    """Occlusion attributions for a pipeline, a feature schema and per-feature baselines."""

    def __init__(
        self,
        pipeline: Any,
        *,
        is_classifier: bool,
        positive_index: int | None,
        baseline: dict[str, Any],
        text_features: tuple[str, ...] = (),
    ):
        self.pipeline = pipeline
        self.is_classifier = is_classifier
        self.positive_index = positive_index
        self.baseline = baseline
        self.text_features = text_features

    def explain(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One `{"score", "attributions": {feature: contribution}}` per row of `frame`, with
        `"terms": {text feature: [{"term", "contribution"}, ...]}` when the model reads text."""
        n, names = len(frame), list(frame.columns)
        batch = pd.concat([frame] * (len(names) + 1), ignore_index=True)
        for j, name in enumerate(names, start=1):
            kept = np.ones(len(batch), dtype=bool)
            kept[j * n : (j + 1) * n] = False
            # where() widens the column when the baseline needs it (an integer column's mean),
            # which assigning into a slice no longer does silently
            batch[name] = batch[name].where(kept, self.baseline[name])
        variants = self._term_variants(frame)
        if variants:
            batch = pd.concat([batch, *(copy for _, _, _, copy in variants)], ignore_index=True)
        origin = np.concatenate([np.tile(np.arange(n), len(names) + 1), [row for row, _, _, _ in variants]]).astype(int)
        scores = self._scores(batch, n, origin)
        occluded = scores[: (len(names) + 1) * n].reshape(len(names) + 1, n)
        actual = occluded[0]
        explanations = [
            {
                "score": float(actual[row]),
                "attributions": {name: float(actual[row] - occluded[j + 1, row]) for j, name in enumerate(names)},
            }
            for row in range(n)
        ]
        if self.text_features:
            contributions = {(row, name): {} for row in range(n) for name in self.text_features}
            position = (len(names) + 1) * n
            for row, name, term, _ in variants:
                contributions[(row, name)][term] = float(actual[row] - scores[position])
                position += 1
            for row, explanation in enumerate(explanations):
                explanation["terms"] = {name: text.top_terms(contributions[(row, name)]) for name in self.text_features}
        return explanations

    def _term_variants(self, frame: pd.DataFrame) -> list[tuple[int, str, str, pd.DataFrame]]:
        """`(row, feature, word, the row with that word removed)` for every word of every text feature."""
        found = []
        for name in self.text_features:
            for row in range(len(frame)):
                for term, without in text.term_variants(frame[name].iloc[row]):
                    copy = frame.iloc[[row]].copy()
                    copy.iloc[0, copy.columns.get_loc(name)] = without
                    found.append((row, name, term, copy))
        return found

    def _scores(self, batch: pd.DataFrame, n: int, origin: np.ndarray) -> np.ndarray:
        """The score of every row of `batch`; `origin[i]` is the row of the request that row i is a copy of."""
        if hasattr(self.pipeline, "records"):
            return np.asarray(list(self.pipeline.records(batch).values())[-1], dtype=float)
        if not self.is_classifier:
            return np.asarray(self.pipeline.predict(batch), dtype=float)
        proba = self.pipeline.predict_proba(batch)
        if proba.shape[1] == 2:
            return proba[:, 1 if self.positive_index is None else self.positive_index]
        # Multiclass: every copy of a row is scored on the class predicted for the original row.
        predicted = proba[:n].argmax(axis=1)
        return proba[np.arange(len(batch)), predicted[origin]]
