"""artifacts: the model-version layout, its manifest, atomic writes and integrity checks."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model, pipeline, preprocessing

from mlkube.ml import artifacts


@pytest.fixture
def fitted():
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = (X["a"] > 9).astype(int)
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()).fit(X, y)
    reference = X.assign(__prediction__=model.predict(X), __target__=y)
    return model, X, reference


def write(dest, fitted):
    model, _, reference = fitted
    return artifacts.write(
        f"file://{dest}", pipeline=model, card={"schemaVersion": 1}, metrics={"test": {"f1": 1.0}}, reference=reference
    )


def test_write_then_load_predicts_identically(tmp_path, fitted):
    info = write(tmp_path / "v1", fitted)
    version = artifacts.load(tmp_path / "v1")

    model, X, _ = fitted
    assert np.array_equal(version.pipeline.predict_proba(X), model.predict_proba(X))
    assert version.card == {"schemaVersion": 1}
    assert version.digest == info.digest
    assert set(info.files) == {"model.joblib", "model_card.json", "metrics.json", "reference.parquet"}
    manifest = (tmp_path / "v1" / "MANIFEST.json").read_bytes()
    assert info.digest == "sha256:" + artifacts.sha256_hex(manifest)
    assert json.loads(manifest)["files"] == info.files


def test_write_leaves_no_staging_directory(tmp_path, fitted):
    write(tmp_path / "v1", fitted)
    write(tmp_path / "v1", fitted)  # a retried run replaces its own output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_failed_write_leaves_nothing_with_a_manifest(tmp_path, fitted):
    model, _, reference = fitted
    with pytest.raises(TypeError):
        artifacts.write(f"file://{tmp_path}/v1", pipeline=model, card={"x": object()}, metrics={}, reference=reference)
    assert not list(tmp_path.rglob("MANIFEST.json"))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda d: (d / "metrics.json").write_text("{}"), "metrics.json: sha256 .* does not match"),
        (lambda d: (d / "reference.parquet").unlink(), "reference.parquet: listed in MANIFEST.json but missing"),
        (lambda d: (d / "extra.txt").write_text("x"), "extra.txt: not listed in MANIFEST.json"),
        (lambda d: (d / "MANIFEST.json").unlink(), "no MANIFEST.json"),
    ],
)
def test_verify_names_the_offending_file(tmp_path, fitted, tamper, message):
    write(tmp_path / "v1", fitted)
    tamper(tmp_path / "v1")
    with pytest.raises(artifacts.IntegrityError, match=message):
        artifacts.load(tmp_path / "v1")


def test_download_copies_a_file_version(tmp_path, fitted):
    info = write(tmp_path / "v1", fitted)
    local = artifacts.download(f"file://{tmp_path}/v1", tmp_path / "copy")
    assert artifacts.load(local).digest == info.digest


def test_download_refuses_a_prefix_without_manifest(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "model.joblib").write_bytes(b"x")
    with pytest.raises(artifacts.IntegrityError, match="not a complete model version"):
        artifacts.download(f"file://{tmp_path}/partial", tmp_path / "copy")
