"""The trainer entrypoint end to end, as the Job runs it: spec in, progress and result out, artifacts written.

Real bundled datasets (scikit-learn's breast cancer, wine and diabetes), written to CSV/Parquet,
read back through file:// and through s3:// on a real S3-compatible server.
"""

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from mlkube import trainer
from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, experiment, storage

FAST_TUNING = {"strategy": "random", "maxTrials": 3, "cvFolds": 3}


def spec(data_uri, output_uri, *, task="classification", target="target", metric="roc_auc", **overrides):
    document = {
        "project": {
            "name": "demo",
            "namespace": "ml",
            "goal": {"description": "catch it early", "type": "Process"},
            "problem": {"task": task, "target": target, "primaryMetric": metric},
            "successCriteria": [
                {
                    "metric": metric,
                    "op": ">=" if metric != "rmse" else "<=",
                    "threshold": 0.9 if metric != "rmse" else 80,
                }
            ],
        },
        "trainingJob": {
            "name": "demo-1",
            "namespace": "ml",
            "uid": "0000-1",
            "trigger": "manual",
            "parentVersion": None,
        },
        "data": {"uri": data_uri},
        "preprocessing": {},
        "algorithms": [{"name": "logistic_regression" if task == "classification" else "ridge"}],
        "tuning": dict(FAST_TUNING),
        "output": {"uri": output_uri},
    }
    document.update(overrides)
    return document


IMAGE = "registry.example/mlkube:test"


def run_trainer(document, root):
    """Run `python -m mlkube.trainer` as the Job does; returns (exit code, result, stdout, stderr)."""
    environment = {
        **os.environ,
        "MLKUBE_TRAINING_SPEC": json.dumps(document),
        "MLKUBE_CONTAINER_ROOT": str(root),
        trainer_api.IMAGE_ENV: IMAGE,
    }
    done = subprocess.run([sys.executable, "-m", "mlkube.trainer"], env=environment, capture_output=True, text=True, timeout=300)
    termination = root / "dev" / "termination-log"
    result = json.loads(termination.read_text()) if termination.exists() else None
    if result is not None:
        trainer_api.TrainerResult.model_validate(result)  # what the operator parses (mlkube.control.policy.jobstate)
        assert len(termination.read_bytes()) <= 4096
        assert done.stdout.splitlines()[-1] == "MLKUBE_RESULT " + termination.read_text()
    return done.returncode, result, done.stdout, done.stderr


@pytest.fixture(scope="module")
def cancer_parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cancer.parquet"
    frame = datasets.load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame["clinic"] = np.random.default_rng(0).choice(["north", "south", "east"], len(frame))
    frame.to_parquet(path)
    return f"file://{path}"


def assert_version_predicts_like_its_reference(local_dir, result):
    version = artifacts.load(local_dir)
    assert version.digest == result["digest"]
    reference = pd.read_parquet(local_dir / "reference.parquet")
    features = [f["name"] for f in version.card["featureSchema"]]
    assert list(reference.columns) == [*features, "__prediction__", "__target__", "__holdout__"]
    assert reference["__holdout__"].any() and not reference["__holdout__"].all(), "learned rows and held-out rows"
    assert np.array_equal(version.pipeline.predict(reference[features]), reference["__prediction__"].to_numpy())
    return version


