"""The hyper-parameter search of a TrainingJob: candidate algorithms and how they are tuned.

``spec.algorithms`` and ``spec.tuning`` of the TrainingJob kind (``api/training.py``): the
registry's algorithm names, each candidate's search space, the search strategy and budget, and
the study database trial pods share. Plain data with their validation; the CRD schema is
generated from them, so their wire names are the API. The search itself is the ML core's
(``ml/tuning.py``, ``ml/algorithms.py``).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from mlkube.api import base

AlgorithmName = Literal[
    "logistic_regression",
    "linear_regression",
    "ridge",
    "random_forest",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "svm",
    # anomaly_detection (ml/tasks/anomaly.py)
    "isolation_forest",
    "local_outlier_factor",
    "one_class_svm",
    "robust_covariance",
    # clustering (ml/tasks/clustering.py)
    "kmeans",
    "gaussian_mixture",
    "agglomerative",
    "lightgbm",  # LightGBM (CPU wheel), early stopping on a validation share of the training rows
    "xgboost",  # XGBoost (xgboost-cpu wheel), likewise
]


class Algorithm(base.ApiModel):
    """A candidate estimator and its search space."""

    name: AlgorithmName
    """Estimator from the registry; the task picks the classifier or regressor variant."""
    params: dict[str, Any] = pydantic.Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Search space per hyper-parameter: a fixed value, a list of choices, or {int: [lo, hi]},
    {uniform: [lo, hi]}, {loguniform: [lo, hi]}. Omitted parameters use the registry's default space."""


class StudySecretRef(base.ApiModel):
    """One key of a Secret in the TrainingJob's namespace."""

    name: base.ObjectName
    """The Secret's name."""
    key: str = pydantic.Field("url", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key that holds the database URL."""


class StudyStorage(base.ApiModel):
    """Where the trial pods share their Optuna study."""

    secret_ref: StudySecretRef
    """A Secret key holding an SQLAlchemy database URL (``postgresql+psycopg://user:pass@host/db``);
    it reaches the trainer pods as an environment variable, never in the spec."""


class Tuning(base.ApiModel):
    """Hyper-parameter search."""

    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    """Search strategy; bayesian uses Optuna's TPE sampler."""
    max_trials: int = pydantic.Field(20, ge=1, le=10000)
    """Upper bound on trials over all candidate algorithms."""
    parallelism: int = pydantic.Field(1, ge=1, le=64)
    """Trials run at once."""
    cv_folds: int = pydantic.Field(3, ge=2, le=20)
    """Cross-validation folds on the training partition."""
    timeout: base.Duration | None = None
    """Time budget of the search; the best trial so far wins when it runs out."""
    early_stopping: bool = True
    """Stop hopeless trials after their first folds."""
    seed: int = 42
    """Random seed of the search."""
    workers: int = pydantic.Field(1, ge=1, le=64)
    """Trial pods: an Indexed Job of this many pods sharing one Optuna study (each runs
    ``parallelism`` trials at once); index 0 fits and writes the version."""
    storage: StudyStorage | None = None
    """The study database the workers share; default: the operator's configured storage
    (``MLKUBE_STUDY_STORAGE``). Several workers need one of the two."""
