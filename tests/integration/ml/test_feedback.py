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


def write_served(store, served, features):
    """``served`` as the router of deployment ml/prod would have captured it (one request a row,
    a second apart, answered by version 1), with every row's ground truth as feedback a day later."""
    log = [
        {
            "requestId": f"r{i:03d}",
            "timestamp": f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}.000Z",
            "namespace": "ml",
            "deployment": "prod",
            "version": 1,
            "role": "stable",
            "protocol": "v1",
            "verb": "predict",
            "status": 200,
            "request": {"instances": [row[features].to_dict()]},
            "response": {"predictions": [1]},
        }
        for i, (_, row) in enumerate(served.iterrows())
    ]
    answers = [
        {"requestId": f"r{i:03d}", "groundTruth": int(t), "timestamp": "2026-11-21T09:00:00.000Z"}
        for i, t in enumerate(served["target"])
    ]
    write_jsonl(store / "inference-log/ml/prod/date=2026-11-20/1-router-0.jsonl", log)
    write_jsonl(store / "feedback/ml/prod/date=2026-11-21/2-router-0.jsonl", answers)


def test_labeled_traffic_is_added_to_the_training_rows(tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame.head(300)
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    features = [c for c in frame.columns if c != "target"]
    served = datasets.load_breast_cancer(as_frame=True).frame.iloc[300:340]
    log, answers = [], []
    for i, (_, row) in enumerate(served.iterrows()):
        log.append(
            {
                "requestId": f"r{i}",
                "timestamp": "2026-11-20T10:00:00.000Z",
                "namespace": "ml",
                "deployment": "prod",
                "version": 1,
                "role": "stable",
                "protocol": "v1",
                "verb": "predict",
                "status": 200,
                "request": {"instances": [row[features].to_dict()]},
                "response": {"predictions": [1]},
            }
        )
        if i < 30:  # ten requests never got ground truth
            answers.append(
                {
                    "requestId": f"r{i}",
                    "groundTruth": str(int(row["target"])),
                    "version": 1,
                    "role": "stable",
                    "requestTimestamp": "2026-11-20T10:00:00.000Z",
                    "timestamp": "2026-11-21T09:00:00.000Z",
                }
            )
    write_jsonl(tmp_path / "store/inference-log/ml/prod/date=2026-11-20/1-router-0.jsonl", log)
    write_jsonl(tmp_path / "store/feedback/ml/prod/date=2026-11-21/2-router-0.jsonl", answers)

    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "c",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Process"},
                "problem": {"task": "classification", "target": "target", "primaryMetric": "roc_auc"},
            },
            "trainingJob": {"name": "c-drift-1", "namespace": "ml", "uid": "u", "trigger": "drift", "parentVersion": 1},
            "data": {"uri": f"file://{tmp_path}/cancer.csv"},
            "algorithms": [{"name": "logistic_regression"}],
            "tuning": {"strategy": "random", "maxTrials": 2},
            "output": {"uri": f"file://{tmp_path}/v2/"},
            "feedback": {"uri": f"file://{tmp_path}/store", "deployments": ["prod"], "since": "2026-11-19T00:00:00Z"},
            "includeFeedback": True,
        }
    )
    outcome, _ = experiment.run(spec)

    card = artifacts.load(tmp_path / "v2").card
    assert outcome.rows["feedback"] == 30 and card["data"]["rows"] == 330
    expected = pd.concat([frame, served.head(30)], ignore_index=True)
    assert card["data"]["digest"] == data.digest(expected), "the digest covers the rows trained on, feedback included"
    assert card["lineage"]["trigger"] == "drift" and card["lineage"]["parentVersion"] == 1