def test_classification_on_files(tmp_path, cancer_parquet):
    document = spec(cancer_parquet, f"file://{tmp_path}/models/run-1/")
    document["project"]["problem"]["positiveClass"] = "malignant"
    code, result, stdout, stderr = run_trainer(document, tmp_path / "pod")

    assert code == 0, stderr
    assert result["ok"] and result["algorithm"] == "logistic_regression" and result["successCriteriaMet"] is True
    assert result["metrics"]["test"]["roc_auc"] > 0.95 and "recall" in result["metrics"]["validation"]
    assert set(result["diagnostics"]) == {"trialSeconds", "peakMemoryMiB", "overfitting", "warnings"}
    progress = [json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith("MLKUBE_PROGRESS ")]
    assert progress[-1]["stage"] == "writing"
    assert {"trialsCompleted": 3, "trialsTotal": 3}.items() <= [p for p in progress if "trialsCompleted" in p][-1].items()

    version = assert_version_predicts_like_its_reference(tmp_path / "models" / "run-1", result)
    card = version.card
    assert card["problem"] == {
        "task": "classification",
        "target": "target",
        "positiveClass": "malignant",
        "primaryMetric": "roc_auc",
    }
    assert card["classes"] == ["benign", "malignant"] and card["eligible"] is True
    assert card["data"]["rows"] == 569 and card["data"]["digest"].startswith("sha256:")
    assert {
        "name": "clinic",
        "type": "categorical",
        "dtype": "object",
        "categories": ["east", "north", "south"],
        "nullable": True,
    } in card["featureSchema"]
    assert sum(card["featureImportance"].values()) == pytest.approx(1.0, abs=1e-4)
    parquet = storage.local_path(cancer_parquet)
    lineage = {
        "data": [{"uri": cancer_parquet, "digest": "sha256:" + hashlib.sha256(parquet.read_bytes()).hexdigest(), "rows": 569}],
        "image": IMAGE,
        "mlkubeVersion": importlib.metadata.version("mlkube"),
    }
    assert result["lineage"] == lineage
    assert card["lineage"] == {
        "trainingJob": "demo-1",
        "namespace": "ml",
        "uid": "0000-1",
        "project": "demo",
        "trigger": "manual",
        "parentVersion": None,
        **lineage,
        "params": result["params"],
    }
    assert json.loads((tmp_path / "models" / "run-1" / "metrics.json").read_text()) == card["metrics"]


def test_challenger_is_compared_with_the_champion_on_the_same_test_rows(tmp_path, cancer_parquet):
    first = spec(cancer_parquet, f"file://{tmp_path}/v1/")
    code, champion, _, stderr = run_trainer(first, tmp_path / "pod1")
    assert code == 0, stderr

    second = spec(
        cancer_parquet,
        f"file://{tmp_path}/v2/",
        algorithms=[{"name": "knn", "params": {"n_neighbors": 1}}],
        champion={"version": 1, "artifactUri": f"file://{tmp_path}/v1/", "metrics": champion["metrics"]["test"]},
    )
    code, result, _, stderr = run_trainer(second, tmp_path / "pod2")
    assert code == 0, stderr
    comparison = result["comparison"]
    # Same split seed, same test rows: the champion scores what it scored in its own run.
    assert comparison["champion"] == pytest.approx(champion["metrics"]["test"]["roc_auc"], abs=1e-6)
    assert comparison["challenger"] == pytest.approx(result["metrics"]["test"]["roc_auc"], abs=1e-6)
    assert comparison["challengerBetter"] is (comparison["challenger"] > comparison["champion"])


def test_regression_on_s3(tmp_path, s3, s3_endpoint):
    s3.create_bucket(Bucket="datasets")
    s3.create_bucket(Bucket="models")
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    s3.put_object(Bucket="datasets", Key="diabetes.csv", Body=frame.to_csv(index=False).encode())
    document = spec(
        "s3://datasets/diabetes.csv",
        "s3://models/diabetes/runs/demo-1/",
        task="regression",
        metric="rmse",
        data={"uri": "s3://datasets/diabetes.csv", "endpoint": s3_endpoint},
        preprocessing={"scale": "robust", "bins": [{"column": "age", "bins": 4}]},
    )
    document["output"]["endpoint"] = s3_endpoint
    code, result, _, stderr = run_trainer(document, tmp_path / "pod")

    assert code == 0, stderr
    assert result["artifactUri"] == "s3://models/diabetes/runs/demo-1/"
    assert 40 < result["metrics"]["test"]["rmse"] < 80 and result["metrics"]["test"]["r2"] > 0.2
    local = artifacts.download(result["artifactUri"], tmp_path / "copy", storage_options=storage.Options(endpoint=s3_endpoint))
    version = assert_version_predicts_like_its_reference(local, result)
    assert "classes" not in version.card and version.card["params"] == result["params"]


