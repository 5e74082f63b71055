"""Sentiment on real reviews through the whole loop: an MLProject with `textColumns`, a
TrainingJob, a ModelDeployment that takes the raw text, and `:explain` naming the words that
drove a prediction. Everything through kubectl on the embedded control plane.

Data: tests/data/reviews (modeldata's fine-food reviews, 2,000 rows; see its README for the licence).
"""

from __future__ import annotations

import pathlib

import httpx
import pytest
from text_helpers import registered, serving

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

REVIEWS_CSV = pathlib.Path(__file__).parents[2] / "data" / "reviews" / "fine_foods_2000.csv"


def test_sentiment_on_raw_review_text_is_served_and_explained_by_its_words(cluster, namespace, tmp_path):
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "MLProject",
            "metadata": {"name": "reviews"},
            "spec": {
                "goal": {"description": "Find unhappy customers in product reviews", "type": "Growth"},
                "problem": {
                    "task": "classification",
                    "target": "score",
                    "positiveClass": "great",
                    "primaryMetric": "roc_auc",
                    "features": {"include": ["review"]},
                    "textColumns": ["review"],
                },
                "successCriteria": [{"metric": "roc_auc", "op": ">=", "threshold": 0.8}],
                "data": {"uri": REVIEWS_CSV.as_uri()},
                "storage": {"uri": tmp_path.as_uri()},
            },
        },
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "sentiment"},
            "spec": {"projectRef": "reviews", "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 2}},
        },
        namespace,
    )
    version = registered(cluster, namespace, "reviews", {"sentiment"})["sentiment"]
    assert version["metrics"]["roc_auc"] >= 0.8, version["metrics"]
    assert version["eligible"] is True

    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "sentiment"},
            "spec": {"projectRef": "reviews", "model": {"version": version["version"]}},
        },
        namespace,
    )
    url = f"{serving(cluster, 'sentiment', namespace)}/v1/models/sentiment"
    unhappy = "Awful. The coffee tasted stale and bitter, a waste of money. I threw it away."
    happy = "Delicious! My favorite snack, great taste and a great price. Highly recommend."
    with httpx.Client(timeout=60) as http:
        answer = http.post(f"{url}:predict", json={"instances": [{"review": unhappy}, {"review": happy}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == ["other", "great"]

        explained = http.post(f"{url}:explain", json={"instances": [{"review": unhappy}]})
        assert explained.status_code == 200, explained.text
    terms = explained.json()["explanations"][0]["terms"]["review"]
    assert 3 <= len(terms) <= 10, terms
    named = {t["term"] for t in terms[:5]}
    # The words that pull an unhappy review away from "great" are its unhappy words.
    assert named & {"awful", "stale", "bitter", "waste", "threw"}, terms
    assert all(set(t) == {"term", "contribution"} for t in terms)
