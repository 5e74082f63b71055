"""Text columns: TF-IDF inside the pipeline on real reviews, the checks, the schema, the words an
explanation occludes, and drift on length, vocabulary and words.

Data: tests/data/reviews (modeldata's fine-food reviews; see its README for the licence).
"""

import pathlib
import pickle

import numpy as np
import pandas as pd
import pytest
from mlspec import preprocessing, problem
from sklearn import linear_model, metrics

from mlkube.api import tuning as tuning_api
from mlkube.ml import drift, errors, processing
from mlkube.ml.tasks import text

REVIEWS = pd.read_csv(pathlib.Path(__file__).parents[2] / "data" / "reviews" / "fine_foods_2000.csv")


def sentiment_problem(**fields):
    return problem(target="score", textColumns=["review"], positiveClass="great", **fields)


def test_the_pipeline_learns_sentiment_from_raw_text_and_keeps_it_out_of_the_categories():
    pre = preprocessing()
    table = REVIEWS[["review", "product", "score"]]
    columns = processing.columns_of(table, ["review", "product"], pre, text_columns=["review"])
    assert (columns.text, columns.categorical) == (["review"], ["product"])
    model = processing.build(pre, columns, linear_model.LogisticRegression(C=10, max_iter=1000), task="classification", seed=0)
    model.fit(table.iloc[:1500], table["score"].iloc[:1500])
    held_out = table.iloc[1500:]
    great = list(model.classes_).index("great")
    auc = metrics.roc_auc_score(held_out["score"] == "great", model.predict_proba(held_out)[:, great])
    assert auc > 0.8
    served = pd.DataFrame({"review": ["Stale, bitter and overpriced.", None], "product": ["B000J0LSBG", "B000J0LSBG"]})
    assert model.predict(served).tolist()[0] == "other"  # a missing text is the empty text, not an error


def test_the_vocabulary_is_bounded_and_the_memo_is_never_pickled():
    vectorizer = text.TextVectorizer(max_word_terms=50, max_char_terms=70).fit(REVIEWS[["review"]].iloc[:300])
    assert vectorizer.transform(REVIEWS[["review"]].iloc[:5]).shape == (5, 120)
    first = vectorizer.transform(REVIEWS[["review"]].iloc[300:400])
    restored = pickle.loads(pickle.dumps(vectorizer))
    assert "_memo" not in restored.__dict__
    assert abs(restored.transform(REVIEWS[["review"]].iloc[300:400]) - first).max() == 0


@pytest.mark.parametrize(
    ("table", "pre", "message"),
    [
        (
            pd.DataFrame({"review": [1, 2], "score": ["a", "b"]}),
            {},
            "problem.textColumns: column 'review' holds values that are not text",
        ),
        (pd.DataFrame({"other": ["x", "y"], "score": ["a", "b"]}), {}, "problem.textColumns: column 'review' does not exist"),
        (
            pd.DataFrame({"review": ["x", "y"], "score": ["a", "b"]}),
            {"featureExtraction": {"method": "pca"}},
            "preprocessing.featureExtraction: pca needs dense features",
        ),
    ],
)
def test_text_columns_that_cannot_be_features_are_refused_naming_the_field(table, pre, message):
    features = [c for c in table.columns if c != "score"]
    with pytest.raises((errors.DataError, errors.InvalidSpec), match=message):
        text.check(table, sentiment_problem(), preprocessing(**pre), features, uri="file:///r.csv")


def test_a_text_run_tunes_linear_models_unless_told_and_refuses_a_dense_only_one():
    assert [a.name for a in text.default_algorithms([], sentiment_problem())] == ["logistic_regression", "ridge"]
    named = [tuning_api.Algorithm(name="lightgbm")]
    assert text.default_algorithms(named, sentiment_problem()) == named
    with pytest.raises(errors.InvalidSpec, match=r"algorithms\[0\]: hist_gradient_boosting needs dense features"):
        text.default_algorithms([tuning_api.Algorithm(name="hist_gradient_boosting")], sentiment_problem())


def test_the_schema_types_a_text_column_as_any_string():
    entries = [
        {"name": "review", "type": "categorical", "categories": ["a"], "nullable": False},
        {"name": "n", "type": "numeric"},
    ]
    assert text.schema(entries, ["review"]) == [
        {"name": "review", "type": "text", "nullable": True},
        {"name": "n", "type": "numeric"},
    ]


def test_each_word_is_occluded_once_with_every_occurrence_removed():
    variants = dict(text.term_variants("Great coffee. GREAT price, great-ish!"))
    assert set(variants) == {"great", "coffee", "price", "ish"}
    assert "great" not in variants["great"].lower() and "coffee" in variants["great"]
    assert text.top_terms({"a": 0.1, "b": -0.3, "c": 0.0}) == [
        {"term": "b", "contribution": -0.3},
        {"term": "a", "contribution": 0.1},
    ]


def drift_of(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, bool]:
    compared, window = text.drift_frames(reference, current, text_columns=["review"])
    result = drift.DriftDetector().fit(compared).score(window)
    terms, _, _ = text.term_drift(reference["review"], current["review"])
    return {f.name: f.drifted for f in text.with_features(result, [terms]).features}


def test_reviews_like_the_reference_do_not_drift_and_foreign_short_text_drifts_on_all_three():
    reference, alike = REVIEWS[["review"]].iloc[:800], REVIEWS[["review"]].iloc[800:1100]
    assert drift_of(reference, alike) == {"review.length": False, "review.outOfVocabulary": False, "review.terms": False}
    foreign = pd.DataFrame({"review": ["Der Kaffee schmeckt leider nicht, viel zu teuer."] * 150 + ["ok"] * 150})
    assert drift_of(reference, foreign) == {"review.length": True, "review.outOfVocabulary": True, "review.terms": True}


def test_a_reference_row_is_judged_leave_one_out():
    reference = pd.DataFrame({"review": ["apple pie", "apple cake", "apple tart"]})
    compared, _ = text.drift_frames(reference, reference, text_columns=["review"])
    # "apple" is used by two other rows; "pie", "cake" and "tart" by none: half of each row is unknown.
    assert compared["review.outOfVocabulary"].tolist() == [0.5, 0.5, 0.5]
    assert np.isnan(text.drift_frames(reference, pd.DataFrame({"review": [""]}), text_columns=["review"])[1].iloc[0, 1])
