"""LightGBM and XGBoost as scikit-learn estimators that stop early on a validation split.

Each class is the library's own scikit-learn estimator (same parameters, so search spaces and
scikit-learn's parameter checks work unchanged) whose `fit` holds out `VALIDATION_FRACTION` of
the rows it is given (stratified for classifiers, seeded by `random_state`) and stops adding
trees when the validation loss has not improved for `STOPPING_ROUNDS` rounds; `n_estimators` is
the ceiling. The split is taken from the rows `fit` receives, as HistGradientBoosting's
`early_stopping` does, and not from the TrainingJob's validation partition: inside the pipeline
the estimator never sees that partition, and a tuning fold's held-out rows, or the validation
partition the run reports, stay unseen by the model they judge. Too few rows to hold any out
(or a class too small to stratify) fits every tree without stopping. The number of trees kept
is `best_iteration_` (0 for a LightGBM model that kept every tree).

The libraries' classifiers see labels 0..k-1 (XGBoost's accepts no others, LightGBM's no others
for its validation rows): labels are encoded in `fit` and decoded in `predict`, so `classes_`
are the data's own labels like every other classifier's. Both run on one thread
(`n_jobs=1`): trials run side by side for parallelism. No I/O; the models pickle like any
scikit-learn estimator (the artifact digest rules apply unchanged).
"""

from __future__ import annotations

import lightgbm
import numpy as np
import xgboost
from sklearn import model_selection, preprocessing

VALIDATION_FRACTION = 0.1
STOPPING_ROUNDS = 20
MIN_VALIDATION_ROWS = 20


def _holdout(X, y, sample_weight, *, stratify: bool, seed):
    """(fit rows, validation rows) of X, y and the weights; None when there are too few rows."""
    rows = X.shape[0]
    if int(rows * VALIDATION_FRACTION) < MIN_VALIDATION_ROWS:
        return None
    labels = np.asarray(y)
    if stratify:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            return None
    indices = np.arange(rows)
    fit_rows, validation_rows = model_selection.train_test_split(
        indices, test_size=VALIDATION_FRACTION, random_state=seed, stratify=labels if stratify else None
    )
    weights = None if sample_weight is None else np.asarray(sample_weight)
    return (fit_rows, validation_rows), _take(X, fit_rows), _take(X, validation_rows), labels, weights


def _take(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


class _Labelled:
    """Classifiers: the library sees labels 0..k-1, `classes_` and `predict` are the data's labels."""

    def fit(self, X, y, sample_weight=None):
        self.__dict__.pop("labels_", None)  # while the library fits, classes_ are its encoded ones
        labels = preprocessing.LabelEncoder().fit(np.asarray(y))
        self._fit_encoded(X, labels.transform(np.asarray(y)), sample_weight)
        self.labels_ = labels
        return self

    @property
    def classes_(self):
        labels = self.__dict__.get("labels_")
        return super().classes_ if labels is None else labels.classes_

    def predict(self, X, **kwargs):
        return self.labels_.inverse_transform(np.asarray(super().predict(X, **kwargs), dtype=int))


class _LightGBM:
    def _fit_encoded(self, X, y, sample_weight):
        split = _holdout(X, y, sample_weight, stratify=self._stratify, seed=self.random_state)
        if split is None:
            return super().fit(X, y, sample_weight=sample_weight)
        (fit_rows, validation_rows), X_fit, X_validation, labels, weights = split
        return super().fit(
            X_fit,
            labels[fit_rows],
            sample_weight=None if weights is None else weights[fit_rows],
            eval_X=(X_validation,),
            eval_y=(labels[validation_rows],),
            eval_sample_weight=None if weights is None else [weights[validation_rows]],
            callbacks=[lightgbm.early_stopping(STOPPING_ROUNDS, verbose=False)],
        )


class _LabelledLightGBM(_Labelled, _LightGBM):
    # One mixin base: the libraries' get_params look for their class at __bases__[0] or [1].
    pass


class LightGBMClassifier(_LabelledLightGBM, lightgbm.LGBMClassifier):
    """lightgbm.LGBMClassifier stopping early on a stratified share of its training rows."""

    _stratify = True


class LightGBMRegressor(_LightGBM, lightgbm.LGBMRegressor):
    """lightgbm.LGBMRegressor stopping early on a share of its training rows."""

    _stratify = False

    def fit(self, X, y, sample_weight=None):
        return self._fit_encoded(X, np.asarray(y, dtype=float), sample_weight)


class _XGBoost:
    def _fit_encoded(self, X, y, sample_weight):
        split = _holdout(X, y, sample_weight, stratify=self._stratify, seed=self.random_state)
        if split is None:
            self.set_params(early_stopping_rounds=None)
            super().fit(X, y, sample_weight=sample_weight, verbose=False)
            self.best_iteration_ = self.n_estimators
            return self
        (fit_rows, validation_rows), X_fit, X_validation, labels, weights = split
        self.set_params(early_stopping_rounds=STOPPING_ROUNDS)
        super().fit(
            X_fit,
            labels[fit_rows],
            sample_weight=None if weights is None else weights[fit_rows],
            eval_set=[(X_validation, labels[validation_rows])],
            sample_weight_eval_set=None if weights is None else [weights[validation_rows]],
            verbose=False,
        )
        self.best_iteration_ = int(self.best_iteration) + 1
        return self


class _LabelledXGBoost(_Labelled, _XGBoost):
    pass


class XGBoostClassifier(_LabelledXGBoost, xgboost.XGBClassifier):
    """xgboost.XGBClassifier stopping early on a stratified share of its training rows, with any labels."""

    _stratify = True


class XGBoostRegressor(_XGBoost, xgboost.XGBRegressor):
    """xgboost.XGBRegressor stopping early on a share of its training rows."""

    _stratify = False

    def fit(self, X, y, sample_weight=None):
        return self._fit_encoded(X, np.asarray(y, dtype=float), sample_weight)
