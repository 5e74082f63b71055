"""Feature importance of a fitted pipeline: permutation importance on held-out rows.

Each raw feature column is shuffled in turn and the drop of the primary metric is measured, so
the importance is about the columns a user knows (not one-hot or PCA outputs) and about rows
the model did not train on. Negative drops (noise) count as zero; the result is normalised to
sum to 1. Pure computation; the caller chooses the rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import inspection

from mlkube.ml import evaluation

MAX_ROWS = 2000
REPEATS = 5


def importance(model, X: pd.DataFrame, y, *, task: evaluation.Task, metric: str, seed: int) -> dict[str, float]:
    """`{column: share}` over the columns of `X`, summing to 1 (all zeros when nothing matters)."""
    if len(X) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), MAX_ROWS, replace=False))
        X, y = X.iloc[rows], np.asarray(y)[rows]
    sign = -1.0 if evaluation.direction(metric) == "minimize" else 1.0

    def scorer(estimator, X_, y_):
        value = evaluation.score(metric, estimator, X_, y_, task)
        return sign * value if not np.isnan(value) else 0.0

    result = inspection.permutation_importance(model, X, y, scoring=scorer, n_repeats=REPEATS, random_state=seed, n_jobs=1)
    drops = np.clip(result.importances_mean, 0.0, None)
    total = drops.sum()
    shares = drops / total if total > 0 else drops
    return {str(name): round(float(share), 6) for name, share in zip(X.columns, shares, strict=True)}

