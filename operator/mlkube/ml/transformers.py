"""The few transformers and row samplers scikit-learn and imbalanced-learn do not ship.

Each keeps scikit-learn's contract (constructor stores parameters, `fit` learns state ending
in `_` and returns self) so it clones, pickles and cross-validates like a built-in. The row
functions are used through `imblearn.FunctionSampler`: they change training rows only and are
skipped at prediction time. Nothing here reads the spec; `processing` wires these together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import base, decomposition, ensemble, feature_selection
from sklearn.utils import validation


class AsCategories(base.OneToOneFeatureMixin, base.TransformerMixin, base.BaseEstimator):
    """Cast categorical values to strings, keeping missing values missing.

    Serving receives JSON, where `1` and `"1"` must mean the same category; training data mixes
    types too (a column of ints with a few labels). Strings make both consistent.
    """

    def fit(self, X, y=None):
        validation.validate_data(self, X, dtype=None, ensure_all_finite=False)
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        strings = {c: frame[c].astype(str).where(frame[c].notna(), np.nan) for c in frame.columns}
        return pd.DataFrame(strings, columns=frame.columns).to_numpy(dtype=object)


class OutlierClipper(base.OneToOneFeatureMixin, base.TransformerMixin, base.BaseEstimator):
    """Clip each numeric column to limits learned on the training rows (IQR fences or z-score)."""

    def __init__(self, method: str = "iqr", factor: float = 1.5):
        self.method = method
        self.factor = factor

    def fit(self, X, y=None):
        values = validation.validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        self.lower_, self.upper_ = outlier_limits(values, method=self.method, factor=self.factor)
        return self

    def transform(self, X):
        validation.check_is_fitted(self)
        values = validation.check_array(X, ensure_all_finite="allow-nan", dtype=np.float64, copy=True)
        return np.clip(values, self.lower_, self.upper_)


class PrincipalComponents(base.TransformerMixin, base.BaseEstimator):
    """PCA with `components` capped at what the training data allows."""

    def __init__(self, components: int = 10, random_state: int | None = None):
        self.components = components
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validation.check_array(X)
        n = max(1, min(self.components, X.shape[0] - 1, X.shape[1]))
        self.pca_ = decomposition.PCA(n_components=n, random_state=self.random_state).fit(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        validation.check_is_fitted(self)
        return self.pca_.transform(validation.check_array(X))

    def get_feature_names_out(self, input_features=None):
        return self.pca_.get_feature_names_out()


class KBest(feature_selection.SelectKBest):
    """SelectKBest whose `k` is capped at the number of features the encoding produced."""

    def _check_params(self, X, y):
        # One-hot encoding decides the feature count only at fit time, so a fixed k may exceed it.
        self.k = min(self.k, X.shape[1]) if self.k != "all" else self.k
        super()._check_params(X, y)


def model_selector(task: str, *, threshold: float | None, random_state: int) -> feature_selection.SelectFromModel:
    """Keep the features a small extra-trees ensemble finds important (default: above mean importance)."""
    forest = ensemble.ExtraTreesClassifier if task == "classification" else ensemble.ExtraTreesRegressor
    return feature_selection.SelectFromModel(
        forest(n_estimators=50, random_state=random_state, n_jobs=1),
        threshold=threshold if threshold is not None else "mean",
    )


def outlier_limits(values: np.ndarray, *, method: str, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column lower and upper limits, ignoring missing values."""
    if method == "iqr":
        q1, q3 = np.nanpercentile(values, [25, 75], axis=0)
        spread = q3 - q1
        return q1 - factor * spread, q3 + factor * spread
    if method == "zscore":
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        return mean - factor * std, mean + factor * std
    raise ValueError(f"outliers.method: {method!r} has no per-column limits; use iqr or zscore")


def drop_outliers(X: pd.DataFrame, y, *, columns: list[str], method: str, factor: float, random_state: int):
    """Training rows without outliers in `columns` (FunctionSampler function; `X` is the raw frame)."""
    values = X[columns].to_numpy(dtype=np.float64)
    if method == "isolation_forest":
        filled = np.where(np.isnan(values), np.nanmedian(values, axis=0), values)
        keep = ensemble.IsolationForest(random_state=random_state, n_jobs=1).fit_predict(filled) == 1
    else:
        lower, upper = outlier_limits(values, method=method, factor=factor)
        inside = ((values >= lower) & (values <= upper)) | np.isnan(values)
        keep = inside.all(axis=1)
    return _take(X, keep), _take(y, keep)


def jitter(X: pd.DataFrame, y, *, columns: list[str], copies: int, scale: float, random_state: int):
    """Training rows plus `copies` copies with Gaussian noise on `columns` (FunctionSampler function)."""
    rng = np.random.default_rng(random_state)
    std = X[columns].astype(np.float64).std(axis=0, ddof=0).fillna(0.0).to_numpy()
    frames, targets = [X], [y]
    for _ in range(copies):
        copy = X.copy()
        noise = rng.normal(0.0, 1.0, size=(len(X), len(columns))) * std * scale
        copy[columns] = X[columns].astype(np.float64).to_numpy() + noise
        frames.append(copy)
        targets.append(y)
    y_all = pd.concat(targets, ignore_index=True) if isinstance(y, pd.Series) else np.concatenate(targets)
    return pd.concat(frames, ignore_index=True), y_all


def _take(data, mask: np.ndarray):
    return data[mask].reset_index(drop=True) if isinstance(data, (pd.DataFrame, pd.Series)) else data[mask]
