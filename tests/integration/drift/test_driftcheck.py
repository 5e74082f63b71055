"""The drift check (``mlkube.driftcheck``) on a real model version and a captured window written in the
router's layout (docs/serving.md): concept drift on roc_auc from the captured class probabilities,
InsufficientData below minSamples, and the report in storage. The check never unpickles the model (a
``model.joblib`` whose unpickling would run code leaves no trace), refuses a version whose manifest does
not hash to the registry's digest, and answers as its Job does: in the termination message."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys

import joblib
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


def digest(version: pathlib.Path) -> str:
    """The digest the registry recorded for ``version`` (its manifest's, as the trainer reported it)."""
    return artifacts.digest_of((version / artifacts.MANIFEST).read_bytes())


def request(store: pathlib.Path, version: pathlib.Path, *, min_samples: int = 100, pinned: str | None = None) -> dict:
    return {
        "reference": {"uri": f"file://{version}/", "digest": pinned or digest(version)},
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


def test_the_report_names_the_version_and_what_its_reference_is(version, tmp_path):
    capture(tmp_path, version, rows=160, flip=False)
    driftcheck.analyse(request(tmp_path, version))
    page = (tmp_path / "reports/r.html").read_text()
    assert "<title>Drift of prod version 1</title>" in page and "<h1>Drift of prod version 1</h1>" in page
    assert (
        "<p>Reference: the training partition (240 rows), and the 160 held-out rows on which its predictions are "
        "the prediction-drift baseline.</p>" in page
    )
    assert "400 reference rows, 160 current rows" in page

    every = request(tmp_path, version)
    every["traffic"]["versions"] = None  # scope: all; the request names no single version
    driftcheck.analyse(every)
    page = (tmp_path / "reports/r.html").read_text()
    assert "<title>Drift of prod, every version, against the version trained by c-1</title>" in page


def test_a_small_window_is_insufficient_data_and_writes_no_report(version, tmp_path):
    capture(tmp_path, version, rows=40, flip=True)
    result = driftcheck.analyse(request(tmp_path, version, min_samples=100))
    assert result == {
        "phase": "InsufficientData",
        "samples": 40,
        "summary": "40 captured requests in the window; 100 are needed (spec.minSamples)",
    }
    assert not (tmp_path / "reports").exists()


class Payload:
    """Unpickling this writes ``marker``: what a hostile ``model.joblib`` does to whoever loads it."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('unpickled')",))


def hostile_copy(version: pathlib.Path, root: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """``version`` with its model replaced by a payload and its manifest recomputed (a consistent version
    whose model runs code, as a hostile trainer image could register)."""
    copy = root / "hostile"
    copy.mkdir()
    for name in (artifacts.CARD, artifacts.METRICS, artifacts.REFERENCE):
        (copy / name).write_bytes((version / name).read_bytes())
    joblib.dump(Payload(marker), copy / artifacts.MODEL)
    files = {p.name: p.read_bytes() for p in copy.iterdir()}
    (copy / artifacts.MANIFEST).write_bytes(artifacts.manifest_bytes(files))
    return copy


def test_drift_analysis_never_unpickles_the_model_and_still_analyses(version, tmp_path):
    marker = tmp_path / "unpickled.txt"
    hostile = hostile_copy(version, tmp_path, marker)
    capture(tmp_path, version, rows=160, flip=True)
    result = driftcheck.analyse(request(tmp_path, hostile))
    assert result["phase"] == "Drifting" and result["samples"] == 160 and result["performance"]["drifted"]
    assert not marker.exists(), "drift analysis unpickled model.joblib"
    # The payload is live: the one loader that unpickles (the model server's, the trainer's) would run it.
    joblib.load(hostile / artifacts.MODEL)
    assert marker.read_text() == "unpickled"


def test_a_version_rewritten_with_its_manifest_is_refused_before_anything_is_read(version, tmp_path):
    registered = digest(version)
    forged = hostile_copy(version, tmp_path, tmp_path / "unpickled.txt")
    capture(tmp_path, version, rows=160, flip=True)
    body, code = driftcheck.answer(json.dumps(request(tmp_path, forged, pinned=registered)))
    assert code == 1
    assert body["error"] == (
        f"IntegrityError: file://{forged}/: MANIFEST.json has digest {digest(forged)}, but the registry expects "
        f"{registered}; the version was rewritten after it was registered: refusing to read it"
    )
    assert not (tmp_path / "reports").exists()


def test_the_check_answers_in_its_termination_message_as_its_job_does(version, tmp_path):
    capture(tmp_path, version, rows=160, flip=False)
    root = tmp_path / "container"
    env = {**os.environ, "MLKUBE_CONTAINER_ROOT": str(root), "MLKUBE_DRIFTCHECK_REQUEST": json.dumps(request(tmp_path, version))}
    done = subprocess.run([sys.executable, "-m", "mlkube.driftcheck"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads((root / "dev" / "termination-log").read_text())
    assert answer["phase"] == "Healthy" and answer["samples"] == 160 and json.loads(done.stdout.splitlines()[-1]) == answer
    env["MLKUBE_DRIFTCHECK_REQUEST"] = json.dumps(request(tmp_path, version, pinned="sha256:" + "0" * 64))
    refused = subprocess.run([sys.executable, "-m", "mlkube.driftcheck"], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    error = json.loads((root / "dev" / "termination-log").read_text())["error"]
    assert error.startswith("IntegrityError: ") and "but the registry expects sha256:" + "0" * 64 in error
