"""card.plots: the test-split data the model card's page draws (calibration bins, residuals), kept small."""

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model, svm

from mlkube.ml import card, evaluation

BINARY = evaluation.Task("classification", ("no", "yes"), "yes")
MULTICLASS = evaluation.Task("classification", ("a", "b", "c"))


def test_binary_calibration_bins_the_positive_class_probability():
    y = np.array(["no", "no", "yes", "yes", "yes"])
    p_yes = np.array([0.05, 0.08, 0.55, 0.58, 0.95])
    found = card.calibration(y, np.column_stack([1 - p_yes, p_yes]), BINARY)

    assert found["of"] == "positiveClass" and found["positiveClass"] == "yes" and found["rows"] == 5
    assert found["bins"] == [
        {"low": 0.0, "high": 0.1, "meanPredicted": 0.065, "observed": 0.0, "count": 2},
        {"low": 0.5, "high": 0.6, "meanPredicted": 0.565, "observed": 1.0, "count": 2},
        {"low": 0.9, "high": 1.0, "meanPredicted": 0.95, "observed": 1.0, "count": 1},
    ]


def test_multiclass_calibration_is_about_the_predicted_class():
    y = np.array(["a", "b", "c", "a"])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.75, 0.2, 0.05], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])
    found = card.calibration(y, probabilities, MULTICLASS)

    assert found["of"] == "topLabel" and "positiveClass" not in found
    assert [(b["low"], b["observed"], b["count"]) for b in found["bins"]] == [(0.7, 0.5, 2), (0.8, 1.0, 1), (0.9, 1.0, 1)]


def test_residuals_summarise_and_sample_the_test_rows():
    rng = np.random.default_rng(0)
    actual = rng.normal(100, 20, 1000)
    predicted = actual + rng.normal(0, 5, 1000)
    found = card.residuals(actual, predicted, seed=7)

    assert found["rows"] == 1000 and sum(found["histogram"]["counts"]) == 1000
    assert len(found["histogram"]["edges"]) == card.RESIDUAL_BINS + 1
    assert len(found["points"]) == card.RESIDUAL_POINTS
    assert found["quantiles"]["p5"] < found["quantiles"]["p50"] < found["quantiles"]["p95"]
    assert found["quantiles"]["p50"] == pytest.approx(np.median(actual - predicted), rel=1e-5)
    assert found["points"] == card.residuals(actual, predicted, seed=7)["points"]  # seeded
    assert all(abs(a - p) < 30 for a, p in found["points"])  # pairs of one row each (the noise is 5)


def test_plots_carry_what_the_model_can_show():
    X = pd.DataFrame({"x": np.linspace(0, 1, 40)})
    labels = np.where(X["x"] > 0.5, "yes", "no")
    values = 3 * X["x"].to_numpy() + 1

    classifier = linear_model.LogisticRegression().fit(X, labels)
    assert set(card.plots(classifier, X, labels, BINARY, seed=0)) == {"calibration"}
    assert card.plots(svm.LinearSVC().fit(X, labels), X, labels, BINARY, seed=0) == {}  # no probabilities
    regressor = linear_model.LinearRegression().fit(X, values)
    residuals = card.plots(regressor, X, values, evaluation.Task("regression"), seed=0)["residuals"]
    assert residuals["rows"] == 40 and abs(residuals["mean"]) < 1e-6
    assert card.plots(regressor, X.head(1), values[:1], evaluation.Task("regression"), seed=0) == {}
