"""Serving against an S3-compatible store (moto in server mode): model download, capture and feedback."""

from __future__ import annotations

import json
import re
import time

import boto3
import modelfactory
import pytest
from moto import server as moto_server
from serving_processes import CLIENT, free_port, spawn

from mlkube.ml import storage

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3(monkeypatch):
    port = free_port()
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="models")
    yield endpoint, client
    moto.stop()


def keys(client, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="models", Prefix=prefix).get("Contents", []))


def test_model_from_s3_and_capture_and_feedback_to_s3(s3, tmp_path):
    endpoint, client = s3
    modelfactory.write_version(tmp_path / "v1")
    for path in sorted((tmp_path / "v1").iterdir()):  # upload the version as the trainer would have
        storage.write_bytes(f"s3://models/churn/v1/{path.name}", path.read_bytes(), options=storage.Options(endpoint))
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    port = free_port()
    model_server = spawn(
        [
            "-m",
            "mlkube.serving.server",
            "--model_name",
            "churn-prod-v1",
            "--model_dir",
            "s3://models/churn/v1/",
            "--http_port",
            str(port),
            "--enable_latency_logging",
            "false",
        ],
        tmp_path / "server.log",
        port,
        env=env,
    ).wait_ready()
    routes = tmp_path / "routes.json"
    routes.write_text(
        json.dumps(
            {
                "deployment": "churn-prod",
                "namespace": "ml",
                "project": "churn",
                "generation": 1,
                "backends": {"1": {"url": model_server.url, "model": "churn-prod-v1"}},
                "split": [{"version": 1, "weight": 100, "role": "stable"}],
                "capture": {"enabled": True, "sampleRate": 1.0, "uri": "s3://models/churn", "endpoint": endpoint},
            }
        )
    )
    port = free_port()
    router = spawn(
        ["-m", "mlkube.serving.router", "--routes-file", str(routes), "--port", str(port)],
        tmp_path / "router.log",
        port,
        env=CREDENTIALS,
    ).wait_ready()
    try:
        response = CLIENT.post(router.url + "/v1/models/churn-prod:predict", json={"instances": [modelfactory.instance(0)]})
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        assert CLIENT.post(router.url + "/v1/feedback", json={"requestId": request_id, "groundTruth": 0}).status_code == 200
        deadline = time.monotonic() + 10
        while not keys(client, "churn/inference-log/") and time.monotonic() < deadline:
            time.sleep(0.1)
        captured = keys(client, "churn/inference-log/")
        assert len(captured) == 1
        assert re.fullmatch(r"churn/inference-log/ml/churn-prod/date=\d{4}-\d{2}-\d{2}/\d+-.+-\d{6}\.jsonl", captured[0])
        record = json.loads(client.get_object(Bucket="models", Key=captured[0])["Body"].read())
        assert record["requestId"] == request_id and record["response"]["predictions"] == [0]
        feedback = keys(client, "churn/feedback/ml/churn-prod/")
        assert len(feedback) == 1
        assert json.loads(client.get_object(Bucket="models", Key=feedback[0])["Body"].read())["groundTruth"] == 0
    finally:
        router.stop()
        model_server.stop(kill=True)
