"""Postprocessing (threshold, label names) and occlusion explanations on small real pipelines."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model, pipeline, preprocessing

from mlkube.serving import explain, postprocessing, schema


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "noise": rng.normal(size=400)})
    target = (frame["x"] > 0).astype(int)
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()).fit(frame, target)
    card = {
        "problem": {"task": "classification", "positiveClass": 1},
        "featureSchema": [{"name": "x", "type": "numeric"}, {"name": "noise", "type": "numeric"}],
    }
    return model, card, frame


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{", "postprocessing: not valid JSON"),
        ({"threshold": 1.5}, "postprocessing.threshold: expected a probability in \\[0, 1\\]"),
        ({"threshold": True}, "postprocessing.threshold"),
        ({"labels": {"1": 3}}, "postprocessing.labels"),
        ({"treshold": 0.3}, "postprocessing.treshold: unknown field"),
        ([1], "postprocessing: expected an object"),
    ],
)
def test_parse_names_the_bad_field(raw, message):
    with pytest.raises(ValueError, match=message):
        postprocessing.Postprocessing.parse(raw)


def test_parse_reads_json_text_and_empty():
    block = postprocessing.Postprocessing.parse('{"threshold": 0.35, "labels": {"0": "stay", "1": "churn"}}')
    assert block == postprocessing.Postprocessing(0.35, {"0": "stay", "1": "churn"})
    assert postprocessing.Postprocessing.parse(None) == postprocessing.Postprocessing.parse("") == postprocessing.Postprocessing()


def test_threshold_moves_the_decision_and_labels_rename(binary):
    model, card, _ = binary
    row = pd.DataFrame({"x": [0.15], "noise": [0.0]})
    p_positive = model.predict_proba(row)[0, 1]
    assert 0.5 < p_positive < 0.99
    plain = postprocessing.Decider(model, card, postprocessing.Postprocessing()).predict(row)
    assert plain.labels == [1] and plain.probabilities[0]["1"] == pytest.approx(p_positive)
    strict = postprocessing.Decider(
        model, card, postprocessing.Postprocessing(threshold=0.99, labels={"0": "stay", "1": "churn"})
    ).predict(row)
    assert strict.labels == ["stay"]
    assert set(strict.probabilities[0]) == {"stay", "churn"} and strict.class_names == ["stay", "churn"]


def test_threshold_is_refused_for_regression_and_multiclass(binary):
    _, card, frame = binary
    regressor = linear_model.LinearRegression().fit(frame, frame["x"])
    with pytest.raises(ValueError, match="this model is a regression"):
        postprocessing.Decider(regressor, {"problem": {"task": "regression"}}, postprocessing.Postprocessing(threshold=0.5))
    three = linear_model.LogisticRegression().fit(frame, np.digitize(frame["x"], [-0.5, 0.5]))
    with pytest.raises(ValueError, match="this model has 3 classes"):
        postprocessing.Decider(three, card, postprocessing.Postprocessing(threshold=0.5))


def test_regression_predictions_are_plain_values(binary):
    _, _, frame = binary
    regressor = linear_model.LinearRegression().fit(frame, 2 * frame["x"])
    result = postprocessing.Decider(regressor, {"problem": {"task": "regression"}}, postprocessing.Postprocessing()).predict(
        frame.iloc[:2]
    )
    assert result.labels == pytest.approx((2 * frame["x"].iloc[:2]).tolist()) and result.probabilities is None


def test_occlusion_attributes_the_score_to_the_informative_feature(binary):
    model, card, frame = binary
    fs = schema.FeatureSchema.from_card(card)
    explainer = explain.Explainer(model, is_classifier=True, positive_index=1, baseline=explain.baselines(frame, fs))
    rows = pd.DataFrame({"x": [2.0, -2.0], "noise": [0.0, 0.0]})
    high, low = explainer.explain(rows)
    assert high["attributions"]["x"] > 0.3 and low["attributions"]["x"] < -0.3
    assert abs(high["attributions"]["noise"]) < 0.05
    assert high["score"] == pytest.approx(model.predict_proba(rows)[0, 1])


def test_baselines_use_mean_for_numbers_and_mode_for_categories():
    fs = schema.FeatureSchema.from_card(
        {"featureSchema": [{"name": "a", "type": "numeric"}, {"name": "c", "type": "categorical"}]}
    )
    reference = pd.DataFrame({"a": [1.0, 3.0, None], "c": ["x", "y", "y"]})
    assert explain.baselines(reference, fs) == {"a": 2.0, "c": "y"}
    with pytest.raises(ValueError, match=re.escape("reference.parquet: no column 'a'")):
        explain.baselines(reference.drop(columns="a"), fs)
