"""processing: each preprocessing option has its effect, learned on the training rows only."""

import re

import numpy as np
import pandas as pd
import pytest
from mlspec import preprocessing, problem
from sklearn import base

from mlkube.ml import algorithms, errors, processing, split


class Recorder(base.ClassifierMixin, base.BaseEstimator):
    """Remembers what reached the estimator step."""

    def fit(self, X, y):
        self.X_, self.y_ = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def fit(table, task="classification", **spec):
    pre = preprocessing(**spec)
    features = [c for c in table.columns if c != "y"]
    columns = processing.columns_of(table, features, pre)
    model = processing.build(pre, columns, Recorder(), task=task, seed=0)
    return model.fit(table[features], table["y"]), features


def transformed(model, table, features):
    return model.named_steps["features"].transform(table[features])


def test_statistics_come_from_the_training_partition_only(mixed):
    """Leakage check: imputer and scaler learn from the rows they are fitted on, not the whole table."""
    table = mixed.copy()
    table.loc[::7, "x1"] = np.nan
    parts = split.partition(table, target="y", task="classification", spec=preprocessing().split)
    model, _ = fit(parts.train, impute={"numeric": "mean"}, scale="standard")
    numeric = model.named_steps["features"].named_transformers_["numeric"]

    assert numeric[0].statistics_[0] == pytest.approx(parts.train["x1"].mean())
    assert numeric[0].statistics_[0] != pytest.approx(table["x1"].mean())
    assert numeric[1].mean_[1] == pytest.approx(parts.train["x2"].mean())


@pytest.mark.parametrize(("strategy", "expected"), [("mean", np.mean), ("median", np.median)])
def test_numeric_impute_strategies(strategy, expected):
    table = pd.DataFrame({"a": [1.0, 2.0, 9.0, np.nan], "y": [0, 1, 0, 1]})
    model, features = fit(table, impute={"numeric": strategy}, scale="none")
    assert transformed(model, table, features)[3, 0] == pytest.approx(expected([1.0, 2.0, 9.0]))


def test_impute_constant_and_categorical_fill():
    table = pd.DataFrame({"a": [1.0, np.nan], "c": ["x", None], "y": [0, 1]})
    model, features = fit(table, impute={"numeric": "constant", "categorical": "constant", "fillValue": -5}, scale="none")
    out = transformed(model, table, features)
    assert out[1, 0] == -5
    assert list(model.named_steps["features"].get_feature_names_out()) == ["a", "c_missing", "c_x"]


def test_impute_drop_removes_incomplete_rows_and_marks_columns_non_nullable(mixed):
    table = mixed.copy()
    table.loc[:9, "x1"] = np.nan
    pre = preprocessing(impute={"numeric": "drop"})
    columns = processing.columns_of(table, ["x1", "x2", "colour"], pre)
    prepared = processing.prepare(table, problem(), pre, columns)
    assert len(prepared) == 190
    assert processing.non_nullable(pre, columns) == {"x1", "x2"}


def test_drop_duplicates_and_unlabeled_rows(mixed):
    table = pd.concat([mixed, mixed.head(5)], ignore_index=True)
    table.loc[0, "y"] = None  # row 0 goes (no label), and its copy at row 200 is no longer a duplicate
    pre = preprocessing()
    columns = processing.columns_of(table, ["x1"], pre)
    assert len(processing.prepare(table, problem(), pre, columns)) == 200
    assert len(processing.prepare(table, problem(), preprocessing(dropDuplicates=False), columns)) == 204


def test_outlier_clip_uses_training_limits_at_prediction_time():
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 100.0], "y": [0, 1, 0, 1, 0, 1]})
    model, features = fit(table, outliers={"method": "iqr", "factor": 1.5, "action": "clip"}, scale="none")
    q1, q3 = np.percentile(table["a"], [25, 75])
    upper = q3 + 1.5 * (q3 - q1)
    assert model.named_steps["model"].X_[:, 0].max() == pytest.approx(upper)
    assert transformed(model, pd.DataFrame({"a": [1000.0]}), features)[0, 0] == pytest.approx(upper)


@pytest.mark.parametrize("method", ["iqr", "zscore", "isolation_forest"])
def test_outlier_drop_removes_training_rows_only(method):
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"a": np.r_[rng.normal(0, 1, 98), [50.0, -60.0]], "y": [0, 1] * 50})
    model, features = fit(table, outliers={"method": method, "factor": 3.0, "action": "drop"}, scale="none")
    seen = model.named_steps["model"].X_[:, 0]
    assert len(seen) < 100 and seen.max() < 50 and seen.min() > -60
    assert len(model.predict(table[features])) == 100, "prediction keeps every row"


def test_isolation_forest_cannot_clip():
    with pytest.raises(errors.InvalidSpec, match="use action: drop"):
        processing.check(preprocessing(outliers={"method": "isolation_forest", "action": "clip"}), problem())


