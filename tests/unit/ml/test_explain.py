"""explain: permutation importance on raw columns, normalised."""

import numpy as np
import pandas as pd
import pytest
from mlspec import problem
from sklearn import ensemble, linear_model

from mlkube.ml import evaluation, explain


def test_the_informative_column_gets_the_importance():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=400), "noise": rng.normal(size=400)})
    y = np.where(X["signal"] > 0, "yes", "no")
    model = linear_model.LogisticRegression().fit(X[:300], y[:300])
    task = evaluation.task_of(problem(), y)
    shares = explain.importance(model, X[300:], y[300:], task=task, metric="roc_auc", seed=0)
    assert shares["signal"] > 0.95 and sum(shares.values()) == pytest.approx(1.0)


def test_lower_is_better_metrics_count_an_increase_as_importance():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = 3 * X["b"] + rng.normal(scale=0.1, size=300)
    model = ensemble.RandomForestRegressor(n_estimators=20, random_state=0).fit(X[:200], y[:200])
    shares = explain.importance(model, X[200:], y[200:], task=evaluation.Task("regression"), metric="rmse", seed=0)
    assert shares["b"] > shares["a"]
