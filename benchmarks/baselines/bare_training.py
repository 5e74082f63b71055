"""Bare scikit-learn and pandas versions of the work mlkube's trainer does: the fits, folds, features
and scoring written as a user would write them without the trainer. benchmarks/training.py times the
trainer against these.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import time

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn import base, compose, ensemble, impute, linear_model, metrics, pipeline, preprocessing
from sklearn.feature_extraction import text as sklearn_text

from mlkube.api import trainer as trainer_api
from mlkube.ml import data, split
from mlkube.ml.tasks import text

# A group column for the fairness measurement (digits have no people): two seeded groups, never a feature.
SENSITIVE = "writer"
TEXT_C = [0.5, 2.0, 8.0, 32.0]  # logistic regression points of the text comparison, 3-fold CV each
# The forecasting comparison: ridge points, horizon, lags and rolling windows of the bare features.
ALPHAS, HORIZON, LAGS, WINDOWS = [0.1, 1.0, 10.0], 12, (1, 2, 3, 12, 13), (3, 12)


def bare_sklearn(spec: trainer_api.TrainerInput, snapshot: data.Snapshot) -> None:
    """The same fits in plain scikit-learn: CV of every grid point, final fit, validation and test scoring."""
    table = snapshot.table
    features = [c for c in table.columns if c not in ("digit", SENSITIVE)]
    parts = split.partition(table, target="digit", task="classification", spec=spec.preprocessing.split)
    X, y = parts.train[features], parts.train["digit"]
    folds = split.folds(y, task="classification", spec=spec.preprocessing.split, cv_folds=spec.tuning.cv_folds)
    params = spec.algorithms[0].params
    model = pipeline.Pipeline(
        [
            (
                "features",
                compose.ColumnTransformer(
                    [
                        (
                            "numeric",
                            pipeline.make_pipeline(impute.SimpleImputer(strategy="median"), preprocessing.StandardScaler()),
                            features,
                        )
                    ]
                ),
            ),
            (
                "model",
                ensemble.RandomForestClassifier(
                    n_estimators=params["n_estimators"], random_state=spec.preprocessing.split.seed, n_jobs=1
                ),
            ),
        ]
    )
    best, best_score = None, -np.inf
    for depth, leaf in itertools.product(params["max_depth"], params["min_samples_leaf"]):
        point = {"model__max_depth": depth, "model__min_samples_leaf": leaf}
        scores = []
        for train, held_out in folds:
            fitted = base.clone(model).set_params(**point).fit(X.iloc[train], y.iloc[train])
            scores.append(metrics.roc_auc_score(y.iloc[held_out], fitted.predict_proba(X.iloc[held_out]), multi_class="ovr"))
        if np.mean(scores) > best_score:
            best, best_score = point, np.mean(scores)
    final = base.clone(model).set_params(**best).fit(X, y)
    for part in (parts.validation, parts.test):
        metrics.roc_auc_score(part["digit"], final.predict_proba(part[features]), multi_class="ovr")
        metrics.accuracy_score(part["digit"], final.predict(part[features]))


_CEILING: dict = {}


def _cv_fit(depth) -> None:
    X, y, folds, trees = _CEILING["X"], _CEILING["y"], _CEILING["folds"], _CEILING["trees"]
    for train, _ in folds:
        ensemble.RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0, n_jobs=1).fit(
            X.iloc[train], y.iloc[train]
        )


def bare_pool_seconds(snapshot: data.Snapshot, spec: trainer_api.TrainerInput, depths: list, *, trees: int):
    """(1 process, 2 processes) wall seconds of bare scikit-learn fits of the same trials: what this machine allows."""
    features = [c for c in snapshot.table.columns if c not in ("digit", SENSITIVE)]
    parts = split.partition(snapshot.table, target="digit", task="classification", spec=spec.preprocessing.split)
    folds = split.folds(parts.train["digit"], task="classification", spec=spec.preprocessing.split, cv_folds=3)
    _CEILING.update(X=parts.train[features], y=parts.train["digit"], trees=trees, folds=folds)
    started = time.perf_counter()
    for depth in depths:
        _cv_fit(depth)
    sequential = time.perf_counter() - started
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        started = time.perf_counter()
        list(pool.map(_cv_fit, depths))
        parallel = time.perf_counter() - started
    return sequential, parallel


class _Tfidf(base.TransformerMixin, base.BaseEstimator):
    """Word and character TF-IDF of one text column, as a user would write it with scikit-learn."""

    def fit(self, X, y=None):
        texts = X["review"].fillna("").tolist()
        self.words_ = sklearn_text.TfidfVectorizer(
            ngram_range=text.WORD_NGRAMS, max_features=text.MAX_WORD_TERMS, sublinear_tf=True, dtype=np.float32
        ).fit(texts)
        self.chars_ = sklearn_text.TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=text.CHAR_NGRAMS,
            max_features=text.MAX_CHAR_TERMS,
            sublinear_tf=True,
            dtype=np.float32,
        ).fit(texts)
        return self

    def transform(self, X):
        texts = X["review"].fillna("").tolist()
        return sparse.hstack([self.words_.transform(texts), self.chars_.transform(texts)], format="csr")


def bare_text(spec: trainer_api.TrainerInput, snapshot: data.Snapshot) -> None:
    """The text run's fits in plain scikit-learn: CV of every C, final fit, validation and test scoring."""
    parts = split.partition(snapshot.table, target="score", task="classification", spec=spec.preprocessing.split)
    X, y = parts.train[["review"]], parts.train["score"]
    folds = split.folds(y, task="classification", spec=spec.preprocessing.split, cv_folds=spec.tuning.cv_folds)
    model = pipeline.Pipeline([("features", _Tfidf()), ("model", linear_model.LogisticRegression(max_iter=1000))])
    best, best_score = None, -np.inf
    for c in TEXT_C:
        scores = []
        for train, held_out in folds:
            fitted = base.clone(model).set_params(model__C=c).fit(X.iloc[train], y.iloc[train])
            scores.append(metrics.roc_auc_score(y.iloc[held_out] == "great", fitted.predict_proba(X.iloc[held_out])[:, 0]))
        if np.mean(scores) > best_score:
            best, best_score = c, np.mean(scores)
    final = base.clone(model).set_params(model__C=best).fit(X, y)
    for part in (parts.validation, parts.test):
        metrics.roc_auc_score(part["score"] == "great", final.predict_proba(part[["review"]])[:, 0])
        metrics.accuracy_score(part["score"], final.predict(part[["review"]]))


