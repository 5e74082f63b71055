"""The drift check of a text model (``mlkube.driftcheck``, as a DriftMonitor's Job runs it) on a real
version trained on reviews and a captured window in the router's layout: reviews like the training
ones do not drift; short texts in another language drift on length, out-of-vocabulary share and
words, each named in the answer and drawn in the report.

Data: tests/data/reviews (modeldata's fine-food reviews; see its README for the licence).
"""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest

from mlkube import driftcheck
from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, experiment

REVIEWS = pathlib.Path(__file__).parents[2] / "data" / "reviews" / "fine_foods_2000.csv"
TEXT_DRIFT = ["review.length", "review.outOfVocabulary", "review.terms"]


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("version")
    pd.read_csv(REVIEWS).head(800).to_csv(root / "reviews.csv", index=False)
    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "reviews",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Growth"},
                "problem": {
                    "task": "classification",
                    "target": "score",
                    "primaryMetric": "roc_auc",
                    "features": {"include": ["review"]},
                    "textColumns": ["review"],
                },
            },
            "trainingJob": {"name": "r-1", "namespace": "ml", "uid": "u"},
            "data": {"uri": f"file://{root}/reviews.csv"},
            "algorithms": [{"name": "logistic_regression", "params": {"C": 10.0}}],
            "tuning": {"strategy": "random", "maxTrials": 1, "cvFolds": 2},
            "output": {"uri": f"file://{root}/v1/"},
        }
    )
    experiment.run(spec)
    return root / "v1"


def capture(store: pathlib.Path, version: pathlib.Path, texts: list[str]) -> None:
    """Requests and the served version's predictions, as the router captures them."""
    predictions = artifacts.load(version).pipeline.predict(pd.DataFrame({"review": texts}))
    log = [
        {
            "requestId": f"r{i}",
            "timestamp": f"2026-11-24T11:{i // 60:02d}:{i % 60:02d}.000Z",
            "namespace": "ml",
            "deployment": "prod",
            "version": 1,
            "role": "stable",
            "protocol": "v1",
            "verb": "predict",
            "status": 200,
            "request": {"instances": [{"review": review}]},
            "response": {"predictions": [prediction]},
        }
        for i, (review, prediction) in enumerate(zip(texts, predictions))
    ]
    path = store / "inference-log/ml/prod/date=2026-11-24/1795000000-router-000001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in log))


def request(store: pathlib.Path, version: pathlib.Path) -> dict:
    return {
        "reference": {"uri": f"file://{version}/", "digest": artifacts.digest_of((version / artifacts.MANIFEST).read_bytes())},
        "traffic": {
            "uri": f"file://{store}",
            "namespace": "ml",
            "deployment": "prod",
            "versions": [1],
            "size": 1000,
            "since": "2026-11-24T00:00:00Z",
        },
        "minSamples": 100,
        "dataDrift": {"method": "auto", "datasetShare": 0.5},
        "predictionDrift": {"method": "psi"},
        "conceptDrift": {"metric": "roc_auc", "maxDrop": 0.05, "minLabeled": 50},
        "explainability": {"enabled": True, "topK": 5},
        "report": {"uri": f"file://{store}/reports/r.html"},
    }


def drifted(result: dict) -> dict[str, bool]:
    return {f["name"]: f["drifted"] for f in result["features"]}


def test_reviews_like_the_training_ones_do_not_drift(version, tmp_path):
    capture(tmp_path, version, pd.read_csv(REVIEWS)["review"].iloc[1000:1300].tolist())
    result = driftcheck.analyse(request(tmp_path, version))
    assert drifted(result) == dict.fromkeys(TEXT_DRIFT, False), result
    assert result["phase"] == "Healthy", (result.get("predictionDrift"), result.get("performance"), result.get("bias"))


def test_short_foreign_text_drifts_on_length_vocabulary_and_words(version, tmp_path):
    capture(tmp_path, version, ["Der Kaffee schmeckt leider nicht, viel zu teuer."] * 100 + ["Sehr gut, gerne wieder."] * 100)
    result = driftcheck.analyse(request(tmp_path, version))
    assert drifted(result) == dict.fromkeys(TEXT_DRIFT, True), result
    assert result["phase"] == "Drifting" and result["datasetDrift"]
    assert "review.outOfVocabulary" in result["summary"]
    page = (tmp_path / "reports" / "r.html").read_text()
    assert all(f"<h3>{name}</h3>" in page for name in TEXT_DRIFT)
