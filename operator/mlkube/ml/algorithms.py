"""The registry of candidate estimators: classifier and regressor per name, defaults, search spaces.

`build` makes one unfitted scikit-learn estimator for a task and a point of its space; `candidates`
merges the registry's default search space with the user's `params`. Hyper-parameter values are
validated by scikit-learn itself when the estimator is fitted, so a user sees scikit-learn's own
message; only unknown parameter *names* are caught here (again with scikit-learn's message).
Parallelism comes from running trials side by side, so every estimator uses one core (n_jobs=1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sklearn import calibration, ensemble, linear_model, neighbors, svm

from mlkube.api import tuning as tuning_api
from mlkube.ml import boosting, errors, space


@dataclasses.dataclass(frozen=True)
class Entry:
    """One algorithm: its classifier and regressor (None when it has no such variant)."""

    classifier: type | None
    regressor: type | None
    defaults: dict[str, Any]
    default_space: dict[str, Any]
    calibrated: bool = False  # the classifier has no predict_proba of its own: wrap it in a calibrator
    default: bool = True  # a candidate when the spec lists no algorithms


REGISTRY: dict[str, Entry] = {
    "logistic_regression": Entry(
        linear_model.LogisticRegression, None, {"max_iter": 1000}, {"C": {"loguniform": [0.001, 100.0]}}
    ),
    "linear_regression": Entry(None, linear_model.LinearRegression, {}, {}),
    "ridge": Entry(linear_model.RidgeClassifier, linear_model.Ridge, {}, {"alpha": {"loguniform": [0.001, 100.0]}}),
    "random_forest": Entry(
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
        {"n_jobs": 1},
        {"n_estimators": {"int": [50, 200]}, "max_depth": {"int": [2, 16]}, "min_samples_leaf": {"int": [1, 10]}},
    ),
    "gradient_boosting": Entry(
        ensemble.GradientBoostingClassifier,
        ensemble.GradientBoostingRegressor,
        {},
        {
            "n_estimators": {"int": [50, 200]},
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_depth": {"int": [2, 5]},
        },
    ),
    "hist_gradient_boosting": Entry(
        ensemble.HistGradientBoostingClassifier,
        ensemble.HistGradientBoostingRegressor,
        {},
        {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_leaf_nodes": {"int": [8, 64]},
            "l2_regularization": {"loguniform": [1e-6, 1.0]},
        },
    ),
    "knn": Entry(
        neighbors.KNeighborsClassifier,
        neighbors.KNeighborsRegressor,
        {"n_jobs": 1},
        {"n_neighbors": {"int": [1, 50]}, "weights": ["uniform", "distance"]},
    ),
    # SVC's own probabilities (probability=True) are deprecated since scikit-learn 1.9; its
    # replacement, CalibratedClassifierCV(SVC(), ensemble=False), gives the predict_proba that
    # roc_auc, log_loss and served probabilities need. It makes SVC the slowest candidate.
    "svm": Entry(svm.SVC, svm.SVR, {}, {"C": {"loguniform": [0.01, 100.0]}, "gamma": ["scale", "auto"]}, calibrated=True),
    # The gradient boosting libraries users expect. n_estimators is a ceiling: each fit stops early
    # on a validation share of its rows (see boosting). Tuned when named in `algorithms`; not
    # default candidates, so that runs without a list search what they searched before.
    "lightgbm": Entry(
        boosting.LightGBMClassifier,
        boosting.LightGBMRegressor,
        {"n_estimators": 500, "n_jobs": 1, "verbose": -1},
        {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "num_leaves": {"int": [8, 64]},
            "min_child_samples": {"int": [5, 50]},
            "colsample_bytree": {"uniform": [0.5, 1.0]},
            "reg_lambda": {"loguniform": [0.001, 10.0]},
        },
        default=False,
    ),
    "xgboost": Entry(
        boosting.XGBoostClassifier,
        boosting.XGBoostRegressor,
        {"n_estimators": 500, "n_jobs": 1, "tree_method": "hist", "verbosity": 0},
        {
            "learning_rate": {"loguniform": [0.01, 0.3]},
            "max_depth": {"int": [2, 8]},
            "min_child_weight": {"loguniform": [0.5, 10.0]},
            "subsample": {"uniform": [0.5, 1.0]},
            "colsample_bytree": {"uniform": [0.5, 1.0]},
        },
        default=False,
    ),
}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An algorithm of the run with its parsed search space."""

    name: str
    dimensions: dict[str, space.Dimension]
    field: str  # where it came from in the spec, for messages


def names_for(task: str) -> list[str]:
    """Every registry algorithm that has a variant for `task`."""
    attribute = "classifier" if task == "classification" else "regressor"
    return [name for name, entry in REGISTRY.items() if getattr(entry, attribute) is not None]


def default_names_for(task: str) -> list[str]:
    """The candidates of a run whose spec lists no algorithms."""
    return [name for name in names_for(task) if REGISTRY[name].default]


def estimator_class(name: str, task: str) -> type:
    entry = REGISTRY[name]
    cls = entry.classifier if task == "classification" else entry.regressor
    if cls is None:
        other = "classification" if task == "regression" else "regression"
        raise errors.InvalidSpec(
            f"algorithms: {name} is a {other} algorithm and the problem is {task}; choose from {', '.join(names_for(task))}"
        )
    return cls


def candidates(specs: list[tuning_api.Algorithm], task: str) -> list[Candidate]:
    """The run's candidates: the spec's algorithms (or every one for the task) with merged spaces."""
    if not specs:
        specs = [tuning_api.Algorithm(name=name) for name in default_names_for(task)]
    found = []
    for index, spec in enumerate(specs):
        field = f"algorithms[{index}]"
        cls = estimator_class(spec.name, task)
        try:
            cls().set_params(**{k: None for k in spec.params})  # scikit-learn's own message for unknown names
        except ValueError as e:
            raise errors.InvalidSpec(f"{field}.params: {e}") from e
        unknown = sorted(set(spec.params) - set(cls().get_params()))
        if unknown:  # LightGBM and XGBoost take any keyword and only warn when fitting
            raise errors.InvalidSpec(
                f"{field}.params: {', '.join(unknown)} is not a parameter of {spec.name}; "
                f"valid parameters are: {', '.join(sorted(cls().get_params()))}"
            )
        merged = {**REGISTRY[spec.name].default_space, **spec.params}
        found.append(Candidate(spec.name, space.parse(merged, field=f"{field}.params"), field))
    return found


def build(name: str, task: str, params: dict[str, Any], *, seed: int, balanced: bool = False) -> Any:
    """An unfitted estimator: registry defaults, then `params`; seeded; class-balanced when asked and supported."""
    cls = estimator_class(name, task)
    accepted = cls().get_params()
    settings = {**REGISTRY[name].defaults}
    if "random_state" in accepted:
        settings["random_state"] = seed
    if balanced and "class_weight" in accepted:
        settings["class_weight"] = "balanced"
    settings.update(params)
    estimator = cls(**settings)
    if task == "classification" and REGISTRY[name].calibrated:
        # Checked here, or the calibrator's inner cross_val_predict would name itself in the message.
        estimator._validate_params()
        return calibration.CalibratedClassifierCV(estimator, ensemble=False)
    return estimator


def supports_class_weight(name: str, task: str) -> bool:
    return "class_weight" in estimator_class(name, task)().get_params()
