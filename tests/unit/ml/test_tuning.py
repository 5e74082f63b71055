"""algorithms and tuning: candidates, strategies, pruning, budgets, parallel trials, diagnostics."""

import re

import pytest
from mlspec import preprocessing, problem

from mlkube.api import tuning as tuning_api
from mlkube.ml import algorithms, errors, evaluation, experiment, processing, split, tuning


def search_problem(table, *, task="classification", metric="roc_auc", folds=3, **pre):
    spec = preprocessing(**pre)
    features = [c for c in table.columns if c != "y"]
    y = table["y"]
    return tuning.Problem(
        X=table[features],
        y=y,
        folds=split.folds(y, task=task, spec=spec.split, cv_folds=folds),
        task=evaluation.task_of(problem(task=task, primaryMetric=metric), y),
        metric=metric,
        recipe=processing.Recipe(spec, processing.columns_of(table, features, spec), task, 0),
        balanced=False,
    )


def candidates(*specs, task="classification"):
    return algorithms.candidates([tuning_api.Algorithm.model_validate(s) for s in specs], task)


def settings(**fields):
    return tuning_api.Tuning.model_validate(fields)


def test_default_candidates_fit_the_task():
    assert [c.name for c in algorithms.candidates([], "regression")] == [
        "linear_regression",
        "ridge",
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
        "knn",
        "svm",
    ]
    assert "linear_regression" not in [c.name for c in algorithms.candidates([], "classification")]


def test_user_params_override_the_default_space():
    (rf,) = candidates({"name": "random_forest", "params": {"max_depth": [3, 5]}})
    assert set(rf.dimensions) == {"n_estimators", "max_depth", "min_samples_leaf"}
    assert rf.dimensions["max_depth"].values == (3, 5)


def test_unknown_parameter_gets_scikit_learns_message():
    with pytest.raises(
        errors.InvalidSpec,
        match=r"algorithms\[0\].params: Invalid parameter 'depth' for estimator RandomForestClassifier",
    ):
        candidates({"name": "random_forest", "params": {"depth": 3}})


def test_algorithm_of_the_other_task_is_refused():
    with pytest.raises(errors.InvalidSpec, match="linear_regression is a regression algorithm and the problem is classification"):
        candidates({"name": "linear_regression"})


@pytest.mark.parametrize(
    ("algorithm", "params", "message"),
    [
        (
            "random_forest",
            {"max_depth": -1},
            r"The 'max_depth' parameter of RandomForestClassifier must be .* Got -1 instead",
        ),
        ("svm", {"C": -1.0}, r"The 'C' parameter of SVC must be a float in the range \(0.0, inf\]. Got -1.0 instead"),
    ],
)
def test_invalid_value_fails_the_run_with_scikit_learns_message(mixed, algorithm, params, message):
    with pytest.raises(errors.InvalidSpec, match=message):
        tuning.run(
            search_problem(mixed),
            candidates({"name": algorithm, "params": params}),
            settings(maxTrials=2),
            timeout_seconds=None,
        )


def test_svm_classifier_gives_calibrated_probabilities(mixed):
    model = algorithms.build("svm", "classification", {"C": 1.0}, seed=0, balanced=True)
    fitted = model.fit(mixed[["x1", "x2"]], mixed["y"])
    assert fitted.predict_proba(mixed[["x1", "x2"]]).sum(axis=1) == pytest.approx(1.0)
    assert model.estimator.class_weight == "balanced"


def test_grid_tries_every_point_round_robin(mixed):
    found = tuning.run(
        search_problem(mixed),
        candidates(
            {"name": "logistic_regression", "params": {"C": [0.1, 1.0, 10.0]}},
            {"name": "knn", "params": {"n_neighbors": [3, 15], "weights": "uniform"}},
        ),
        settings(strategy="grid", maxTrials=100, earlyStopping=False),
        timeout_seconds=None,
    )
    assert found.planned == 5
    assert [(t.algorithm, t.params.get("C", t.params.get("n_neighbors"))) for t in found.trials] == [
        ("logistic_regression", 0.1),
        ("knn", 3),
        ("logistic_regression", 1.0),
        ("knn", 15),
        ("logistic_regression", 10.0),
    ]
    assert found.best.score == max(t.score for t in found.trials)


@pytest.mark.parametrize("strategy", ["random", "bayesian"])
def test_seeded_search_is_reproducible(mixed, strategy):
    def trials():
        found = tuning.run(
            search_problem(mixed),
            candidates({"name": "knn"}),
            settings(strategy=strategy, maxTrials=5),
            timeout_seconds=None,
        )
        return [t.params for t in found.trials]

    assert trials() == trials()


def test_hopeless_trials_are_pruned_only_with_early_stopping(cancer):
    spaces = candidates({"name": "knn", "params": {"n_neighbors": {"int": [1, 40]}, "weights": "uniform"}})
    pruned = tuning.run(search_problem(cancer, folds=4), spaces, settings(strategy="random", maxTrials=8), timeout_seconds=None)
    assert any(t.state == "pruned" and len(t.fold_scores) < 4 for t in pruned.trials)
    full = tuning.run(
        search_problem(cancer, folds=4),
        spaces,
        settings(strategy="random", maxTrials=4, earlyStopping=False),
        timeout_seconds=None,
    )
    assert all(t.state == "complete" and len(t.fold_scores) == 4 for t in full.trials)


def test_identical_points_are_scored_once(mixed):
    found = tuning.run(
        search_problem(mixed),
        candidates({"name": "knn", "params": {"n_neighbors": 5, "weights": "uniform"}}),
        settings(maxTrials=4),
        timeout_seconds=None,
    )
    assert [t.reused for t in found.trials] == [False, True, True, True]
    assert len({t.score for t in found.trials}) == 1


def test_warnings_are_collected_per_algorithm(cancer):
    found = tuning.run(
        search_problem(cancer, scale="none"),
        candidates({"name": "logistic_regression", "params": {"max_iter": 2}}),
        settings(maxTrials=2, earlyStopping=False),
        timeout_seconds=None,
    )
    assert experiment.warning_summary(found.trials) == ["ConvergenceWarning in logistic_regression (2 trials)"]


def test_time_budget_without_a_complete_trial_says_what_to_fix(mixed):
    with pytest.raises(errors.TrainingFailed, match=re.escape("allowed no complete trial; raise tuning.timeout")):
        tuning.run(
            search_problem(mixed),
            candidates({"name": "knn"}),
            settings(maxTrials=3, timeout="1s"),
            timeout_seconds=1e-9,
        )


def test_parallel_trials_run_in_worker_processes(mixed):
    found = tuning.run(
        search_problem(mixed),
        candidates({"name": "knn"}, {"name": "ridge"}),
        settings(strategy="random", maxTrials=6, parallelism=2),
        timeout_seconds=None,
    )
    assert len(found.trials) == 6 and found.best.state == "complete"
    assert all(t.score is not None for t in found.trials if t.state == "complete")


def test_regression_search_minimises_rmse():
    from sklearn import datasets

    table = datasets.load_diabetes(as_frame=True).frame.rename(columns={"target": "y"})
    found = tuning.run(
        search_problem(table, task="regression", metric="rmse"),
        candidates({"name": "ridge"}, task="regression"),
        settings(strategy="random", maxTrials=4, earlyStopping=False),
        timeout_seconds=None,
    )
    assert found.best.score == min(t.score for t in found.trials)
