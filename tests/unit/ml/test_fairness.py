"""Fairness metrics, pure: the same numbers as fairlearn on the same predictions, seeded bootstrap
intervals around them, data bias before training, and the checks that name a bad sensitive feature."""

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fairlearn_metrics

from mlkube.api import project
from mlkube.ml import errors, evaluation, fairness

FAVORABLE = ">50K"


def predictions(seed=0, n=2000):
    """Labels, predictions and two sensitive features with a built-in disparity against group F."""
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], n, p=[0.3, 0.7]), "race": rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05])}
    )
    truth = rng.choice(["<=50K", FAVORABLE], n, p=[0.7, 0.3])
    predicted = np.where(rng.random(n) < 0.8, truth, rng.choice(["<=50K", FAVORABLE], n))
    predicted[(groups["sex"] == "F").to_numpy() & (rng.random(n) < 0.4)] = "<=50K"
    return truth, predicted, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summary_metrics_equal_fairlearns_on_the_same_predictions(seed):
    truth, predicted, groups = predictions(seed)
    found = fairness.assess(truth, predicted, groups, favorable=FAVORABLE, seed=seed)
    y, p = (truth == FAVORABLE).astype(int), (predicted == FAVORABLE).astype(int)
    expected = {}
    for column in groups.columns:
        by = fairness.group_labels(groups[column])
        expected[column] = {
            "disparate_impact": fairlearn_metrics.demographic_parity_ratio(y, p, sensitive_features=by),
            "demographic_parity_difference": fairlearn_metrics.demographic_parity_difference(y, p, sensitive_features=by),
            "equalized_odds_difference": fairlearn_metrics.equalized_odds_difference(y, p, sensitive_features=by),
            "equal_opportunity_difference": fairlearn_metrics.equal_opportunity_difference(y, p, sensitive_features=by),
        }
        assert found.by_feature[column] == pytest.approx(expected[column], abs=1e-6)
    assert found.metrics["disparate_impact"] == pytest.approx(min(e["disparate_impact"] for e in expected.values()), abs=1e-6)
    for metric in ("demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_difference"):
        assert found.metrics[metric] == pytest.approx(max(e[metric] for e in expected.values()), abs=1e-6)


def test_group_statistics_are_fairleans_metricframe_with_missing_values_a_group_of_their_own():
    truth, predicted, groups = predictions()
    found = fairness.assess(truth, predicted, groups, favorable=FAVORABLE, seed=0).groups
    y, p = (truth == FAVORABLE).astype(int), (predicted == FAVORABLE).astype(int)
    female = (groups["sex"] == "F").to_numpy()
    assert found["sex"]["F"] == pytest.approx(
        {
            "count": int(female.sum()),
            "selection_rate": fairlearn_metrics.selection_rate(y[female], p[female]),
            "tpr": fairlearn_metrics.true_positive_rate(y[female], p[female]),
            "fpr": fairlearn_metrics.false_positive_rate(y[female], p[female]),
            "accuracy": float(np.mean(y[female] == p[female])),
        },
        abs=1e-6,
    )
    assert set(found["race"]) == {"a", "b", "c", "(missing)"}
    assert sum(g["count"] for g in found["race"].values()) == len(truth)


def test_a_group_without_favorable_labels_has_tpr_zero_as_in_fairlearn():
    truth = np.array(["no", "no", "yes", "yes", "no", "no"])
    predicted = np.array(["no", "yes", "yes", "no", "no", "no"])
    groups = pd.DataFrame({"g": ["a", "a", "a", "a", "b", "b"]})
    found = fairness.assess(truth, predicted, groups, favorable="yes", seed=0)
    assert found.groups["g"]["b"]["tpr"] == 0.0
    y, p = (truth == "yes").astype(int), (predicted == "yes").astype(int)
    assert found.metrics["equalized_odds_difference"] == pytest.approx(
        fairlearn_metrics.equalized_odds_difference(y, p, sensitive_features=groups["g"])
    )


