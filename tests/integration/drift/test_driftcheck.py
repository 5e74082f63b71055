"""The drift worker (``mlkube.driftcheck``) on a real model version and a captured window written in the
router's layout (docs/serving.md): concept drift on roc_auc from the captured class probabilities,
InsufficientData below minSamples, and the report in storage."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest
from sklearn import datasets

from mlkube import driftcheck
from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, experiment

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)


def shuffled():
    """Breast cancer in a fixed random order: the file is sorted enough that its tail is not its head's distribution."""
    return datasets.load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("version")
    frame = shuffled().head(400)
    frame.to_csv(root / "cancer.csv", index=False)
    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "c",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Process"},
                "problem": {"task": "classification", "target": "target", "primaryMetric": "roc_auc"},
            },
            "trainingJob": {"name": "c-1", "namespace": "ml", "uid": "u"},
            "data": {"uri": f"file://{root}/cancer.csv"},
            "algorithms": [{"name": "logistic_regression"}],
            "tuning": {"strategy": "random", "maxTrials": 1},
            "output": {"uri": f"file://{root}/v1/"},
        }
    )
    experiment.run(spec)
    return root / "v1"


def capture(store: pathlib.Path, version: pathlib.Path, *, rows: int, flip: bool) -> None:
    """Predictions of the served version as the router captures them, and ground truth (inverted with ``flip``)."""
    served = shuffled().iloc[400 : 400 + rows]
    model = artifacts.load(version).pipeline
    features = [c for c in served.columns if c != "target"]
    probabilities = model.predict_proba(served[features])
    log, answers = [], []
    for i, ((_, row), p) in enumerate(zip(served.iterrows(), probabilities)):
        stamp = f"2026-11-24T11:{i // 60:02d}:{i % 60:02d}.000Z"
        log.append(
            {
                "requestId": f"r{i}",
                "timestamp": stamp,
                "namespace": "ml",
                "deployment": "prod",
                "version": 1,
                "role": "stable",
                "protocol": "v1",
                "verb": "predict",
                "status": 200,
                "request": {"instances": [row[features].to_dict()]},
                "response": {"predictions": [int(p.argmax())], "probabilities": [{"0": p[0], "1": p[1]}]},
            }
        )
        truth = int(row["target"])
        answers.append({"requestId": f"r{i}", "groundTruth": 1 - truth if flip else truth, "timestamp": stamp})
    for kind, records in (("inference-log", log), ("feedback", answers)):
        path = store / f"{kind}/ml/prod/date=2026-11-24/1795000000-router-000001.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def request(store: pathlib.Path, version: pathlib.Path, *, min_samples: int = 100) -> dict:
    return {
        "reference": {"uri": f"file://{version}/"},
        "traffic": {
            "uri": f"file://{store}",
            "namespace": "ml",
            "deployment": "prod",
            "versions": [1],
            "size": 1000,
            "since": "2026-11-24T00:00:00Z",
        },
        "minSamples": min_samples,
        "dataDrift": {"method": "auto", "datasetShare": 0.5},
        "predictionDrift": {"method": "psi"},
        "conceptDrift": {"metric": "roc_auc", "maxDrop": 0.05, "minLabeled": 50},
        "explainability": {"enabled": True, "topK": 3},
        "report": {"uri": f"file://{store}/reports/r.html"},
    }


def test_inverted_ground_truth_is_concept_drift_on_roc_auc_from_captured_probabilities(version, tmp_path):
    capture(tmp_path, version, rows=160, flip=True)
    result = driftcheck.analyse(request(tmp_path, version))
    assert result["phase"] == "Drifting" and result["samples"] == 160
    performance = result["performance"]
    assert performance["metric"] == "roc_auc" and performance["drifted"] and performance["samples"] == 160
    assert performance["current"] < 0.2 < 0.9 < performance["baseline"]
    assert not result["datasetDrift"], "the inputs did not move: only the concept did"
    assert "roc_auc fell from" in result["summary"]
    assert (tmp_path / "reports/r.html").read_text().startswith("<!DOCTYPE html>")


def test_true_ground_truth_keeps_the_baseline(version, tmp_path):
    capture(tmp_path, version, rows=160, flip=False)
    result = driftcheck.analyse(request(tmp_path, version))
    assert result["phase"] == "Healthy" and not result["performance"]["drifted"]
    assert result["performance"]["current"] > 0.9


def test_a_small_window_is_insufficient_data_and_writes_no_report(version, tmp_path):
    capture(tmp_path, version, rows=40, flip=True)
    result = driftcheck.analyse(request(tmp_path, version, min_samples=100))
    assert result == {
        "phase": "InsufficientData",
        "samples": 40,
        "summary": "40 captured requests in the window; 100 are needed (spec.minSamples)",
    }
    assert not (tmp_path / "reports").exists()