def test_evaluate_on_recent_compares_both_models_on_the_newest_labeled_traffic_held_out_of_training(tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame
    frame.head(300).to_csv(tmp_path / "cancer.csv", index=False)
    features = [c for c in frame.columns if c != "target"]
    served = frame.iloc[300:400]
    write_served(tmp_path / "store", served, features)

    def spec(name, **extra):
        return trainer_api.TrainerInput.model_validate(
            {
                "project": {
                    "name": "c",
                    "namespace": "ml",
                    "goal": {"description": "x", "type": "Process"},
                    "problem": {"task": "classification", "target": "target", "primaryMetric": "f1"},
                },
                "trainingJob": {"name": name, "namespace": "ml", "uid": "u"},
                "data": {"uri": f"file://{tmp_path}/cancer.csv"},
                "algorithms": [{"name": "logistic_regression"}],
                "tuning": {"strategy": "random", "maxTrials": 1},
                "output": {"uri": f"file://{tmp_path}/{name}/"},
                **extra,
            }
        )

    experiment.run(spec("v1"))
    champion = {"version": 1, "artifactUri": f"file://{tmp_path}/v1/"}
    feedback = {"uri": f"file://{tmp_path}/store", "deployments": ["prod"], "since": "2026-11-19T00:00:00Z"}
    outcome, _ = experiment.run(spec("v2", champion=champion, feedback=feedback, includeFeedback=True, evaluateOn="recent"))

    newest = served.tail(30)  # split.test 0.2 of 100 rows is 20, below the minimum of 30
    assert outcome.rows["feedback"] == 70, "the recent holdout does not train the challenger"
    comparison = outcome.comparison
    assert comparison["holdout"] == "recent"
    from mlkube.ml import evaluation

    old = artifacts.load(tmp_path / "v1").pipeline
    new = artifacts.load(tmp_path / "v2").pipeline
    task = evaluation.task_of(spec("x").project.problem, frame["target"])
    assert comparison["champion"] == evaluation.scores(old, newest[features], newest["target"], task)["f1"]
    assert comparison["challenger"] == evaluation.scores(new, newest[features], newest["target"], task)["f1"]

    few = {**feedback, "since": "2026-11-22T00:00:00Z"}  # no labeled traffic in the window: the test split decides
    outcome, _ = experiment.run(spec("v3", champion=champion, feedback=few, includeFeedback=True, evaluateOn="recent"))
    assert outcome.comparison["holdout"] == "test" and outcome.rows["feedback"] == 0


def test_a_version_retrained_on_shifted_traffic_keeps_that_traffic_as_its_reference(tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.head(300).to_csv(tmp_path / "cancer.csv", index=False)
    features = [c for c in frame.columns if c != "target"]
    served = frame.iloc[300:450].copy()
    recalibrated = [c for c in features if c.startswith("mean ")]
    served.iloc[60:, [served.columns.get_loc(c) for c in recalibrated]] *= 10  # a sensor recalibrated after 60 requests
    write_served(tmp_path / "store", served, features)
    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "c",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Process"},
                "problem": {"task": "classification", "target": "target", "primaryMetric": "f1"},
            },
            "trainingJob": {"name": "c-drift-1", "namespace": "ml", "uid": "u", "trigger": "drift", "parentVersion": 1},
            "data": {"uri": f"file://{tmp_path}/cancer.csv"},
            "algorithms": [{"name": "logistic_regression"}],
            "tuning": {"strategy": "random", "maxTrials": 1},
            "output": {"uri": f"file://{tmp_path}/v2/"},
            "feedback": {"uri": f"file://{tmp_path}/store", "deployments": ["prod"], "since": "2026-11-19T00:00:00Z"},
            "includeFeedback": True,
        }
    )
    outcome, _ = experiment.run(spec)

    version = artifacts.load(tmp_path / "v2")
    assert version.card["reference"] == {
        "source": "recentTraffic",
        "rows": 90,
        "description": "the newest 90 of the 150 labelled requests the version was retrained for: one distribution, "
        f"which differs from its training partition ({outcome.rows['train']} rows)",
    }
    stored = pd.read_parquet(tmp_path / "v2" / artifacts.REFERENCE)
    newest = served.iloc[60:].reset_index(drop=True)
    assert stored[features].equals(newest[features]), "the requests after the recalibration, as they were sent"
    assert stored["__prediction__"].tolist() == version.pipeline.predict(newest[features]).tolist()
    assert stored["__target__"].tolist() == newest["target"].tolist()


def test_a_version_trained_without_traffic_keeps_its_training_partition_as_its_reference(tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "c",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Process"},
                "problem": {"task": "classification", "target": "target", "primaryMetric": "f1"},
            },
            "trainingJob": {"name": "c-1", "namespace": "ml", "uid": "u"},
            "data": {"uri": f"file://{tmp_path}/cancer.csv"},
            "algorithms": [{"name": "logistic_regression"}],
            "tuning": {"strategy": "random", "maxTrials": 1},
            "output": {"uri": f"file://{tmp_path}/v1/"},
        }
    )
    outcome, _ = experiment.run(spec)

    version = artifacts.load(tmp_path / "v1")
    stored = pd.read_parquet(tmp_path / "v1" / artifacts.REFERENCE)
    learned = stored[~stored["__holdout__"]]
    assert len(learned) == outcome.rows["train"] == 341 and outcome.rows["test"] == 114, (
        "the training partition, not the test split"
    )
    held_out = outcome.rows["validation"] + outcome.rows["test"]
    assert stored["__holdout__"].sum() == held_out == 569 - 341, "and the rows it did not learn, for prediction drift"
    assert version.card["reference"] == {
        "source": "trainingPartition",
        "rows": 569,
        "description": f"the training partition (341 rows), and the {held_out} held-out rows on which its "
        "predictions are the prediction-drift baseline",
    }
    features = [c for c in frame.columns if c != "target"]
    assert stored["__prediction__"].tolist() == version.pipeline.predict(stored[features]).tolist()
    assert stored[features].merge(frame, on=features).shape[0] == 569, "every reference row is a row of the data"
