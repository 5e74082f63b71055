"""Bias mitigation (``TrainingJob.spec.preprocessing.mitigation``): the served model when one is set.

``Mitigated`` wraps the run's processing pipeline (``processing.build``) and follows scikit-learn's
estimator contract. ``fit(X, y)`` takes the features and the sensitive features (which may be kept
out of the features: they group the rows, the model never sees them unless they are features too):

- ``reweighing``: Kamiran & Calders (2012) sample weights ``P(group) P(label) / P(group, label)``
  per cell, which make the favorable label independent of the group in the weighted training rows;
  the pipeline is fitted with them (its estimator must accept sample weights).
- ``exponentiated_gradient``: fairlearn's reductions approach (Agarwal et al. 2018): the pipeline's
  processing steps are fitted once, then ``ExponentiatedGradient`` fits a weighted mixture of the
  estimator under the constraint (estimators that accept sample weights only).
- ``threshold_optimizer``: fairlearn's post-processing (Hardt et al. 2016): per-group thresholds on
  the fitted pipeline's probabilities. It needs the sensitive features at prediction time, so they
  are part of the model's inputs (``input_columns``) and every request must carry them.

The reductions and the post-processing define randomized classifiers. The served model is the
deterministic one: ``predict_proba`` is the probability that the randomized classifier says
favorable, and ``predict`` its most likely label, so that a row gets the same answer online, in a
batch and in the evaluation that measured its fairness (which is measured on these predictions).
Binary classification only; the estimator is trained on favorable (1) versus not (0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import base as sklearn_base
from sklearn import pipeline as sklearn_pipeline
from sklearn.utils import validation

from mlkube.ml import errors, fairness

METHODS = ("reweighing", "exponentiated_gradient", "threshold_optimizer")
WEIGHTED = ("reweighing", "exponentiated_gradient")
# Preprocessing steps that add or remove training rows: sample weights cannot follow them.
ROW_SAMPLERS = ("drop_outliers", "augment", "balance")
_REDUCTION_CONSTRAINTS = {
    "demographic_parity": "DemographicParity",
    "equalized_odds": "EqualizedOdds",
    "equal_opportunity": "TruePositiveRateParity",
}
_THRESHOLD_CONSTRAINTS = {
    "demographic_parity": "demographic_parity",
    "equalized_odds": "equalized_odds",
    "equal_opportunity": "true_positive_rate_parity",
}


def accepts_weights(estimator) -> bool:
    """Whether ``estimator.fit`` takes ``sample_weight`` (what reweighing and the reductions need)."""
    return validation.has_fit_parameter(estimator, "sample_weight")


def joint_groups(sensitive: pd.DataFrame) -> pd.Series:
    """One group label per row: the sensitive features' values together (their intersection)."""
    labels = [fairness.group_labels(sensitive[c]) for c in sensitive.columns]
    if len(labels) == 1:
        return labels[0].reset_index(drop=True)
    joined = labels[0].str.cat(labels[1:], sep=", ")
    return joined.reset_index(drop=True)


def kamiran_calders(groups: pd.Series, y: np.ndarray) -> np.ndarray:
    """Per-row weight ``P(group) P(label) / P(group, label)``; the weights sum to the number of rows."""
    frame = pd.DataFrame({"g": np.asarray(groups), "y": np.asarray(y)})
    n = len(frame)
    p_group = frame["g"].map(frame["g"].value_counts() / n)
    p_label = frame["y"].map(frame["y"].value_counts() / n)
    p_joint = frame.groupby(["g", "y"])["y"].transform("size") / n
    return (p_group * p_label / p_joint).to_numpy(dtype=float)


