"""storage and artifacts against a real S3-compatible server through boto3."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn import tree

from mlkube.ml import artifacts, errors, storage


def test_s3_storage_round_trip(s3, s3_endpoint):
    s3.create_bucket(Bucket="data")
    options = storage.Options(endpoint=s3_endpoint)
    storage.write_bytes("s3://data/p/a.csv", b"a\n1\n", options=options)
    storage.write_bytes("s3://data/p/sub/b.csv", b"b\n", options=options)

    assert storage.read_bytes("s3://data/p/a.csv", options=options) == b"a\n1\n"
    assert storage.list_prefix("s3://data/p/", options=options) == ["a.csv", "sub/b.csv"]
    assert storage.exists("s3://data/p/a.csv", options=options)
    assert not storage.exists("s3://data/p/zzz.csv", options=options)


def test_s3_endpoint_from_environment(s3, s3_endpoint, monkeypatch):
    s3.create_bucket(Bucket="data")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    storage.write_bytes("s3://data/x", b"1")
    assert storage.read_bytes("s3://data/x") == b"1"


@pytest.mark.parametrize(
    ("uri", "message"), [("s3://data/missing.csv", "no such object"), ("s3://nobucket/x.csv", "bucket does not exist")]
)
def test_s3_missing_object_names_the_uri(s3, s3_endpoint, uri, message):
    s3.create_bucket(Bucket="data")
    with pytest.raises(errors.ObjectNotFound, match=f"{uri}: {message}"):
        storage.read_bytes(uri, options=storage.Options(endpoint=s3_endpoint))


def test_model_version_on_s3_round_trip(s3, s3_endpoint, tmp_path):
    s3.create_bucket(Bucket="models")
    options = storage.Options(endpoint=s3_endpoint)
    X = pd.DataFrame({"a": np.arange(30.0)})
    y = X["a"] % 2
    model = tree.DecisionTreeClassifier(random_state=0).fit(X, y)
    reference = X.assign(__prediction__=model.predict(X), __target__=y)

    info = artifacts.write(
        "s3://models/churn/runs/r1/",
        pipeline=model,
        card={"k": 1},
        metrics={},
        reference=reference,
        storage_options=options,
    )
    version = artifacts.load(artifacts.download(info.uri, tmp_path / "v", storage_options=options))

    assert version.digest == info.digest
    assert np.array_equal(version.pipeline.predict(X), model.predict(X))
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix="churn/runs/r1/")["Contents"]]
    assert sorted(stored) == [
        f"churn/runs/r1/{name}"
        for name in sorted(
            ("MANIFEST.json", "metrics.json", "model.joblib", "model_card.html", "model_card.json", "reference.parquet")
        )
    ]


def test_download_refuses_an_s3_prefix_without_manifest(s3, s3_endpoint, tmp_path):
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="runs/r2/model.joblib", Body=b"x")
    with pytest.raises(artifacts.IntegrityError, match=re.escape("no MANIFEST.json")):
        artifacts.download("s3://models/runs/r2/", tmp_path / "v", storage_options=storage.Options(endpoint=s3_endpoint))


def test_http_source_is_read_only(tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert storage.read_bytes(f"{base}/t.csv") == b"a,b\n1,2\n"
        assert storage.exists(f"{base}/t.csv") and not storage.exists(f"{base}/nope.csv")
        with pytest.raises(errors.ObjectNotFound, match=re.escape("nope.csv: HTTP 404")):
            storage.read_bytes(f"{base}/nope.csv")
    finally:
        server.shutdown()


def test_changed_credentials_are_used(s3, s3_endpoint, monkeypatch):
    s3.create_bucket(Bucket="data")
    options = storage.Options(endpoint=s3_endpoint)
    storage.write_bytes("s3://data/x", b"1", options=options)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(errors.AccessDenied, match="no S3 credentials"):
        storage.read_bytes("s3://data/x", options=options)


def _version_with_keys(s3, s3_endpoint, *extra_keys: str) -> str:
    """A complete version at s3://models/churn/runs/r1/, plus objects under ``extra_keys`` (whole keys)."""
    s3.create_bucket(Bucket="models")
    X = pd.DataFrame({"a": np.arange(10.0)})
    model = tree.DecisionTreeClassifier(random_state=0).fit(X, X["a"] % 2)
    reference = X.assign(__prediction__=model.predict(X), __target__=X["a"] % 2)
    uri = "s3://models/churn/runs/r1/"
    artifacts.write(
        uri, pipeline=model, card={}, metrics={}, reference=reference, storage_options=storage.Options(endpoint=s3_endpoint)
    )
    for key in extra_keys:
        s3.put_object(Bucket="models", Key=key, Body=b"written by whoever can write the bucket\n")
    return uri


@pytest.mark.parametrize(
    ("key", "name"), [("churn/runs/r1/../../../escaped.txt", "../../../escaped.txt"), ("churn/runs/r1//abs.txt", "/abs.txt")]
)
def test_a_key_escaping_the_download_directory_is_refused_and_nothing_is_written(s3, s3_endpoint, tmp_path, key, name):
    uri = _version_with_keys(s3, s3_endpoint, key)
    local = tmp_path / "a" / "b" / "v"
    with pytest.raises(storage.UnsafeName) as refused:
        artifacts.download(uri, local, storage_options=storage.Options(endpoint=s3_endpoint))
    assert str(refused.value).startswith(f"{uri}{name}: object name {name!r} escapes the local directory {local}; refused")
    assert not (tmp_path / "escaped.txt").exists() and not local.exists(), "refused before anything was written"


def test_the_local_storage_initializer_refuses_a_key_escaping_the_model_directory(s3, s3_endpoint, tmp_path, monkeypatch):
    from mlkube.local.runtime import storage_initializer

    uri = _version_with_keys(s3, s3_endpoint, "churn/runs/r1/../../../escaped.txt")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    root = tmp_path / "pod"
    (root / "dev").mkdir(parents=True)
    monkeypatch.setenv("MLKUBE_CONTAINER_ROOT", str(root))
    assert storage_initializer.main([uri.rstrip("/"), "/mnt/models"]) == 1
    message = (root / "dev" / "termination-log").read_text()
    assert "s3://models/churn/runs/r1/../../../escaped.txt: object name '../../../escaped.txt' escapes" in message
    assert not list(tmp_path.rglob("escaped.txt")) and not list((root / "mnt" / "models").iterdir())
