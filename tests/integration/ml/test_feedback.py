"""Retraining with feedback: captured requests that received ground truth join the training data.

The capture layout is written here as the router documents it (docs/serving.md, "Capture layout").
"""

import json

import pandas as pd
from sklearn import datasets

from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, data, experiment


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_labeled_traffic_is_added_to_the_training_rows(tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame.head(300)
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    features = [c for c in frame.columns if c != "target"]
    served = datasets.load_breast_cancer(as_frame=True).frame.iloc[300:340]
    log, answers = [], []
    for i, (_, row) in enumerate(served.iterrows()):
        log.append({"requestId": f"r{i}", "timestamp": "2026-11-20T10:00:00.000Z", "namespace": "ml", "deployment": "prod",
                    "version": 1, "role": "stable", "protocol": "v1", "verb": "predict", "status": 200,
                    "request": {"instances": [row[features].to_dict()]}, "response": {"predictions": [1]}})
        if i < 30:  # ten requests never got ground truth
            answers.append({"requestId": f"r{i}", "groundTruth": str(int(row["target"])), "version": 1, "role": "stable",
                            "requestTimestamp": "2026-11-20T10:00:00.000Z", "timestamp": "2026-11-21T09:00:00.000Z"})
    write_jsonl(tmp_path / "store/inference-log/ml/prod/date=2026-11-20/1-router-0.jsonl", log)
    write_jsonl(tmp_path / "store/feedback/ml/prod/date=2026-11-21/2-router-0.jsonl", answers)

    spec = trainer_api.TrainerInput.model_validate({
        "project": {"name": "c", "namespace": "ml", "goal": {"description": "x", "type": "Process"},
                    "problem": {"task": "classification", "target": "target", "primaryMetric": "roc_auc"}},
        "trainingJob": {"name": "c-drift-1", "namespace": "ml", "uid": "u", "trigger": "drift", "parentVersion": 1},
        "data": {"uri": f"file://{tmp_path}/cancer.csv"},
        "algorithms": [{"name": "logistic_regression"}],
        "tuning": {"strategy": "random", "maxTrials": 2},
        "output": {"uri": f"file://{tmp_path}/v2/"},
        "feedback": {"uri": f"file://{tmp_path}/store", "deployments": ["prod"], "since": "2026-11-19T00:00:00Z"},
    })
    outcome, info = experiment.run(spec)

    card = artifacts.load(tmp_path / "v2").card
    assert outcome.rows["feedback"] == 30 and card["data"]["rows"] == 330
    expected = pd.concat([frame, served.head(30)], ignore_index=True)
    assert card["data"]["digest"] == data.digest(expected), "the digest covers the rows trained on, feedback included"
    assert card["lineage"]["trigger"] == "drift" and card["lineage"]["parentVersion"] == 1