class Mitigated(sklearn_base.ClassifierMixin, sklearn_base.BaseEstimator):
    """A binary classifier pipeline fitted with a bias mitigation (see the module docstring)."""

    def __init__(
        self,
        pipeline=None,
        *,
        method: str = "reweighing",
        constraint: str | None = None,
        features: list[str] | None = None,
        sensitive: list[str] | None = None,
        favorable=None,
    ):
        self.pipeline = pipeline
        self.method = method
        self.constraint = constraint
        self.features = features
        self.sensitive = sensitive
        self.favorable = favorable

    @property
    def input_columns(self) -> list[str]:
        """The columns ``predict`` reads: the features, and the sensitive features for threshold_optimizer."""
        features = list(self.features or [])
        if self.method != "threshold_optimizer":
            return features
        return features + [c for c in self.sensitive or [] if c not in features]

    @property
    def requires_sensitive(self) -> list[str]:
        """Sensitive features every prediction request must carry."""
        return list(self.sensitive or []) if self.method == "threshold_optimizer" else []

    @property
    def steps(self) -> list[tuple[str, object]]:
        """The fitted steps in the order data goes through them, as a Pipeline names them."""
        validation.check_is_fitted(self)
        if self.method == "reweighing":
            return [("reweighing", None), *self.pipeline_.steps]
        if self.method == "exponentiated_gradient":
            return [*self.processing_.steps, ("exponentiated_gradient", self.mitigator_)]
        return [*self.pipeline_.steps, ("threshold_optimizer", self.mitigator_)]

    def fit(self, X: pd.DataFrame, y) -> Mitigated:
        if self.method not in METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2 or self.favorable not in self.classes_:
            raise errors.InvalidSpec(
                f"preprocessing.mitigation: {self.method} needs two classes, one of them the favorable outcome "
                f"{self.favorable!r}; the target has {', '.join(map(str, self.classes_[:10]))}"
            )
        favorable = (y == self.favorable).astype(int)
        groups = joint_groups(X[list(self.sensitive)])
        features = X[list(self.features)]
        constraint = self.constraint or "demographic_parity"
        if self.method == "reweighing":
            weights = kamiran_calders(groups, favorable)
            self.pipeline_ = sklearn_base.clone(self.pipeline).fit(features, favorable, model__sample_weight=weights)
        elif self.method == "exponentiated_gradient":
            from fairlearn import reductions

            steps = sklearn_base.clone(self.pipeline).steps
            self.processing_ = sklearn_pipeline.Pipeline(steps[:-1])
            encoded = self.processing_.fit_transform(features, favorable)
            moment = getattr(reductions, _REDUCTION_CONSTRAINTS[constraint])()
            self.mitigator_ = reductions.ExponentiatedGradient(steps[-1][1], constraints=moment)
            self.mitigator_.fit(encoded, favorable, sensitive_features=groups.to_numpy())
        else:
            from fairlearn import postprocessing

            self.pipeline_ = sklearn_base.clone(self.pipeline).fit(features, favorable)
            self.mitigator_ = postprocessing.ThresholdOptimizer(
                estimator=self.pipeline_,
                constraints=_THRESHOLD_CONSTRAINTS[constraint],
                prefit=True,
                predict_method="predict_proba",
            )
            try:
                self.mitigator_.fit(features, favorable, sensitive_features=groups.to_numpy())
            except ValueError as e:  # fairlearn: a group whose training rows all have one label
                raise errors.DataError(
                    f"preprocessing.mitigation: threshold_optimizer cannot set a threshold for every group of "
                    f"{', '.join(self.sensitive)}: {e}; each group needs both outcomes among the training rows "
                    "(merge small groups into a column of their own, or use exponentiated_gradient)"
                ) from e
            self.groups_ = sorted(set(groups))
        return self

    def favorable_probability(self, X: pd.DataFrame) -> np.ndarray:
        """The probability that the (randomized) mitigated classifier predicts the favorable outcome."""
        validation.check_is_fitted(self)
        features = X[list(self.features)]
        if self.method == "reweighing":
            return self.pipeline_.predict_proba(features)[:, 1]
        if self.method == "exponentiated_gradient":
            encoded = self.processing_.transform(features)
            found = np.zeros(len(X))
            for weight, predictor in zip(self.mitigator_.weights_, self.mitigator_.predictors_):
                if weight > 0:
                    found += weight * np.asarray(predictor.predict(encoded), dtype=float)
            return np.clip(found, 0.0, 1.0)
        groups = joint_groups(X[list(self.sensitive)])
        unseen = sorted(set(groups) - set(self.groups_))
        if unseen:
            raise ValueError(
                f"sensitive feature(s) {', '.join(self.sensitive)}: group {unseen[0]!r} was not in the training data; "
                f"threshold_optimizer has thresholds for {', '.join(self.groups_)} only"
            )
        # fairlearn has no public per-row probability of its randomized prediction; _pmf_predict is
        # that probability (fairlearn is pinned in constraints.txt and a unit test guards the call).
        return self.mitigator_._pmf_predict(features, sensitive_features=groups.to_numpy())[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities in ``classes_`` order."""
        p = self.favorable_probability(X)
        favorable_first = self.classes_[0] == self.favorable
        return np.column_stack([p, 1 - p] if favorable_first else [1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most likely label of each row (the first class on a tie, as ``argmax`` picks)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def check(method: str, *, task_classes: int, steps: list[str]) -> None:
    """Refuse a mitigation the run cannot apply (``errors.InvalidSpec`` naming the field)."""
    if method == "none":
        return
    if task_classes != 2:
        raise errors.InvalidSpec(
            f"preprocessing.mitigation: {method} needs a binary target; this one has {task_classes} classes (use method: none)"
        )
    samplers = [s for s in steps if s in ROW_SAMPLERS]
    if method in WEIGHTED and samplers:
        raise errors.InvalidSpec(
            f"preprocessing.mitigation: {method} weighs the training rows, which the row-changing step(s) "
            f"{', '.join(samplers)} would misalign; use balance: none or class_weight, no outlier dropping and no "
            "augmentation, or threshold_optimizer"
        )
