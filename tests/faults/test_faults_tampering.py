"""Tampering with the artifact store: someone who can write the bucket (or the directory) but not the
Kubernetes objects rewrites a registered version's model AND recomputes its MANIFEST.json, so that the
manifest check alone passes. Every loader is handed the digest the registry recorded and refuses, naming
the expected and the actual digest, before it reads anything else; the hostile model (a pickle whose
unpickling writes a marker file) is never unpickled:

- the InferenceService path: the operator's InferenceService pins the digest, the local KServe controller
  hands it to the storage initializer, which refuses the copy (file:// and s3://), and the model server,
  given ``MLKUBE_MODEL_DIGEST``, refuses to load;
- the trainer's champion comparison (the champion's digest in the trainer's input);
- drift analysis (the digest in the check's request).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import boto3
import joblib
import pytest
from moto import server as moto_server
from sklearn import datasets

from mlkube import driftcheck
from mlkube.api import trainer as trainer_api
from mlkube.control.manifests import serving
from mlkube.local.runtime import kserve
from mlkube.ml import artifacts, experiment, storage

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this writes ``marker``."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('unpickled')",))


def spec(root: pathlib.Path, output: str, *, champion: dict | None = None) -> trainer_api.TrainerInput:
    return trainer_api.TrainerInput.model_validate(
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
            "output": {"uri": output},
            **({"champion": champion} if champion else {}),
        }
    )


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """A version the trainer wrote, and the digest the registry recorded for it."""
    root = tmp_path_factory.mktemp("store")
    datasets.load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0).head(300).to_csv(
        root / "cancer.csv", index=False
    )
    _, info = experiment.run(spec(root, f"file://{root}/v1/"))
    return root / "v1", info.digest


@pytest.fixture
def tampered(registered, tmp_path) -> tuple[pathlib.Path, str, pathlib.Path]:
    """A copy of the registered version with a hostile model and a recomputed manifest: (its directory,
    the registered digest, the marker its unpickling would write)."""
    version, digest = registered
    forged = tmp_path / "v1"
    forged.mkdir()
    for name in (artifacts.CARD, artifacts.METRICS, artifacts.REFERENCE):
        (forged / name).write_bytes((version / name).read_bytes())
    marker = tmp_path / "unpickled.txt"
    joblib.dump(Payload(marker), forged / artifacts.MODEL)
    files = {p.name: p.read_bytes() for p in forged.iterdir()}
    (forged / artifacts.MANIFEST).write_bytes(artifacts.manifest_bytes(files))
    artifacts.verify(forged)  # the manifest alone vouches for the forgery
    return forged, digest, marker


def refusal(forged: pathlib.Path, digest: str) -> str:
    actual = artifacts.digest_of((forged / artifacts.MANIFEST).read_bytes())
    return f"MANIFEST.json has digest {actual}, but the registry expects {digest}"


def initializer_env(digest: str, root: pathlib.Path, uri: str) -> dict[str, str]:
    """The storage initializer's environment as the local KServe controller builds it for the InferenceService
    the operator makes for the registered version."""
    mdep = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "churn-prod", "namespace": "ml", "uid": "u"},
        "spec": {"projectRef": "churn", "model": {"track": "champion"}},
    }
    from mlkube.api import kinds

    isvc = serving.inference_service(
        mdep, kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"]), version=1, storage_uri=uri, digest=digest
    )
    isvc["metadata"]["uid"] = "isvc-uid"  # as the API server stores it
    container = {"name": "kserve-container", "image": "mlkube", "args": []}
    deployment = kserve.predictor_deployment(isvc, container=container, storage_uri=uri, storage_env=[])
    [init] = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == [uri, "/mnt/models"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {"MLKUBE_MODEL_DIGEST": digest}
    return {**os.environ, **env, "MLKUBE_CONTAINER_ROOT": str(root)}


def run_initializer(env: dict[str, str], uri: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mlkube.local.runtime.storage_initializer", uri, "/mnt/models"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_storage_initializer_refuses_a_forged_version_in_a_directory(tampered, tmp_path):
    forged, digest, marker = tampered
    root = tmp_path / "pod"
    (root / "dev").mkdir(parents=True)
    done = run_initializer(initializer_env(digest, root, forged.as_uri()), forged.as_uri())
    assert done.returncode == 1
    message = (root / "dev" / "termination-log").read_text()
    assert (
        message.startswith(f"refusing to serve {forged.as_uri()}: integrity check failed: ")
        and refusal(forged, digest) in message
    )
    assert not list((root / "mnt" / "models").iterdir()), "the forged copy is removed"
    assert not marker.exists()


def test_the_storage_initializer_refuses_a_forged_version_in_a_bucket(tampered, tmp_path, monkeypatch):
    forged, digest, marker = tampered
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        s3.create_bucket(Bucket="models")
        for path in forged.iterdir():
            s3.put_object(Bucket="models", Key=f"churn/v1/{path.name}", Body=path.read_bytes())
        root = tmp_path / "pod"
        (root / "dev").mkdir(parents=True)
        env = initializer_env(digest, root, "s3://models/churn/v1")
        env["AWS_ENDPOINT_URL"] = endpoint
        done = run_initializer(env, "s3://models/churn/v1")
        assert done.returncode == 1 and refusal(forged, digest) in (root / "dev" / "termination-log").read_text()
        # The operator-side download refuses before it fetches anything but the manifest.
        with pytest.raises(artifacts.IntegrityError, match=refusal(forged, digest)):
            artifacts.download(
                "s3://models/churn/v1/",
                tmp_path / "copy",
                storage_options=storage.Options(endpoint=endpoint),
                expected_digest=digest,
            )
        assert not (tmp_path / "copy" / artifacts.MODEL).exists()
    finally:
        moto.stop()
    assert not marker.exists()


def test_the_model_server_refuses_to_load_a_forged_version(tampered, tmp_path):
    forged, digest, marker = tampered
    root = tmp_path / "pod"
    (root / "dev").mkdir(parents=True)
    shutil.copytree(forged, root / "mnt" / "models")  # what the storage initializer would have copied
    env = {**os.environ, "MLKUBE_MODEL_DIGEST": digest, "MLKUBE_CONTAINER_ROOT": str(root), "MLKUBE_BIND_HOST": "127.0.0.1"}
    command = [sys.executable, "-m", "mlkube.serving.server", "--model_name", "churn-prod-v1", "--model_dir", "/mnt/models"]
    done = subprocess.run([*command, "--http_port", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    message = (root / "dev" / "termination-log").read_text()
    assert message.startswith("refusing to serve /mnt/models: integrity check failed") and refusal(forged, digest) in message
    assert not marker.exists()


def test_the_trainer_refuses_a_forged_champion(registered, tampered, tmp_path):
    version, digest = registered
    forged, _, marker = tampered
    data_root = version.parent
    champion = {"version": 1, "artifactUri": forged.as_uri() + "/", "digest": digest}
    outcome, _ = experiment.run(spec(data_root, f"file://{tmp_path}/v2/", champion=champion))
    comparison = outcome.comparison
    assert comparison["champion"] is None and comparison["challengerBetter"] is None
    assert comparison["error"].startswith("IntegrityError: ") and refusal(forged, digest) in comparison["error"]
    assert not marker.exists()


def test_drift_analysis_refuses_a_forged_reference(tampered):
    forged, digest, marker = tampered
    request = {
        "reference": {"uri": forged.as_uri() + "/", "digest": digest},
        "traffic": {
            "uri": forged.parent.as_uri(),
            "namespace": "ml",
            "deployment": "prod",
            "size": 100,
            "since": "2026-11-24T00:00:00Z",
        },
        "minSamples": 10,
        "conceptDrift": {"metric": "roc_auc"},
        "report": {"uri": f"{forged.parent.as_uri()}/r.html"},
    }
    body, code = driftcheck.answer(json.dumps(request))
    assert code == 1 and refusal(forged, digest) in body["error"]
    assert not marker.exists()
