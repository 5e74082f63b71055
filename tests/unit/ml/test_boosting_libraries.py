"""lightgbm and xgboost: the data's own labels, early stopping on a share of the training rows,
the registry's names, spaces and parameter checks, and pickling like any estimator."""

import pickle

import numpy as np
import pytest
from sklearn import datasets, metrics

from mlkube.api import tuning as tuning_api
from mlkube.ml import algorithms, boosting, errors, space

LIBRARIES = ["lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True)
    return X, np.where(y == 1, "benign", "malignant")


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_classifier_speaks_the_data_labels_and_stops_early(cancer, name):
    X, y = cancer
    model = algorithms.build(name, "classification", {"learning_rate": 0.3}, seed=0).fit(X[:450], y[:450])
    assert list(model.classes_) == ["benign", "malignant"]
    assert set(model.predict(X[450:])) <= {"benign", "malignant"}
    malignant = model.predict_proba(X[450:])[:, 1]
    assert metrics.roc_auc_score(y[450:] == "malignant", malignant) > 0.95
    assert 0 < model.best_iteration_ < 500  # stopped on its validation share, long before the ceiling
    assert (pickle.loads(pickle.dumps(model)).predict(X[450:]) == model.predict(X[450:])).all()


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_regressor_fits_and_too_few_rows_fit_every_tree(name):
    X, y = datasets.load_diabetes(return_X_y=True)
    model = algorithms.build(name, "regression", {}, seed=0).fit(X[:350], y[:350])
    assert metrics.r2_score(y[350:], model.predict(X[350:])) > 0.2
    small = algorithms.build(name, "regression", {"n_estimators": 30}, seed=0).fit(X[:40], y[:40])
    assert small.predict(X[:3]).shape == (3,)  # 4 validation rows are too few: no early stopping, no error


@pytest.mark.parametrize("name", LIBRARIES)
def test_sample_weights_reach_the_library(cancer, name):
    X, y = cancer
    weights = np.where(y[:300] == "malignant", 5.0, 1.0)
    weighted = algorithms.build(name, "classification", {}, seed=0).fit(X[:300], y[:300], sample_weight=weights)
    plain = algorithms.build(name, "classification", {}, seed=0).fit(X[:300], y[:300])
    assert weighted.predict_proba(X[300:])[:, 1].mean() > plain.predict_proba(X[300:])[:, 1].mean()


def test_the_libraries_are_named_candidates_with_search_spaces_but_not_defaults():
    found = algorithms.candidates([tuning_api.Algorithm(name="lightgbm"), tuning_api.Algorithm(name="xgboost")], "regression")
    assert [c.name for c in found] == LIBRARIES
    assert isinstance(found[0].dimensions["num_leaves"], space.Range)
    assert isinstance(found[1].dimensions["max_depth"], space.Range)
    assert not {"lightgbm", "xgboost"} & {c.name for c in algorithms.candidates([], "classification")}
    assert algorithms.supports_class_weight("lightgbm", "classification")
    assert isinstance(algorithms.build("xgboost", "classification", {}, seed=0), boosting.XGBoostClassifier)


def test_an_unknown_parameter_name_is_refused_before_training():
    with pytest.raises(errors.InvalidSpec, match=r"algorithms\[0\]\.params: num_leafs is not a parameter of lightgbm"):
        algorithms.candidates([tuning_api.Algorithm(name="lightgbm", params={"num_leafs": 31})], "classification")
