"""Mitigation, pure: Kamiran-Calders weights, each method around the run's pipeline moving a known
disparity, deterministic served predictions, the sensitive feature as an input of threshold_optimizer
only, and the refusals that name the field."""

import numpy as np
import pandas as pd
import pytest
from mlspec import preprocessing
from sklearn import base, linear_model, neighbors

from mlkube.ml import errors, fairness, mitigation, processing

FEATURES = ["score", "hours", "sector"]


@pytest.fixture(scope="module")
def biased():
    """A label that depends on the features, and a group that gets the favorable label less often
    through a feature (``score``) correlated with it: the model learns the disparity without the group."""
    rng = np.random.default_rng(3)
    n = 1500
    group = rng.choice(["F", "M"], n, p=[0.4, 0.6])
    score = rng.normal(0, 1, n) + np.where(group == "M", 0.9, 0.0)
    hours = rng.normal(40, 8, n)
    sector = rng.choice(["a", "b", "c"], n)
    y = np.where(score + 0.03 * (hours - 40) + rng.normal(0, 0.7, n) > 0.8, "yes", "no")
    table = pd.DataFrame({"score": score, "hours": hours, "sector": sector, "sex": group, "y": y})
    return table.iloc[:1000], table.iloc[1000:]


def pipeline(estimator=None, *, features=FEATURES, **spec):
    pre = preprocessing(**spec)
    train = pd.DataFrame({"score": [0.0], "hours": [1.0], "sector": ["a"], "sex": ["F"]})
    columns = processing.columns_of(train, features, pre)
    return processing.build(
        pre, columns, estimator or linear_model.LogisticRegression(max_iter=1000), task="classification", seed=0
    )


def disparity(model, rows, columns):
    predicted = model.predict(rows[columns])
    return fairness.assess(rows["y"], predicted, rows[["sex"]], favorable="yes", seed=0, samples=0).metrics


def test_kamiran_calders_weights_make_label_and_group_independent():
    groups = pd.Series(["F"] * 10 + ["M"] * 30)
    y = np.array([1] * 2 + [0] * 8 + [1] * 15 + [0] * 15)
    weights = mitigation.kamiran_calders(groups, y)
    assert weights.sum() == pytest.approx(len(y))
    frame = pd.DataFrame({"g": groups, "y": y, "w": weights})
    weighted_rates = frame.groupby("g").apply(lambda part: np.average(part["y"], weights=part["w"]), include_groups=False)
    assert weighted_rates["F"] == pytest.approx(weighted_rates["M"]) == pytest.approx(y.mean())


@pytest.mark.parametrize(
    ("method", "constraint", "metric", "features"),
    [
        # Reweighing changes what the estimator learns of the group: it needs the group among the features.
        ("reweighing", None, "demographic_parity_difference", [*FEATURES, "sex"]),
        ("exponentiated_gradient", "demographic_parity", "demographic_parity_difference", FEATURES),
        ("threshold_optimizer", "demographic_parity", "demographic_parity_difference", FEATURES),
        ("threshold_optimizer", "equalized_odds", "equalized_odds_difference", FEATURES),
    ],
)
def test_each_method_moves_the_disparity_it_targets(biased, method, constraint, metric, features):
    train, test = biased
    plain = base.clone(pipeline(features=features)).fit(train[features], train["y"])
    model = mitigation.Mitigated(
        pipeline(features=features), method=method, constraint=constraint, features=features, sensitive=["sex"], favorable="yes"
    ).fit(train[[*FEATURES, "sex"]], train["y"])

    before, after = disparity(plain, test, features), disparity(model, test, model.input_columns)
    assert after[metric] < before[metric] - 0.05, (before, after)
    assert list(model.classes_) == ["no", "yes"]
    probabilities = model.predict_proba(test[model.input_columns])
    assert probabilities.shape == (len(test), 2) and np.allclose(probabilities.sum(axis=1), 1)
    # The served answer is deterministic and is the most likely label, as the model server computes it.
    assert np.array_equal(model.predict(test[model.input_columns]), model.classes_[probabilities.argmax(axis=1)])
    assert np.array_equal(model.predict(test[model.input_columns]), model.predict(test[model.input_columns]))


def test_only_threshold_optimizer_needs_the_sensitive_feature_at_prediction_time(biased):
    train, test = biased
    fitted = {
        method: mitigation.Mitigated(pipeline(), method=method, features=FEATURES, sensitive=["sex"], favorable="yes").fit(
            train[[*FEATURES, "sex"]], train["y"]
        )
        for method in mitigation.METHODS
    }
    assert fitted["reweighing"].input_columns == FEATURES and fitted["reweighing"].requires_sensitive == []
    assert fitted["exponentiated_gradient"].input_columns == FEATURES
    assert fitted["threshold_optimizer"].input_columns == [*FEATURES, "sex"]
    assert fitted["threshold_optimizer"].requires_sensitive == ["sex"]
    assert [name for name, _ in fitted["exponentiated_gradient"].steps] == ["features", "exponentiated_gradient"]
    assert [name for name, _ in fitted["threshold_optimizer"].steps] == ["features", "model", "threshold_optimizer"]
    with pytest.raises(
        ValueError, match="group 'X' was not in the training data; threshold_optimizer has thresholds for F, M only"
    ):
        fitted["threshold_optimizer"].predict(test[[*FEATURES]].assign(sex="X"))


def test_the_favorable_probability_is_fairlearns_randomized_prediction_rate(biased):
    """Guards the private fairlearn call: averaged over many draws, fairlearn's randomized
    predictions say favorable as often as our probability says."""
    train, test = biased
    model = mitigation.Mitigated(
        pipeline(), method="threshold_optimizer", features=FEATURES, sensitive=["sex"], favorable="yes"
    ).fit(train[[*FEATURES, "sex"]], train["y"])
    draws = np.mean(
        [model.mitigator_.predict(test[FEATURES], sensitive_features=test["sex"].to_numpy(), random_state=s) for s in range(200)],
        axis=0,
    )
    assert np.abs(draws - model.favorable_probability(test)).max() < 0.15


def test_refusals_name_the_mitigation_and_what_to_change():
    with pytest.raises(errors.InvalidSpec, match="exponentiated_gradient needs a binary target; this one has 3 classes"):
        mitigation.check("exponentiated_gradient", task_classes=3, steps=["features", "model"])
    with pytest.raises(
        errors.InvalidSpec, match=r"reweighing weighs the training rows, which the row-changing step\(s\) balance"
    ):
        mitigation.check("reweighing", task_classes=2, steps=["features", "balance", "model"])
    mitigation.check("threshold_optimizer", task_classes=2, steps=["features", "balance", "model"])
    assert not mitigation.accepts_weights(neighbors.KNeighborsClassifier())
    assert mitigation.accepts_weights(linear_model.LogisticRegression())
