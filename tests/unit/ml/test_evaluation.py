"""evaluation: metrics per task, the positive class, success criteria and the champion comparison."""

import numpy as np
import pandas as pd
import pytest
from mlspec import problem
from sklearn import dummy, linear_model, pipeline, preprocessing

from mlkube.api import project
from mlkube.ml import evaluation


def test_binary_metrics_are_about_the_positive_class(cancer):
    X, y = cancer.drop(columns="y"), cancer["y"]
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()).fit(X, y)
    for positive in ("malignant", "benign"):
        task = evaluation.task_of(problem(positiveClass=positive), y)
        found = evaluation.scores(model, X, y, task)
        assert found["recall"] == pytest.approx(((model.predict(X) == positive) & (y == positive)).sum() / (y == positive).sum())
        assert set(found) == {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"}
    assert evaluation.task_of(problem(), y).positive == "malignant", "default: second class in sorted order"


def test_multiclass_uses_macro_averages():
    from sklearn import datasets

    X, y = datasets.load_wine(return_X_y=True, as_frame=True)
    model = dummy.DummyClassifier(strategy="most_frequent").fit(X, y)
    task = evaluation.task_of(problem(), y)
    found = evaluation.scores(model, X, y, task)
    assert found["recall"] == pytest.approx(1 / 3)
    assert found["roc_auc"] == pytest.approx(0.5)
    matrix = evaluation.confusion(model, X, y, task)
    assert matrix["labels"] == [0, 1, 2] and np.array(matrix["matrix"]).sum() == len(y)


def test_multiclass_positive_class_is_scored_against_the_rest():
    from sklearn import datasets, metrics

    X, y = datasets.load_wine(return_X_y=True, as_frame=True)
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression(C=0.01)).fit(X, y)
    task = evaluation.task_of(problem(positiveClass="2"), y)
    assert task.positive == 2 and not task.is_binary
    found = evaluation.scores(model, X, y, task)
    predicted, proba = model.predict(X), model.predict_proba(X)
    assert found["recall"] == pytest.approx(metrics.recall_score(y == 2, predicted == 2))
    assert found["precision"] == pytest.approx(metrics.precision_score(y == 2, predicted == 2))
    assert found["roc_auc"] == pytest.approx(metrics.roc_auc_score(y == 2, proba[:, 2]))
    assert found["pr_auc"] == pytest.approx(metrics.average_precision_score(y == 2, proba[:, 2]))
    assert found["accuracy"] == pytest.approx(metrics.accuracy_score(y, predicted)), "accuracy covers every class"
    macro = evaluation.scores(model, X, y, evaluation.task_of(problem(), y))
    assert macro["recall"] == pytest.approx(metrics.recall_score(y, predicted, average="macro"))
    assert macro["recall"] != pytest.approx(found["recall"])


def test_models_without_probabilities_score_by_decision_function(cancer):
    X, y = cancer.drop(columns="y"), cancer["y"]
    model = linear_model.RidgeClassifier().fit(X, y)
    found = evaluation.scores(model, X, y, evaluation.task_of(problem(), y))
    assert found["roc_auc"] > 0.9 and "log_loss" not in found


def test_regression_metrics():
    y = np.array([1.0, 2.0, 4.0])
    model = dummy.DummyRegressor(strategy="constant", constant=2.0).fit(y[:, None], y)
    found = evaluation.scores(model, y[:, None], y, evaluation.Task("regression"))
    assert found == pytest.approx({"rmse": np.sqrt(5 / 3), "mae": 1.0, "r2": 1 - 5 / (3 * np.var(y)), "mape": (1 + 0 + 0.5) / 3})


@pytest.mark.parametrize(
    ("op", "threshold", "met"),
    [(">=", 0.8, True), (">", 0.8, False), ("<=", 0.8, True), ("<", 0.9, True), ("==", 0.8, True), ("==", 0.7, False)],
)
def test_success_criteria(op, threshold, met):
    criterion = project.SuccessCriterion(metric="recall", op=op, threshold=threshold)
    assert evaluation.criteria({"recall": 0.8}, [criterion]) == [
        {"metric": "recall", "op": op, "threshold": threshold, "value": 0.8, "met": met}
    ]


def test_unmeasured_criterion_is_not_met():
    criterion = project.SuccessCriterion(metric="roc_auc", op=">=", threshold=0.5)
    assert evaluation.criteria({}, [criterion])[0]["met"] is False


def test_compare_knows_which_way_is_better():
    assert evaluation.compare({"rmse": 1.0}, {"rmse": 2.0}, metric="rmse", champion_version=3)["challengerBetter"] is True
    assert evaluation.compare({"roc_auc": 0.8}, {"roc_auc": 0.9}, metric="roc_auc", champion_version=3) == {
        "championVersion": 3,
        "metric": "roc_auc",
        "challenger": 0.8,
        "champion": 0.9,
        "challengerBetter": False,
    }


def test_undefined_metrics_are_left_out():
    model = dummy.DummyClassifier().fit(pd.DataFrame({"a": [0, 1]}), ["a", "b"])
    found = evaluation.scores(model, pd.DataFrame({"a": [0]}), ["a"], evaluation.Task("classification", ("a", "b"), "b"))
    assert "roc_auc" not in found and found["accuracy"] in (0.0, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_roc_auc_equals_scikit_learns(seed):
    from sklearn import metrics

    rng = np.random.default_rng(seed)
    truth = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + truth * 0.3, 1)  # rounding makes ties
    assert evaluation.roc_auc(truth, scores) == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    assert np.isnan(evaluation.roc_auc(np.zeros(3, bool), np.arange(3)))
