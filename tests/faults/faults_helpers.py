"""Helpers of the lifecycle fault tests: an S3 endpoint that can go down and come back, the
local cluster's trainer processes, and prediction traffic kept up in the background.

The cluster, its manifests and its prediction client are those of the integration suites
(tests/integration/localcluster.py, lifecycle/lifecycle_helpers.py, rollout/rollout_helpers.py),
imported, not copied: their folders are put on ``sys.path`` here, as pytest does for a suite
whose conftest it loads.

Must not: decide what a test asserts; each helper observes or injects one fault.
"""

from __future__ import annotations

import collections
import pathlib
import sys
import threading
import time
from typing import Any

import boto3
import psutil
from moto import server as moto_server
from werkzeug import serving as werkzeug_serving

INTEGRATION = pathlib.Path(__file__).resolve().parents[1] / "integration"
for _folder in (INTEGRATION, INTEGRATION / "lifecycle", INTEGRATION / "rollout"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import lifecycle_helpers  # noqa: E402  (found through the sys.path entries above)
import rollout_helpers  # noqa: E402

import localcluster  # noqa: E402

KEY, SECRET, REGION = "faults", "faults-secret", "us-east-1"
TRAINER_MODULE = "mlkube.trainer"


class S3Endpoint:
    """moto's S3 server in this process, stoppable: a stopped endpoint refuses connections (its
    listening socket is closed) and a restarted one listens on the same port with the same objects
    (moto keeps them in this process)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Endpoint:
        app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)
        self._server = werkzeug_serving.make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=moto_server.MotoRequestHandler
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close the listening socket: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents") or []]


def storage_secret(name: str, endpoint: S3Endpoint) -> dict[str, Any]:
    """The project's S3 credentials, annotated the KServe way so that the storage initializer of
    an InferenceService reaches the same endpoint (docs/cluster.md)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {
                "serving.kserve.io/s3-endpoint": f"127.0.0.1:{endpoint.port}",
                "serving.kserve.io/s3-usehttps": "0",
                "serving.kserve.io/s3-region": REGION,
            },
        },
        "stringData": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
    }


def s3_project(name: str, data: pathlib.Path, *, uri: str, endpoint: S3Endpoint, secret: str) -> dict[str, Any]:
    """The lifecycle suite's small penguins project, its models in S3 and promotion manual (the
    tests choose what each ModelDeployment serves)."""
    body = lifecycle_helpers.project(name, data, pathlib.Path("/unused"), promotion={"policy": "manual"})
    body["spec"]["storage"] = {"uri": uri, "endpoint": endpoint.url, "credentialsSecret": secret}  # replaces the file:// one
    return body


class FaultCluster(rollout_helpers.RolloutCluster):
    """The shared local cluster, plus what the fault tests look at: trainer processes and pods."""

    def trainer_processes(self, job_name: str) -> list[psutil.Process]:
        """The trainer processes (``python -m mlkube.trainer``) the local runtime started for the
        pods of Job ``job_name`` (children such as joblib workers excluded)."""
        found = []
        for process in self.processes_of(f"{job_name}-"):
            try:
                if TRAINER_MODULE in process.cmdline():
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return found

    def pods_of_job(self, job_name: str, namespace: str) -> list[dict[str, Any]]:
        return self.items("pods", namespace, "-l", f"batch.kubernetes.io/job-name={job_name}")

    def owned(self, kind: str, owner: str, namespace: str) -> list[dict[str, Any]]:
        """Objects of ``kind`` carrying the owner-name label of mlkube's children."""
        return self.items(kind, namespace, "-l", f"mlkube.io/owner-name={owner}")


class Traffic:
    """Predictions sent continuously from background threads through a ModelDeployment's router.

    Every request is kept as (x-mlkube-version, HTTP status); one that got no answer at all
    (refused, reset, timed out) as (None, 0)."""

    def __init__(self, url: str, deployment: str, rows: list[dict[str, Any]], *, threads: int = 2, pause: float = 0.02):
        self.client = rollout_helpers.Client(url, deployment, threads=1)
        self.rows, self.pause = rows, pause
        self.answers: list[tuple[str | None, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _send(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            row = self.rows[i % len(self.rows)]
            i += len(self._threads)
            try:
                response = self.client.predict(row)
                self.answers.append((response.headers.get("x-mlkube-version"), response.status_code))
                if response.status_code != 200 and len(self.errors) < 5:
                    self.errors.append(f"{response.status_code}: {response.text[:200]}")
            except Exception as error:  # a request with no answer is what this counts
                self.answers.append((None, 0))
                if len(self.errors) < 5:
                    self.errors.append(repr(error))
            time.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self.client.close()

    def count(self) -> int:
        return len(self.answers)

    def since(self, start: int) -> list[tuple[str | None, int]]:
        return self.answers[start:]

    def summary(self) -> dict[str, Any]:
        by = collections.Counter(self.answers)
        return {
            "sent": len(self.answers),
            "failed": sum(n for (_, code), n in by.items() if code != 200),
            "by_version": dict(collections.Counter(v for v, code in self.answers if code == 200)),
            "errors": self.errors,
        }


wait_for = localcluster.wait_for