def test_multiclass_through_env_spec_and_grid(tmp_path):
    frame = datasets.load_wine(as_frame=True).frame
    frame.to_csv(tmp_path / "wine.csv", index=False)
    document = spec(
        f"file://{tmp_path}/wine.csv",
        f"file://{tmp_path}/out/",
        metric="f1",
        algorithms=[{"name": "random_forest", "params": {"n_estimators": 20, "max_depth": [2, 4], "min_samples_leaf": 1}}],
        tuning={"strategy": "grid", "maxTrials": 10, "parallelism": 2, "cvFolds": 3},
        preprocessing={"featureSelection": {"method": "kbest", "k": 6}},
    )
    code, result, _, stderr = run_trainer(document, tmp_path / "pod")
    assert code == 0, stderr
    assert result["params"]["max_depth"] in (2, 4) and result["metrics"]["test"]["f1"] > 0.8
    card = artifacts.load(tmp_path / "out").card
    assert card["classes"] == [0, 1, 2] and card["tuning"]["trials"] == 2
    assert len(card["confusionMatrix"]["matrix"]) == 3


BAD_INPUTS = {
    "missing object": (
        lambda d, t: d["data"].update(uri=f"file://{t}/nope.csv"),
        "DataError",
        "nope.csv: no such file; check data.uri",
    ),
    "empty table": (lambda d, t: d["data"].update(uri=f"file://{t}/empty.csv"), "DataError", "the table has no rows"),
    "unreadable": (
        lambda d, t: d["data"].update(uri=f"file://{t}/garbage.parquet"),
        "DataError",
        "cannot read it as Parquet",
    ),
    "missing target": (
        lambda d, t: d["project"]["problem"].update(target="outcome"),
        "DataError",
        "problem.target: column 'outcome' does not exist",
    ),
    "one class": (lambda d, t: d["data"].update(uri=f"file://{t}/one-class.csv"), "DataError", "has a single class"),
    "unknown column": (
        lambda d, t: d["project"]["problem"].update(features={"exclude": ["patient_id"]}),
        "DataError",
        "problem.features.exclude: column 'patient_id' does not exist",
    ),
    "invalid hyper-parameter": (
        lambda d, t: d.update(algorithms=[{"name": "random_forest", "params": {"max_depth": -1}}]),
        "InvalidSpec",
        "The 'max_depth' parameter of RandomForestClassifier must be an int in the range [1, inf) or None. Got -1 instead.",
    ),
    "invalid spec": (
        lambda d, t: d["tuning"].update(strategy="exhaustive"),
        "InvalidSpec",
        "tuning.strategy: Input should be 'grid', 'random' or 'bayesian'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_a_clear_message_and_no_version(tmp_path, monkeypatch, capsys, case):
    (tmp_path / "empty.csv").write_text("a,target\n")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    pd.DataFrame({"a": [1, 2, 3], "target": ["x", "x", "x"]}).to_csv(tmp_path / "one-class.csv", index=False)
    frame = datasets.load_breast_cancer(as_frame=True).frame.head(120)
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    document = spec(f"file://{tmp_path}/cancer.csv", f"file://{tmp_path}/out/")
    mutate, reason, message = BAD_INPUTS[case]
    mutate(document, tmp_path)
    monkeypatch.setenv("MLKUBE_TRAINING_SPEC", json.dumps(document))
    monkeypatch.setenv("MLKUBE_CONTAINER_ROOT", str(tmp_path / "pod"))

    code = trainer.main([])

    result = json.loads((tmp_path / "pod" / "dev" / "termination-log").read_text())
    assert (code, result["ok"], result["reason"]) == (2, False, reason)
    assert message in result["message"]
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("MANIFEST.json"))


def test_failure_exit_code_and_stderr_without_traceback(tmp_path):
    document = spec(f"file://{tmp_path}/nope.csv", f"file://{tmp_path}/out/")
    code, result, _, stderr = run_trainer(document, tmp_path / "pod")
    assert (code, result["reason"]) == (2, "DataError"), result
    assert stderr.startswith("DataError: ") and "Traceback" not in stderr


def test_missing_spec_is_invalid(tmp_path, monkeypatch):
    monkeypatch.delenv("MLKUBE_TRAINING_SPEC", raising=False)
    assert trainer.main(["--result", str(tmp_path / "result.json")]) == 2
    assert "set the environment variable MLKUBE_TRAINING_SPEC" in json.loads((tmp_path / "result.json").read_text())["message"]


def test_classification_on_s3_with_a_joined_table(tmp_path, s3, s3_endpoint):
    s3.create_bucket(Bucket="datasets")
    s3.create_bucket(Bucket="models")
    frame = datasets.load_breast_cancer(as_frame=True).frame.reset_index(names="patient")
    half = frame.columns[1:16].tolist()
    main = frame.drop(columns=half).to_csv(index=False).encode()
    joined = frame[["patient", *half]].iloc[::2].to_parquet()
    s3.put_object(Bucket="datasets", Key="a.csv", Body=main)
    s3.put_object(Bucket="datasets", Key="b.parquet", Body=joined)
    document = spec(
        "s3://datasets/a.csv",
        "s3://models/cancer/runs/1/",
        data={
            "uri": "s3://datasets/a.csv",
            "endpoint": s3_endpoint,
            "join": [{"uri": "s3://datasets/b.parquet", "on": "patient", "how": "inner"}],
        },
        output={"uri": "s3://models/cancer/runs/1/", "endpoint": s3_endpoint},
    )
    document["project"]["problem"]["features"] = {"exclude": ["patient"]}
    code, result, _, stderr = run_trainer(document, tmp_path / "pod")

    assert code == 0, stderr
    local = artifacts.download(result["artifactUri"], tmp_path / "v", storage_options=storage.Options(endpoint=s3_endpoint))
    version = assert_version_predicts_like_its_reference(local, result)
    assert len(version.card["featureSchema"]) == 30 and version.card["data"]["columns"] == 32
    assert version.card["data"]["rows"] == 285
    assert result["lineage"]["data"] == [
        {"uri": "s3://datasets/a.csv", "digest": "sha256:" + hashlib.sha256(main).hexdigest(), "rows": 569},
        {"uri": "s3://datasets/b.parquet", "digest": "sha256:" + hashlib.sha256(joined).hexdigest(), "rows": 285},
    ]
    assert version.card["lineage"]["data"] == result["lineage"]["data"]


def test_a_champion_that_cannot_be_loaded_does_not_fail_the_run(tmp_path, cancer_parquet):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "model.joblib").write_bytes(b"interrupted write")
    document = spec(
        cancer_parquet,
        f"file://{tmp_path}/v2/",
        champion={"version": 1, "artifactUri": f"file://{tmp_path}/v1/", "metrics": {}},
    )
    outcome, info = experiment.run(trainer_api.TrainerInput.model_validate(document))
    assert outcome.comparison["champion"] is None and "no MANIFEST.json" in outcome.comparison["error"]
    assert artifacts.load(tmp_path / "v2").digest == info.digest


def test_spec_from_a_file_and_progress_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLKUBE_CONTAINER_ROOT", raising=False)
    datasets.load_wine(as_frame=True).frame.to_csv(tmp_path / "wine.csv", index=False)
    document = spec(f"file://{tmp_path}/wine.csv", f"file://{tmp_path}/out/", metric="accuracy")
    (tmp_path / "spec.json").write_text(json.dumps(document))

    assert trainer.main(["--spec", str(tmp_path / "spec.json"), "--result", str(tmp_path / "result.json")]) == 0

    lines = capsys.readouterr().out.splitlines()
    stages = [json.loads(line.split(" ", 1)[1])["stage"] for line in lines if line.startswith("MLKUBE_PROGRESS ")]
    assert stages[:3] == ["loading", "processing", "tuning"] and stages[-2:] == ["evaluating", "writing"]
    assert stages.count("tuning") == 1 + 3, "one line as tuning starts, one per trial"
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["ok"] and lines[-1] == "MLKUBE_RESULT " + json.dumps(result, separators=(",", ":"))