def _bare_features(y: pd.Series, code: float) -> pd.DataFrame:
    """Lags, rolling means and deviations of the values before each step, calendar fields, the series code."""
    features = pd.DataFrame({f"lag_{n}": y.shift(n) for n in LAGS})
    for w in WINDOWS:
        features[f"mean_{w}"] = y.shift(1).rolling(w).mean()
    for w in WINDOWS:
        features[f"std_{w}"] = y.shift(1).rolling(w).std(ddof=0)
    features["month"], features["quarter"] = y.index.month, y.index.quarter
    features["series"] = code
    return features


def _bare_fit(series: dict[str, pd.Series], alpha: float | None):
    """(model or None for the seasonal-naive forecast, scales)."""
    scales = {key: float(y.abs().mean()) for key, y in series.items()}
    if alpha is None:
        return None, scales
    frames = []
    for code, (key, y) in enumerate(sorted(series.items())):
        features = _bare_features(y / scales[key], float(code)).iloc[max(LAGS) :]
        frames.append(features.assign(__z__=(y / scales[key]).iloc[max(LAGS) :] - features["lag_12"]))
    rows = pd.concat(frames)
    encoded = ["month", "quarter", "series"]
    model = pipeline.Pipeline(
        [
            (
                "features",
                compose.ColumnTransformer(
                    [
                        ("onehot", preprocessing.OneHotEncoder(handle_unknown="ignore"), encoded),
                        ("scale", preprocessing.StandardScaler(), [c for c in rows.columns if c not in encoded + ["__z__"]]),
                    ]
                ),
            ),
            ("model", linear_model.Ridge(alpha=alpha)),
        ]
    )
    return model.fit(rows.drop(columns="__z__"), rows["__z__"]), scales


def _bare_forecast(series: dict[str, pd.Series], fitted, steps: int) -> dict[str, np.ndarray]:
    """Recursive forecasts: each step's features from the values before it (numpy), its prediction appended."""
    model, scales = fitted
    found = {}
    for code, (key, y) in enumerate(sorted(series.items())):
        values = list(y.to_numpy() / scales[key])
        times = pd.date_range(y.index[-1], periods=steps + 1, freq="MS")[1:]
        for moment in times:
            past = np.asarray(values)
            row = {f"lag_{n}": past[-n] for n in LAGS}
            row.update({f"mean_{w}": past[-w:].mean() for w in WINDOWS})
            row.update({f"std_{w}": past[-w:].std() for w in WINDOWS})
            row.update(month=moment.month, quarter=moment.quarter, series=float(code))
            correction = 0.0 if model is None else float(model.predict(pd.DataFrame([row]))[0])
            values.append(row["lag_12"] + correction)
        found[key] = np.asarray(values[-steps:]) * scales[key]
    return found


def bare_forecasting(path: str) -> None:
    """The forecasting trainer's fits and forecasts, bare: every configuration on 3 expanding-window folds,
    the chosen one on the training part and the test horizon, the baseline, the refit on the whole history."""
    table = pd.read_csv(path, parse_dates=["month"])
    series = {key: rows.set_index("month")["casualties"].astype(float).asfreq("MS") for key, rows in table.groupby("seat")}
    train = {key: y.iloc[:-HORIZON] for key, y in series.items()}
    scores = {}
    for alpha in [None, *ALPHAS]:
        errors = []
        for cut in (36, 24, 12):
            part = {key: y.iloc[: len(y) - cut] for key, y in train.items()}
            predicted = _bare_forecast(part, _bare_fit(part, alpha), HORIZON)
            actual = {key: y.iloc[len(y) - cut : len(y) - cut + HORIZON].to_numpy() for key, y in train.items()}
            errors.append(np.mean(np.concatenate([np.abs(actual[k] - predicted[k]) / actual[k] for k in actual])))
        scores[alpha] = float(np.mean(errors))
    best = min(scores, key=scores.get)
    _bare_forecast(train, _bare_fit(train, best), HORIZON)
    _bare_forecast(train, _bare_fit(train, None), HORIZON)
    _bare_fit(series, best)