@pytest.mark.parametrize(
    ("scale", "check"),
    [
        ("standard", lambda v: np.allclose(v.mean(axis=0), 0) and np.allclose(v.std(axis=0), 1)),
        ("minmax", lambda v: np.allclose(v.min(axis=0), 0) and np.allclose(v.max(axis=0), 1)),
        ("robust", lambda v: np.allclose(np.median(v, axis=0), 0)),
        ("none", lambda v: v[:, 0].mean() > 5),
    ],
)
def test_scalers(mixed, scale, check):
    model, _ = fit(mixed[["x1", "x2", "y"]], scale=scale)
    assert check(model.named_steps["model"].X_)


def test_onehot_ignores_unknown_categories(mixed):
    model, features = fit(mixed[["colour", "y"]], encode="onehot")
    out = transformed(model, pd.DataFrame({"colour": ["red", "purple"]}), features)
    assert out.tolist() == [[0, 0, 1], [0, 0, 0]]


def test_ordinal_maps_unknown_and_missing_to_minus_one(mixed):
    model, features = fit(mixed[["colour", "y"]], encode="ordinal", impute={"categorical": "drop"})
    out = transformed(model, pd.DataFrame({"colour": ["blue", "purple", None]}), features)
    assert out[:, 0].tolist() == [0, -1, -1]


def test_target_encoding_gives_one_numeric_column_per_feature(mixed):
    model, features = fit(mixed[["colour", "y"]], encode="target")
    out = transformed(model, pd.DataFrame({"colour": ["red", "green"]}), features)
    assert out.shape == (2, 1) and out[0, 0] > out[1, 0], "red always means yes"


def test_categories_of_mixed_types_are_compared_as_strings():
    table = pd.DataFrame({"c": [1, "1", "a", 2], "y": [0, 1, 0, 1]})
    model, _ = fit(table, encode="onehot")
    assert list(model.named_steps["features"].get_feature_names_out()) == ["c_1", "c_2", "c_a"]


def test_binning_one_hot_encodes_bins(mixed):
    model, _ = fit(mixed[["x1", "x2", "y"]], bins=[{"column": "x2", "bins": 4, "strategy": "quantile"}])
    assert model.named_steps["model"].X_.shape[1] == 1 + 4
    assert model.named_steps["model"].X_[:, 1:].sum(axis=0).tolist() == [50, 50, 50, 50]


@pytest.mark.parametrize("method", ["oversample", "undersample", "smote"])
def test_balancing_equalises_classes_for_training_only(mixed, method):
    table = mixed[["x1", "x2", "y"]].assign(y=np.where(np.arange(200) < 30, "rare", "common"))
    model, features = fit(table, balance=method)
    counts = pd.Series(model.named_steps["model"].y_).value_counts()
    assert counts["rare"] == counts["common"] == (30 if method == "undersample" else 170)
    assert len(model.predict(table[features])) == 200


def test_class_weight_balance_is_an_estimator_parameter():
    assert algorithms.build("random_forest", "classification", {}, seed=0, balanced=True).class_weight == "balanced"
    assert not algorithms.supports_class_weight("knn", "classification")


def test_balancing_needs_classification():
    with pytest.raises(errors.InvalidSpec, match=re.escape("preprocessing.balance: smote needs a classification task")):
        processing.check(preprocessing(balance="smote"), problem(task="regression"))


def test_noise_augmentation_adds_jittered_copies(mixed):
    model, _ = fit(mixed[["x1", "x2", "y"]], augment={"method": "noise", "copies": 2, "scale": 0.05}, scale="none")
    seen = model.named_steps["model"].X_
    assert len(seen) == 600
    jitter = seen[200:400, 0] - seen[:200, 0]
    assert 0 < np.abs(jitter).mean() < 0.1 * mixed["x1"].std()


def test_pca_replaces_features_with_capped_components(mixed):
    model, _ = fit(mixed[["x1", "x2", "colour", "y"]], featureExtraction={"method": "pca", "components": 2})
    assert model.named_steps["model"].X_.shape[1] == 2
    model, _ = fit(mixed[["x1", "x2", "y"]], featureExtraction={"method": "pca", "components": 50})
    assert model.named_steps["model"].X_.shape[1] == 2


def test_feature_selection_methods(cancer):
    width = cancer.shape[1] - 1
    model, _ = fit(cancer.assign(const=1.0), featureSelection={"method": "variance"})
    assert model.named_steps["model"].X_.shape[1] == width
    model, _ = fit(cancer, featureSelection={"method": "kbest", "k": 5})
    assert model.named_steps["model"].X_.shape[1] == 5
    model, _ = fit(cancer, featureSelection={"method": "kbest", "k": 500})
    assert model.named_steps["model"].X_.shape[1] == width
    model, _ = fit(cancer, featureSelection={"method": "model"})
    assert 1 <= model.named_steps["model"].X_.shape[1] < width


def test_without_training_only_steps_the_pipeline_is_plain_scikit_learn(mixed):
    from sklearn import pipeline

    model, _ = fit(mixed)
    assert type(model) is pipeline.Pipeline
    model, _ = fit(mixed, balance="oversample")
    assert isinstance(model, pipeline.Pipeline) and type(model) is not pipeline.Pipeline
