"""Free-text feature columns (`problem.textColumns`): features, checks, schema, explanations, drift.

Features: each text column becomes TF-IDF weights of word uni- and bigrams and of character
n-grams within word boundaries (`TextVectorizer`), each with a bounded vocabulary (the most
frequent `MAX_WORD_TERMS` and `MAX_CHAR_TERMS` terms of the rows it is fitted on), as a branch of
the pipeline's ColumnTransformer. The vocabulary is learned inside the pipeline, so
cross-validation refits it per fold and the served model takes the raw text. Character n-grams
keep misspellings and word variants ("delicious", "delicous") close; sublinear term frequency
keeps a long review from outweighing a short one. A missing text is the empty text.

The features are sparse, so a pipeline with text keeps the ColumnTransformer's output sparse;
steps that need dense input (PCA, hist_gradient_boosting) are refused with the field to change.
Without `algorithms`, a text project tunes the linear models (`default_algorithms`), which learn
from tens of thousands of sparse weights in seconds where trees take minutes.

Explanations name terms (`term_variants`): a word of the text is removed, the model scores the
text again, and the drop is that word's contribution. Drift compares per-row length (words),
per-row out-of-vocabulary share (words the reference used in fewer than `VOCABULARY_MIN_ROWS`
other rows) and the distribution of words over the reference's `DRIFT_TERMS` most frequent
(`drift_frames`, `term_drift`). Word tokens everywhere are TF-IDF's: lower-cased runs of two or
more word characters. No I/O.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn import base
from sklearn.feature_extraction import text as sklearn_text
from sklearn.utils import validation

from mlkube.api import preprocessing, project
from mlkube.api import tuning as tuning_api
from mlkube.ml import drift, errors

MAX_WORD_TERMS = 20_000
MAX_CHAR_TERMS = 20_000
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 5)
TRANSFORM_MEMO_TEXTS = 20_000
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
# Explanations: at most this many distinct words of a text are occluded, the most frequent first.
MAX_EXPLAINED_TERMS = 60
TOP_TERMS = 10
# Drift: a word is in the reference's vocabulary when at least this many reference rows use it;
# the term distribution is compared over the reference's most frequent words.
VOCABULARY_MIN_ROWS = 2
DRIFT_TERMS = 500
OTHER_TERMS = "(other words)"
# Algorithms that take sparse features and fit them quickly: the default candidates with text,
# with weaker regularisation than the registry's default spaces (TF-IDF weights are small, and
# a strongly regularised model predicts nearly the same probability for every text).
_LINEAR = {
    "classification": {
        "logistic_regression": {"C": {"loguniform": [0.5, 100.0]}},
        "ridge": {"alpha": {"loguniform": [0.01, 10.0]}},
    },
    "regression": {"ridge": {"alpha": {"loguniform": [0.01, 10.0]}}},
}
_DENSE_ONLY = ("hist_gradient_boosting",)


class TextVectorizer(base.TransformerMixin, base.BaseEstimator):
    """TF-IDF word n-grams and character n-grams of one text column, side by side (sparse)."""

    def __init__(self, max_word_terms: int = MAX_WORD_TERMS, max_char_terms: int = MAX_CHAR_TERMS):
        self.max_word_terms = max_word_terms
        self.max_char_terms = max_char_terms

    def fit(self, X, y=None):
        texts = _texts(X)
        self.n_features_in_ = 1
        self.words_ = sklearn_text.TfidfVectorizer(
            ngram_range=WORD_NGRAMS, max_features=self.max_word_terms, sublinear_tf=True, dtype=np.float32
        ).fit(texts)
        self.chars_ = sklearn_text.TfidfVectorizer(
            analyzer="char_wb", ngram_range=CHAR_NGRAMS, max_features=self.max_char_terms, sublinear_tf=True, dtype=np.float32
        ).fit(texts)
        return self

    def transform(self, X):
        validation.check_is_fitted(self)
        texts = _texts(X)
        # Rows are memoised per distinct text: a run scores the same texts again and again (metrics,
        # plots, the overfitting check, permutation importance's shuffled copies, the reference), and
        # character n-grams are most of a text model's cost. The memo is not part of the fitted state:
        # it is never pickled, and it is emptied when it would exceed TRANSFORM_MEMO_TEXTS.
        memo = self.__dict__.setdefault("_memo", {})
        unseen = [t for t in dict.fromkeys(texts) if t not in memo]
        if unseen:
            fresh = sparse.hstack([self.words_.transform(unseen), self.chars_.transform(unseen)], format="csr")
            if len(memo) + len(unseen) > TRANSFORM_MEMO_TEXTS:
                memo.clear()
            memo.update(zip(unseen, fresh))
        return sparse.vstack([memo[t] for t in texts], format="csr")

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_memo", None)
        return state

    def get_feature_names_out(self, input_features=None):
        words = [f"word:{t}" for t in self.words_.get_feature_names_out()]
        chars = [f"chars:{t}" for t in self.chars_.get_feature_names_out()]
        return np.asarray(words + chars, dtype=object)


def _texts(X) -> list[str]:
    """One text per row of a one-column frame, array or series; missing values are empty texts."""
    values = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X, dtype=object).reshape(len(X), -1)[:, 0])
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def tokens(value: Any) -> list[str]:
    """The words of a text as TF-IDF sees them (lower case, two characters or more)."""
    return TOKEN.findall(value.lower()) if isinstance(value, str) else []


# -- the run ------------------------------------------------------------------------------


def check(
    table: pd.DataFrame, problem: project.Problem, pre: preprocessing.Preprocessing, features: list[str], *, uri: str
) -> None:
    """Refuse text columns that cannot be features, and steps that cannot take sparse text features."""
    for column in problem.text_columns:
        if column not in table.columns:
            raise errors.DataError(f"problem.textColumns: column {column!r} does not exist in {uri}")
        if column not in features:
            raise errors.DataError(f"problem.textColumns: {column!r} is not a feature column; add it to problem.features.include")
        values = table[column].dropna()
        if not values.map(lambda v: isinstance(v, str)).all():
            raise errors.DataError(f"problem.textColumns: column {column!r} holds values that are not text in {uri}")
    if problem.text_columns and pre.feature_extraction.method == "pca":
        raise errors.InvalidSpec(
            "preprocessing.featureExtraction: pca needs dense features and text columns give sparse TF-IDF "
            "features; use method: none or drop problem.textColumns"
        )


def default_algorithms(specs: list[tuning_api.Algorithm], problem: project.Problem) -> list[tuning_api.Algorithm]:
    """The algorithms a run with text columns tunes: the spec's (refusing those that need dense
    features), or the linear ones."""
    if not problem.text_columns:
        return specs
    for index, spec in enumerate(specs):
        if spec.name in _DENSE_ONLY:
            raise errors.InvalidSpec(
                f"algorithms[{index}]: {spec.name} needs dense features and text columns give sparse TF-IDF "
                f"features; use {', '.join(_LINEAR[problem.task])}, lightgbm or xgboost"
            )
    return specs or [tuning_api.Algorithm(name=name, params=params) for name, params in _LINEAR[problem.task].items()]


def schema(entries: list[dict[str, Any]], text_columns: Iterable[str]) -> list[dict[str, Any]]:
    """The feature schema with each text column typed `text` (any string, no categories)."""
    text = set(text_columns)
    found = []
    for entry in entries:
        if entry["name"] in text:
            entry = {k: v for k, v in entry.items() if k != "categories"} | {"type": "text", "nullable": True}
        found.append(entry)
    return found


# -- explanations -------------------------------------------------------------------------


def term_variants(value: Any) -> list[tuple[str, str]]:
    """`(word, the text without that word)` for the text's most frequent distinct words (at most
    `MAX_EXPLAINED_TERMS`); scoring each variant against the text measures the word's contribution."""
    if not isinstance(value, str):
        return []
    counts = collections.Counter(tokens(value))
    variants = []
    for word, _ in counts.most_common(MAX_EXPLAINED_TERMS):
        pattern = re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)
        variants.append((word, pattern.sub(" ", value)))
    return variants


