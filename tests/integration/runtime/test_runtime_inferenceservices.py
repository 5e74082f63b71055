"""A KServe InferenceService served by a test ServingRuntime as real local processes."""

from __future__ import annotations

import urllib.error
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer
from runtime_helpers import apply, condition, container_pids, get_json, process_alive, wait_for

pytestmark = pytest.mark.kubectl

# A tiny model server: answers `<model name>:<content of /mnt/models/model.txt>`.
SERVER = (
    "import argparse, http.server, os\n"
    "from mlkube.common import containerpath\n"
    "parser = argparse.ArgumentParser()\n"
    "parser.add_argument('--model_name'); parser.add_argument('--model_dir')\n"
    "args = parser.parse_args()\n"
    "model = (containerpath.resolve(args.model_dir) / 'model.txt').read_text()\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "        self.wfile.write(f'{args.model_name}:{model}'.encode())\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer((os.environ['MLKUBE_BIND_HOST'], 8080), H).serve_forever()\n"
)

RUNTIME = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "ServingRuntime",
    "metadata": {"name": "tiny"},
    "spec": {
        "supportedModelFormats": [{"name": "tiny", "autoSelect": True}],
        "protocolVersions": ["v1"],
        "containers": [
            {
                "name": "kserve-container",
                "image": "python:3.11-slim",
                "command": ["python", "-c", SERVER],
                "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
            }
        ],
    },
}


def isvc(storage_uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "echo"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "tiny"}, "storageUri": storage_uri}}},
    }


def answer(url: str) -> str:
    return urllib.request.urlopen(url, timeout=5).read().decode()


def test_inferenceservice_is_ready_answers_rolls_and_stops(
    kubectl, namespace, kserve_crds, tmp_path, foreign_service_addresses_reserved
):
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "model.txt").write_text(version)
    apply(kubectl, namespace, RUNTIME, isvc(f"file://{tmp_path / 'v1'}"))

    ready = wait_for(
        lambda: (lambda o: condition(o, "Ready").get("status") == "True" and o)(
            get_json(kubectl, "-n", namespace, "isvc", "echo")
        ),
        what="the InferenceService to be Ready",
    )
    assert condition(ready, "PredictorReady")["status"] == "True"
    assert condition(ready, "IngressReady")["status"] == "True"
    url = ready["status"]["address"]["url"]
    service = get_json(kubectl, "-n", namespace, "service", "echo-predictor")
    assert url == ready["status"]["url"] == f"http://{service['spec']['clusterIP']}"
    assert answer(url) == "echo:v1"

    # A new model version: the new pod must be ready before the old one goes.
    apply(kubectl, namespace, isvc(f"file://{tmp_path / 'v2'}"))

    def rolled():
        current = get_json(kubectl, "-n", namespace, "isvc", "echo")
        assert condition(current, "Ready")["status"] == "True", "readiness dropped during the rollout"
        return answer(url) == "echo:v2"

    wait_for(rolled, what="the new model version to serve")

    pods = get_json(kubectl, "-n", namespace, "pods", "-l", "serving.kserve.io/inferenceservice=echo")["items"]
    pids = container_pids(pods)
    assert pids
    kubectl("delete", "-n", namespace, "isvc", "echo")
    wait_for(lambda: not any(process_alive(pid) for pid in pids), what="the predictor's processes to stop")
    with pytest.raises(urllib.error.URLError):
        answer(url)


def test_inferenceservice_without_a_runtime_reports_it(kubectl, namespace, kserve_crds):
    apply(
        kubectl,
        namespace,
        {
            **isvc("file:///nowhere"),
            "spec": {"predictor": {"model": {"modelFormat": {"name": "unheard-of"}, "storageUri": "file:///nowhere"}}},
        },
    )
    status = wait_for(lambda: get_json(kubectl, "-n", namespace, "isvc", "echo").get("status"), what="a status")
    assert condition({"status": status}, "Ready")["reason"] == "NoSupportingRuntime"
    assert status["modelStatus"]["transitionStatus"] == "InvalidSpec"


@pytest.fixture
def s3_models():
    """moto's S3 server holding s3://models/echo/v1/model.txt; yields its host:port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="minio",
        aws_secret_access_key="minio123",
    )
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="echo/v1/model.txt", Body=b"from-s3")
    yield f"{host}:{port}"
    server.stop()


def test_s3_model_is_fetched_with_the_service_accounts_credentials(
    kubectl, namespace, kserve_crds, foreign_service_addresses_reserved, s3_models
):
    apply(
        kubectl,
        namespace,
        RUNTIME,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "s3creds",
                "annotations": {
                    "serving.kserve.io/s3-endpoint": s3_models,
                    "serving.kserve.io/s3-usehttps": "0",
                    "serving.kserve.io/s3-region": "us-east-1",
                },
            },
            "stringData": {"AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "minio123"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models"}, "secrets": [{"name": "s3creds"}]},
        {
            **isvc("s3://models/echo/v1"),
            "spec": {
                "predictor": {
                    "serviceAccountName": "models",
                    "model": {"modelFormat": {"name": "tiny"}, "storageUri": "s3://models/echo/v1"},
                }
            },
        },
    )
    ready = wait_for(
        lambda: (lambda o: condition(o, "Ready").get("status") == "True" and o)(
            get_json(kubectl, "-n", namespace, "isvc", "echo")
        ),
        what="the InferenceService to be Ready",
    )
    assert answer(ready["status"]["address"]["url"]) == "echo:from-s3"
    pod = get_json(kubectl, "-n", namespace, "pods", "-l", "serving.kserve.io/inferenceservice=echo")["items"][0]
    initializer = pod["status"]["initContainerStatuses"][0]
    assert initializer["name"] == "storage-initializer"
    assert initializer["state"]["terminated"]["reason"] == "Completed"
    logs = kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", "storage-initializer").stdout
    assert "copied 1 file(s) from s3://models/echo/v1" in logs
