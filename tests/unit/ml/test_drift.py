"""DriftDetector: method choice, verdicts on known shifts, missing and unseen values, status shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlkube.api import monitor
from mlkube.ml import drift, errors


def _table(
    n: int, seed: int, *, mean: float = 0.0, scale: float = 1.0, colours: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * mean, 10 * scale, n),
            "income": rng.lognormal(10, 0.5, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=colours),
            "plan": rng.choice(["basic", "pro"], n, p=[0.7, 0.3]),
        }
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1000, {"age": "ks", "income": "ks", "colour": "chi2", "plan": "chi2"}),
        (1001, {"age": "wasserstein", "income": "wasserstein", "colour": "jensenshannon", "plan": "jensenshannon"}),
    ],
)
def test_auto_picks_tests_for_small_references_and_effect_sizes_for_large(rows, expected):
    result = drift.DriftDetector().fit(_table(rows, 0)).score(_table(300, 1))
    assert {feature.name: feature.method for feature in result.features} == expected


def test_column_types_follow_dtype_distinct_values_and_the_categorical_list():
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "amount": rng.normal(size=200),
            "flag": rng.integers(0, 2, 200),
            "stars": rng.integers(1, 6, 200),
            "code": rng.integers(0, 50, 200),
            "paid": rng.integers(0, 2, 200).astype(bool),
        }
    )
    result = drift.DriftDetector(categorical=["code"]).fit(table).score(table)
    kinds = {feature.name: feature.kind for feature in result.features}
    assert kinds == {
        "amount": "numeric",
        "flag": "categorical",
        "stars": "categorical",
        "code": "categorical",
        "paid": "categorical",
    }


@pytest.mark.parametrize(
    ("requested", "numeric", "categorical"),
    [
        ("ks", "ks", "chi2"),
        ("chi2", "ks", "chi2"),
        ("wasserstein", "wasserstein", "jensenshannon"),
        ("psi", "psi", "psi"),
        ("jensenshannon", "jensenshannon", "jensenshannon"),
    ],
)
def test_a_method_that_does_not_fit_the_column_type_is_replaced_by_its_counterpart(requested, numeric, categorical):
    result = drift.DriftDetector(method=requested, columns=["age", "colour"]).fit(_table(500, 0)).score(_table(500, 1))
    assert [feature.method for feature in result.features] == [numeric, categorical]


@pytest.mark.parametrize(("rows", "method"), [(400, "auto"), (5000, "auto"), (3000, "psi")])
def test_two_samples_of_one_distribution_rarely_drift(rows, method):
    # Over 30 seeds x 4 columns, the share of false alarms stays near the tests' 5% level and
    # at zero for the effect sizes at their default thresholds.
    alarms = 0
    for seed in range(30):
        detector = drift.DriftDetector(method=method).fit(_table(rows, seed))
        alarms += sum(feature.drifted for feature in detector.score(_table(rows, 1000 + seed)).features)
    allowed = 0.1 if rows <= drift.AUTO_TEST_MAX_ROWS and method == "auto" else 0.0
    assert alarms / 120 <= allowed


@pytest.mark.parametrize("method", ["auto", "ks", "wasserstein", "psi", "jensenshannon"])
@pytest.mark.parametrize(
    ("rows", "shift"), [(600, {"mean": 0.5}), (5000, {"mean": 0.5}), (600, {"scale": 2.0}), (5000, {"scale": 2.0})]
)
def test_mean_shift_and_variance_change_are_detected(method, rows, shift):
    result = drift.DriftDetector(method=method).fit(_table(rows, 0)).score(_table(rows, 1, **shift))
    assert [feature.name for feature in result.features if feature.drifted] == ["age"]


@pytest.mark.parametrize("method", ["auto", "chi2", "psi", "jensenshannon"])
@pytest.mark.parametrize("rows", [600, 5000])
def test_category_frequency_change_is_detected(method, rows):
    result = drift.DriftDetector(method=method).fit(_table(rows, 0)).score(_table(rows, 1, colours=(0.2, 0.3, 0.5)))
    assert [feature.name for feature in result.features if feature.drifted] == ["colour"]


def test_scores_equal_the_reference_implementations_on_the_columns():
    reference, current = _table(3000, 0), _table(2000, 1, mean=0.1)
    result = drift.DriftDetector(method="ks", columns=["age"]).fit(reference).score(current)
    assert result.features[0].score == pytest.approx(stats.ks_2samp(reference.age, current.age).pvalue, rel=1e-9)
    result = drift.DriftDetector(columns=["age"]).fit(reference).score(current)
    expected = stats.wasserstein_distance(reference.age, current.age) / reference.age.std(ddof=0)
    assert result.features[0].score == pytest.approx(expected, rel=1e-9)


def test_numeric_missing_values_are_reported_and_left_out_of_the_statistic():
    reference, current = _table(2000, 0), _table(1000, 1)
    current.loc[:239, "age"] = np.nan
    current.loc[240:244, "age"] = np.inf  # not a value a distance can use: counted as missing
    current.loc[245:249, "age"] = -np.inf
    reference.loc[:94, "age"] = np.nan
    reference.loc[95:99, "age"] = -np.inf
    feature = drift.DriftDetector(columns=["age"]).fit(reference).score(current).features[0]
    assert (feature.missing_reference, feature.missing_current) == (0.05, 0.25)
    present_ref, present_cur = reference.age.iloc[100:], current.age.iloc[250:]
    expected = stats.wasserstein_distance(present_ref, present_cur) / present_ref.std(ddof=0)
    assert feature.score == pytest.approx(expected, rel=1e-9)


def test_a_numeric_column_with_no_values_left_is_compared_on_missingness():
    current = _table(500, 1).assign(age=np.nan)
    feature = drift.DriftDetector(columns=["age"]).fit(_table(2000, 0)).score(current).features[0]
    assert feature.drifted and feature.method == "jensenshannon" and feature.missing_current == 1.0
    assert "missingness" in feature.note


def test_a_reference_column_without_values_is_compared_on_missingness():
    detector = drift.DriftDetector(columns=["age"]).fit(_table(2000, 0).assign(age=np.nan))
    assert not detector.score(_table(500, 1).assign(age=np.nan)).features[0].drifted
    feature = detector.score(_table(500, 1)).features[0]
    assert feature.drifted and feature.unseen_current == 1.0


def test_categorical_missing_values_are_a_bucket_of_their_own():
    reference, current = _table(2000, 0), _table(2000, 1)
    current.loc[:599, "colour"] = None
    feature = drift.DriftDetector(columns=["colour"]).fit(reference).score(current).features[0]
    assert feature.missing_current == pytest.approx(0.3) and feature.drifted


def test_categories_unseen_in_the_reference_are_counted_and_drift():
    current = _table(2000, 1)
    current.loc[:399, "plan"] = "enterprise"
    current.loc[400:409, "plan"] = "trial"
    feature = drift.DriftDetector(columns=["plan"]).fit(_table(2000, 0)).score(current).features[0]
    assert feature.unseen_current == pytest.approx(0.205) and feature.drifted


def test_category_dtype_and_text_windows_give_the_same_result():
    reference, current = _table(2000, 0), _table(3000, 1, colours=(0.4, 0.4, 0.2))
    current.loc[:9, "colour"] = "violet"
    current.loc[10:19, "colour"] = None
    detector = drift.DriftDetector(columns=["colour"]).fit(reference.astype({"colour": "category"}))
    as_text = detector.score(current).features[0]
    as_category = detector.score(current.astype({"colour": "category"})).features[0]
    assert as_text == as_category and as_text.unseen_current == pytest.approx(10 / 3000)


def test_dataset_drift_when_the_drifted_share_reaches_dataset_share():
    reference, current = _table(3000, 0), _table(3000, 1, mean=1.0, colours=(0.1, 0.1, 0.8))
    assert drift.DriftDetector(dataset_share=0.5).fit(reference).score(current).dataset_drift
    result = drift.DriftDetector(dataset_share=0.6).fit(reference).score(current)
    assert result.drift_share == 0.5 and not result.dataset_drift


def test_status_ranks_drifted_features_by_importance_and_fits_the_api():
    importance = {"age": 0.1, "income": 0.5, "colour": 0.4}
    reference, current = _table(3000, 0), _table(3000, 1, mean=0.3, colours=(0.3, 0.3, 0.4))
    unweighted = drift.DriftDetector().fit(reference).score(current)
    assert [feature.name for feature in unweighted.ranked()] == ["age", "colour", "income", "plan"]
    result = drift.DriftDetector(importance=importance).fit(reference).score(current)
    status = result.to_status(top_k=3)
    assert [feature["name"] for feature in status["features"]] == ["colour", "age", "income"]
    assert status["features"][0]["importance"] == 0.4 and status["driftShare"] == 0.5
    status_model = monitor.DriftMonitorStatus.model_validate(status)
    assert status_model.dataset_drift is True and status_model.features[1].method == "wasserstein"
    assert result.explanation().startswith(
        "2 of 4 features drifted (dataset drift); most important: colour (importance 0.40, jensenshannon 0.1"
    )


def test_status_carries_prediction_and_performance_drift():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.choice(["churn", "stay"], 2000, p=[0.2, 0.8]), name="__prediction__")
    current = pd.Series(rng.choice(["churn", "stay"], 2000, p=[0.5, 0.5]), name="__prediction__")
    prediction = drift.prediction_drift(reference, current)
    assert prediction.method == "psi" and prediction.drifted
    result = drift.DriftDetector().fit(_table(2000, 0)).score(_table(2000, 1))
    status = result.to_status(prediction=prediction)
    assert status["predictionDrift"] == {"method": "psi", "score": pytest.approx(prediction.score, rel=1e-3), "drifted": True}
    assert monitor.DriftMonitorStatus.model_validate(status).prediction_drift.drifted


def test_numeric_predictions_drift_on_quantile_bins():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(100, 10, 5000))
    assert not drift.prediction_drift(reference, pd.Series(rng.normal(100, 10, 5000))).drifted
    assert drift.prediction_drift(reference, pd.Series(rng.normal(110, 10, 5000))).drifted
    labels = pd.Series(rng.integers(0, 10, 5000))
    assert drift.prediction_drift(labels, labels, categorical=True).kind == "categorical"


def test_threads_give_the_same_result():
    reference, current = _table(3000, 0), _table(3000, 1, mean=0.3)
    threaded = drift.DriftDetector(n_jobs=2).fit(reference).score(current)
    assert threaded == drift.DriftDetector().fit(reference).score(current)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"method": "kl"}, "dataDrift.method: 'kl'"),
        ({"threshold": 0}, "dataDrift.threshold"),
        ({"method": "ks", "threshold": 1.5}, "p-value"),
        ({"dataset_share": 0}, "datasetShare"),
    ],
)
def test_bad_parameters_name_the_field(parameters, message):
    with pytest.raises(errors.InvalidSpec, match=message):
        drift.DriftDetector(**parameters).fit(_table(100, 0))


def test_bad_data_names_the_column():
    detector = drift.DriftDetector().fit(_table(100, 0))
    with pytest.raises(errors.DataError, match=r"current window: columns \['plan'\] are missing"):
        detector.score(_table(100, 1).drop(columns="plan"))
    with pytest.raises(errors.DataError, match="current window column 'age': expected numbers"):
        detector.score(_table(100, 1).assign(age="forty"))
    with pytest.raises(errors.DataError, match="no rows"):
        detector.score(_table(100, 1).iloc[:0])
    with pytest.raises(errors.DataError, match="no columns to compare"):
        drift.DriftDetector(columns=[]).fit(_table(100, 0))
    with pytest.raises(RuntimeError, match="before fit"):
        drift.DriftDetector().score(_table(100, 1))


def test_a_quiet_window_is_explained_as_such_and_lists_every_feature():
    result = drift.DriftDetector().fit(_table(3000, 0)).score(_table(3000, 1))
    assert result.explanation() == "No drift: none of 4 features moved past its threshold."
    status = result.to_status()
    assert status["datasetDrift"] is False and len(status["features"]) == 4
    assert all("importance" not in feature for feature in status["features"])


def test_prediction_and_target_columns_are_not_features_by_default():
    reference = _table(500, 0).assign(__prediction__="stay", __target__="churn")
    result = drift.DriftDetector().fit(reference).score(_table(500, 1))
    assert [feature.name for feature in result.features] == ["age", "income", "colour", "plan"]


def test_numeric_psi_uses_the_reference_deciles_open_at_both_ends():
    reference, current = _table(5000, 0), _table(4000, 1, mean=0.6)
    current.loc[:9, "age"] = 1e6  # beyond the reference's range: counted in the top bucket
    feature = drift.DriftDetector(method="psi", columns=["age"]).fit(reference).score(current).features[0]
    edges = np.quantile(reference.age, np.linspace(0.1, 0.9, 9))
    expected_ref = np.bincount(np.digitize(reference.age, edges), minlength=10) / 5000
    expected_cur = np.bincount(np.digitize(current.age, edges), minlength=10) / 4000
    expected = ((expected_cur - expected_ref) * np.log(expected_cur / expected_ref)).sum()
    assert feature.score == pytest.approx(expected, rel=1e-12) and feature.drifted


def test_pandas_nullable_and_arrow_dtypes_are_read_like_numpy_ones():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "count": pd.array(rng.integers(0, 100, 2000), dtype="Int64"),
            "plan": pd.array(rng.choice(["basic", "pro"], 2000), dtype="string"),
            "paid": pd.array(rng.integers(0, 2, 2000).astype(bool), dtype="boolean"),
        }
    )
    current = reference.astype({"plan": "string[pyarrow]"})
    current.loc[:99, ["count", "plan", "paid"]] = pd.NA
    result = drift.DriftDetector().fit(reference).score(current)
    assert [(f.kind, f.missing_current) for f in result.features] == [
        ("numeric", 0.05),
        ("categorical", 0.05),
        ("categorical", 0.05),
    ]
    assert result.features[0].score == pytest.approx(
        stats.wasserstein_distance(reference["count"], current["count"].dropna()) / reference["count"].std(ddof=0)
    )
