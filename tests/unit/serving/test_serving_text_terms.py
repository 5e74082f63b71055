"""A model that reads free text: the schema takes any string for a text feature, and `:explain`
names the words of each text that moved its score (binary and multiclass)."""

import pandas as pd
import pytest
from sklearn import linear_model

from mlkube.api import preprocessing
from mlkube.ml import processing
from mlkube.ml.tasks import text
from mlkube.serving import explain, schema

CARD = {"featureSchema": [{"name": "review", "type": "text", "nullable": True}, {"name": "stars", "type": "numeric"}]}
TRAIN = pd.DataFrame(
    {
        "review": [
            "great tasty coffee",
            "awful stale beans",
            "tasty great tea",
            "stale awful cocoa",
            "great snack",
            "awful snack",
        ]
        * 10,
        "stars": [5.0, 1.0, 4.0, 2.0, 5.0, 1.0] * 10,
    }
)


def fitted(labels):
    pre = preprocessing.Preprocessing()
    columns = processing.columns_of(TRAIN, ["review", "stars"], pre, text_columns=["review"])
    model = processing.build(pre, columns, linear_model.LogisticRegression(C=100, max_iter=1000), task="classification", seed=0)
    return model.fit(TRAIN, labels)


def test_a_text_feature_takes_strings_and_null_and_refuses_numbers_naming_it():
    fs = schema.FeatureSchema.from_card(CARD)
    frame = fs.frame_from_instances([{"review": "Great coffee!", "stars": 5}, {"review": None, "stars": 1}])
    assert frame["review"].tolist() == ["Great coffee!", None]
    with pytest.raises(schema.SchemaError, match="instances\\[0\\]: feature 'review' expects a string, got 3"):
        fs.frame_from_instances([{"review": 3, "stars": 5}])


def test_explain_names_the_words_that_drove_the_score():
    model = fitted(["good", "bad", "good", "bad", "good", "bad"] * 10)
    fs = schema.FeatureSchema.from_card(CARD)
    explainer = explain.Explainer(
        model, is_classifier=True, positive_index=1, baseline=explain.baselines(TRAIN, fs), text_features=("review",)
    )
    [row] = explainer.explain(fs.frame_from_instances([{"review": "Awful, stale snack", "stars": 3}]))
    terms = row["terms"]["review"]
    # P("good") is scored: removing an unhappy word raises it, so those words have negative contributions.
    assert {t["term"] for t in terms[:2]} == {"awful", "stale"} and all(t["contribution"] < 0 for t in terms[:2])
    assert set(row["attributions"]) == {"review", "stars"}
    assert explain.baselines(TRAIN, fs)["review"] == ""


def test_multiclass_terms_are_scored_on_the_row_own_predicted_class():
    model = fitted(["hot", "cold", "hot", "cold", "snack", "snack"] * 10)
    fs = schema.FeatureSchema.from_card(CARD)
    explainer = explain.Explainer(
        model, is_classifier=True, positive_index=None, baseline=explain.baselines(TRAIN, fs), text_features=("review",)
    )
    rows = fs.frame_from_instances([{"review": "tasty coffee", "stars": 5}, {"review": "stale beans", "stars": 1}])
    first, second = explainer.explain(rows)
    proba = model.predict_proba(rows)
    assert first["score"] == pytest.approx(proba[0].max()) and second["score"] == pytest.approx(proba[1].max())
    assert {t["term"] for t in first["terms"]["review"]} <= {"tasty", "coffee"}
    assert {t["term"] for t in second["terms"]["review"]} <= {"stale", "beans"}
    assert text.top_terms({}) == []