def top_terms(contributions: Mapping[str, float], *, limit: int = TOP_TERMS) -> list[dict[str, Any]]:
    """The words that moved the score most, either way, strongest first."""
    ranked = sorted(contributions.items(), key=lambda item: abs(item[1]), reverse=True)[:limit]
    return [{"term": term, "contribution": round(float(value), 6)} for term, value in ranked if value != 0]


# -- drift --------------------------------------------------------------------------------


def length_column(name: str) -> str:
    return f"{name}.length"


def oov_column(name: str) -> str:
    return f"{name}.outOfVocabulary"


def terms_column(name: str) -> str:
    return f"{name}.terms"


def drift_frames(
    reference: pd.DataFrame, current: pd.DataFrame, *, text_columns: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`reference` and `current` with each text column replaced by two numeric columns: words per
    row (`<name>.length`) and the row's share of words outside the reference's vocabulary
    (`<name>.outOfVocabulary`). A reference row is judged leave-one-out (a word counts as known
    when enough *other* reference rows use it), so both sides are out-of-sample."""
    reference, current = reference.copy(), current.copy()
    for name in text_columns:
        ref_tokens = reference[name].map(tokens)
        cur_tokens = current[name].map(tokens)
        rows_using = collections.Counter(word for words in ref_tokens for word in set(words))
        reference[length_column(name)] = ref_tokens.map(len).astype(float)
        current[length_column(name)] = cur_tokens.map(len).astype(float)
        reference[oov_column(name)] = [_unknown_share(words, rows_using, own=1) for words in ref_tokens]
        current[oov_column(name)] = [_unknown_share(words, rows_using, own=0) for words in cur_tokens]
        reference, current = reference.drop(columns=[name]), current.drop(columns=[name])
    return reference, current


def _unknown_share(words: list[str], rows_using: Mapping[str, int], *, own: int) -> float:
    if not words:
        return np.nan  # no words: nothing to be out of vocabulary (counted as missing)
    return sum(rows_using.get(word, 0) - own < VOCABULARY_MIN_ROWS for word in words) / len(words)


def term_drift(
    reference: pd.Series, current: pd.Series, *, threshold: float | None = None, importance: float | None = None
) -> tuple[drift.FeatureDrift, pd.Series, pd.Series]:
    """Jensen-Shannon distance between the reference's and the window's word distributions, over
    the reference's `DRIFT_TERMS` most frequent words (the rest pooled); an effect size, so a large
    window does not turn a negligible difference into drift. Also returns both sides' words (the
    report draws their shares)."""
    name = terms_column(str(reference.name))
    ref_words = pd.Series([w for words in reference.map(tokens) for w in words], dtype=object, name=name)
    cur_words = pd.Series([w for words in current.map(tokens) for w in words], dtype=object, name=name)
    leading = set(ref_words.value_counts().index[:DRIFT_TERMS])
    ref_words = ref_words.where(ref_words.isin(leading), OTHER_TERMS)
    cur_words = cur_words.where(cur_words.isin(leading), OTHER_TERMS)
    if ref_words.empty or cur_words.empty:
        raise errors.DataError(
            f"{reference.name}: no words on one side; term drift needs text in both the reference and the window"
        )
    detector = drift.DriftDetector(
        method="jensenshannon",
        threshold=threshold,
        dataset_share=1.0,
        categorical=[name],
        columns=[name],
        importance=None if importance is None else {name: importance},
    ).fit(ref_words.to_frame())
    return detector.score(cur_words.to_frame()).features[0], ref_words, cur_words


def with_features(result: drift.DriftResult, extra: list[drift.FeatureDrift]) -> drift.DriftResult:
    """`result` with `extra` features added and the drift share and verdict recomputed."""
    features = (*result.features, *extra)
    share = sum(f.drifted for f in features) / len(features)
    return drift.DriftResult(
        features=features,
        drift_share=share,
        dataset_drift=share >= result.dataset_share,
        dataset_share=result.dataset_share,
        n_reference=result.n_reference,
        n_current=result.n_current,
    )


def drift_importance(importance: Mapping[str, float] | None, text_columns: Iterable[str]) -> dict[str, float] | None:
    """The card's feature importance with each text column's share given to its derived columns."""
    if importance is None:
        return None
    found = dict(importance)
    for name in text_columns:
        if name in found:
            found[length_column(name)] = found[oov_column(name)] = found[terms_column(name)] = found[name]
    return found
