"""The storage initializer: file:// and s3:// (against moto's real S3 server) into /mnt/models."""

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlkube.local.runtime import storage_initializer


def test_file_directory_is_copied_whole(tmp_path):
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "model.joblib").write_bytes(b"m")
    (source / "sub" / "meta.json").write_text("{}")
    storage_initializer.fetch(f"file://{source}", tmp_path / "dest")
    assert (tmp_path / "dest" / "model.joblib").read_bytes() == b"m"
    assert (tmp_path / "dest" / "sub" / "meta.json").exists()


def test_main_resolves_the_container_path_and_reports_errors(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    monkeypatch.setenv("MLKUBE_CONTAINER_ROOT", str(root))
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    assert storage_initializer.main([str(model), "/mnt/models"]) == 0
    assert (root / "mnt" / "models" / "m.bin").read_bytes() == b"x"
    assert storage_initializer.main(["file:///nowhere/at/all", "/mnt/models"]) == 1
    assert "/nowhere/at/all does not exist" in (root / "dev" / "termination-log").read_text()
    assert storage_initializer.main(["gs://b/m", "/mnt/models"]) == 1


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def test_s3_prefix_with_kserve_variables(tmp_path, monkeypatch, s3_endpoint):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    # moto keeps one in-memory backend per process: a bucket of its own keeps other tests' objects out.
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="churn/v1/model.joblib", Body=b"v1")
    s3.put_object(Bucket=bucket, Key="churn/v1/card/info.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="churn/v10/model.joblib", Body=b"v10")
    written = storage_initializer.fetch(f"s3://{bucket}/churn/v1", tmp_path / "d")
    assert sorted(p.relative_to(tmp_path / "d").as_posix() for p in written) == ["card/info.json", "model.joblib"]
    assert (tmp_path / "d" / "model.joblib").read_bytes() == b"v1"
    storage_initializer.fetch(f"s3://{bucket}/churn/v10/model.joblib", tmp_path / "one")
    assert (tmp_path / "one" / "model.joblib").read_bytes() == b"v10"
    with pytest.raises(FileNotFoundError, match=f"no object at s3://{bucket}/nothing"):
        storage_initializer.fetch(f"s3://{bucket}/nothing", tmp_path / "none")