def test_bootstrap_intervals_are_seeded_contain_the_estimate_and_narrow_with_more_rows():
    truth, predicted, groups = predictions(n=600)
    first = fairness.assess(truth, predicted, groups, favorable=FAVORABLE, seed=7)
    assert first.intervals == fairness.assess(truth, predicted, groups, favorable=FAVORABLE, seed=7).intervals
    assert first.intervals != fairness.assess(truth, predicted, groups, favorable=FAVORABLE, seed=8).intervals
    for metric, (low, high) in first.intervals.items():
        assert low <= first.metrics[metric] <= high, metric
    large_truth, large_predicted, large_groups = predictions(n=20000)
    large = fairness.assess(large_truth, large_predicted, large_groups, favorable=FAVORABLE, seed=7)
    width = {m: high - low for m, (low, high) in first.intervals.items()}
    assert all(high - low < width[m] for m, (low, high) in large.intervals.items())


def test_data_bias_counts_group_sizes_and_favorable_label_rates():
    table = pd.DataFrame(
        {"sex": ["F"] * 10 + ["M"] * 30, "income": ["<=50K"] * 9 + [FAVORABLE] + ["<=50K"] * 20 + [FAVORABLE] * 10}
    )
    found = fairness.data_bias(table, target="income", sensitive=["sex"], favorable=FAVORABLE)
    assert found == {
        "class_imbalance": {"sex": 0.5},
        "label_rate_difference": {"sex": pytest.approx(1 / 3 - 0.1, abs=1e-6)},
        "groups": {
            "sex": {"F": {"count": 10, "favorable_rate": 0.1}, "M": {"count": 30, "favorable_rate": pytest.approx(1 / 3)}}
        },
    }


def test_failed_criteria_name_the_metric_the_threshold_and_the_measurement():
    criteria = [
        project.FairnessCriterion(metric="disparate_impact", op=">=", threshold=0.8),
        project.FairnessCriterion(metric="equalized_odds_difference", op="<=", threshold=0.1),
    ]
    assert fairness.failed({"disparate_impact": 0.62, "equalized_odds_difference": 0.05}, criteria) == [
        "disparate_impact >= 0.8 (measured 0.62)"
    ]
    assert fairness.failed({}, criteria[1:]) == ["equalized_odds_difference <= 0.1 (not measured)"]


def spec(**fields):
    return project.Fairness.model_validate({"sensitiveFeatures": ["sex"], **fields})


PROBLEM = project.Problem(task="classification", target="income", primary_metric="accuracy")


@pytest.mark.parametrize(
    ("table", "names", "message"),
    [
        (
            pd.DataFrame({"income": ["a"], "age": [1]}),
            ["sex"],
            "fairness.sensitiveFeatures: column 'sex' does not exist in d.csv",
        ),
        (pd.DataFrame({"income": ["a"]}), ["income"], "fairness.sensitiveFeatures: 'income' is the target"),
        (
            pd.DataFrame({"income": ["a"] * 60, "age": range(60)}),
            ["age"],
            "column 'age' has 60 distinct values; a sensitive feature defines groups",
        ),
    ],
)
def test_a_sensitive_feature_the_data_cannot_group_by_is_refused_naming_it(table, names, message):
    with pytest.raises(errors.DataError, match=message):
        fairness.check(table, spec(sensitiveFeatures=names), PROBLEM, uri="d.csv")


def test_the_favorable_outcome_is_the_positive_class_unless_named():
    binary = evaluation.Task("classification", ("<=50K", FAVORABLE), FAVORABLE)
    assert fairness.favorable_of(spec(), binary) == FAVORABLE
    assert fairness.favorable_of(spec(favorableOutcome="<=50K"), binary) == "<=50K"
    with pytest.raises(errors.InvalidSpec, match=r"fairness\.favorableOutcome: 'yes' is not a class of the target"):
        fairness.favorable_of(spec(favorableOutcome="yes"), binary)
    several = evaluation.Task("classification", ("a", "b", "c"), None)
    with pytest.raises(errors.InvalidSpec, match="the target has 3 classes; name the one"):
        fairness.favorable_of(spec(), several)
