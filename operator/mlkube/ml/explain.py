"""Feature importance of a fitted pipeline: permutation importance on held-out rows.

Each raw feature column is shuffled in turn and the drop of the primary metric is measured, so
the importance is about the columns a user knows (not one-hot or PCA outputs) and about rows
the model did not train on. Negative drops (noise) count as zero; the result is normalised to
sum to 1. Every shuffled copy is scored in ONE prediction call: a pipeline's fixed cost per call
(validation, column routing) would otherwise dominate on small holdouts. Pure computation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlkube.ml import evaluation

REPEATS = 3
# rows x features x repeats scored at once; beyond it fewer held-out rows are used, which keeps the
# explanation a small fraction of a search's cost on wide data.
MAX_SHUFFLED_ROWS = 30_000


def importance(model, X: pd.DataFrame, y, *, task: evaluation.Task, metric: str, seed: int) -> dict[str, float]:
    """`{column: share}` over the columns of `X`, summing to 1 (all zeros when nothing matters)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    columns = list(X.columns)
    rows = min(len(X), max(50, MAX_SHUFFLED_ROWS // max(1, len(columns) * REPEATS)))
    if rows < len(X):
        keep = np.sort(rng.choice(len(X), rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    # Block 0 is X as is; block 1 + i * REPEATS + r has column i shuffled (repeat r). Built column by
    # column so that every column keeps its dtype.
    blocks = 1 + len(columns) * REPEATS
    stacked = {}
    for index, column in enumerate(columns):
        values = X[column].to_numpy()
        tiled = np.tile(values, blocks)
        for repeat in range(REPEATS):
            block = 1 + index * REPEATS + repeat
            tiled[block * len(X) : (block + 1) * len(X)] = values[rng.permutation(len(X))]
        stacked[column] = tiled
    found = evaluation.outputs(metric, model, pd.DataFrame(stacked, columns=columns), task)
    scores = [
        evaluation.score_outputs(metric, y, evaluation.slice_outputs(found, b * len(X), (b + 1) * len(X)), task)
        for b in range(blocks)
    ]
    baseline, shuffled_scores = scores[0], np.array(scores[1:]).reshape(len(columns), REPEATS)
    drops = (
        shuffled_scores.mean(axis=1) - baseline
        if evaluation.direction(metric) == "minimize"
        else baseline - shuffled_scores.mean(axis=1)
    )
    drops = np.clip(np.nan_to_num(drops), 0.0, None)
    total = drops.sum()
    shares = drops / total if total > 0 else drops
    return {str(name): round(float(share), 6) for name, share in zip(columns, shares, strict=True)}
