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
    assert set(info.files) == {"model.joblib", "model_card.json", "model_card.html", "metrics.json", "reference.parquet"}
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
        (lambda d: (d / "model_card.html").write_text("<p>approved</p>"), "model_card.html: sha256 .* does not match"),
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


def rewrite(version, name: str, data: bytes) -> str:
    """Replace one file of ``version`` and recompute its manifest, as someone with write access to
    the store can; the new digest."""
    (version / name).write_bytes(data)
    files = {p.name: p.read_bytes() for p in version.iterdir() if p.name != artifacts.MANIFEST}
    manifest = artifacts.manifest_bytes(files)
    (version / artifacts.MANIFEST).write_bytes(manifest)
    return artifacts.digest_of(manifest)


def test_a_version_rewritten_with_its_manifest_is_refused_against_the_registered_digest(tmp_path, fitted):
    registered = write(tmp_path / "v1", fitted).digest
    forged = rewrite(tmp_path / "v1", "metrics.json", b'{"test": {"f1": 0.1}}\n')
    assert artifacts.verify(tmp_path / "v1"), "the manifest alone vouches for the rewritten files"
    for loader in (artifacts.verify, artifacts.load):
        with pytest.raises(artifacts.IntegrityError) as refused:
            loader(tmp_path / "v1", expected_digest=registered)
        assert f"MANIFEST.json has digest {forged}, but the registry expects {registered}" in str(refused.value)
    with pytest.raises(artifacts.IntegrityError, match=f"but the registry expects {registered}"):
        artifacts.download(f"file://{tmp_path}/v1", tmp_path / "copy", expected_digest=registered)
    assert not (tmp_path / "copy" / "model.joblib").exists(), "refused before any file was fetched"
    assert artifacts.load(tmp_path / "v1", expected_digest=forged).digest == forged


def test_read_verified_reads_the_manifest_and_the_named_files_only(tmp_path, fitted, monkeypatch):
    digest = write(tmp_path / "v1", fitted).digest
    read = []
    original = artifacts.storage.read_bytes
    monkeypatch.setattr(artifacts.storage, "read_bytes", lambda uri, **kw: read.append(uri) or original(uri, **kw))
    files = artifacts.read_verified(f"file://{tmp_path}/v1/", (artifacts.CARD, artifacts.REFERENCE), expected_digest=digest)
    assert json.loads(files[artifacts.CARD]) == {"schemaVersion": 1}
    assert [uri.rsplit("/", 1)[1] for uri in read] == ["MANIFEST.json", "model_card.json", "reference.parquet"]
    rewrite(tmp_path / "v1", artifacts.CARD, b"{}")
    with pytest.raises(artifacts.IntegrityError, match=f"but the registry expects {digest}"):
        artifacts.read_verified(f"file://{tmp_path}/v1/", (artifacts.CARD,), expected_digest=digest)
    (tmp_path / "v1" / artifacts.CARD).write_bytes(b"[]")  # the file alone changed: the manifest catches it
    current = artifacts.digest_of((tmp_path / "v1" / artifacts.MANIFEST).read_bytes())
    with pytest.raises(artifacts.IntegrityError, match=r"model_card\.json: sha256 .* does not match"):
        artifacts.read_verified(f"file://{tmp_path}/v1/", (artifacts.CARD,), expected_digest=current)
