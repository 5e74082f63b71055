"""Fixtures of the process runtime's integration tests: the runtime as a real subprocess.

The runtime runs against the session API server (``apiserver`` of tests/integration/conftest.py)
with the API server's state directory, so ``kubectl logs`` reads the logs the runtime writes.
Each test works in its own namespace. Back-off timings are shortened so that restarts and
retries are observable in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

CRDS = pathlib.Path(__file__).parents[3] / "operator" / "mlkube" / "local" / "crds"


@dataclasses.dataclass
class RunningRuntime:
    """``python -m mlkube.local.runtime`` against one API server."""

    kubeconfig: str
    state_dir: pathlib.Path
    log: pathlib.Path
    process: subprocess.Popen | None = None

    def start(self) -> RunningRuntime:
        command = [
            sys.executable,
            "-m",
            "mlkube.local.runtime",
            "--kubeconfig",
            self.kubeconfig,
            "--state-dir",
            str(self.state_dir),
            "--backoff-base",
            "0.5",
            "--job-retry-base",
            "0.2",
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as ``mlkube local down`` does; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@pytest.fixture(scope="module")
def runtime(apiserver, tmp_path_factory) -> Iterator[RunningRuntime]:
    running = RunningRuntime(
        apiserver.kubeconfig, apiserver.state_dir, tmp_path_factory.mktemp("runtime") / "runtime.log"
    ).start()
    yield running
    running.stop()


@pytest.fixture
def runtime_for(tmp_path) -> Iterator:
    """A factory of runtimes for other servers (e.g. from ``fresh_apiserver``), stopped at the end."""
    started: list[RunningRuntime] = []

    def start(server) -> RunningRuntime:
        log = tmp_path / f"runtime-{len(started)}.log"
        started.append(RunningRuntime(server.kubeconfig, server.state_dir, log).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def namespace(kubectl, runtime) -> Iterator[str]:
    name = f"rt-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def foreign_service_addresses_reserved(kubectl, namespace) -> None:
    """Keep the API server from allocating a clusterIP another local cluster on this machine
    is already serving (the allocator starts at 127.1.0.1 in every state directory): hold each
    such address with a selector-less placeholder Service."""
    from runtime_helpers import bound_service_addresses

    for index, address in enumerate(sorted(bound_service_addresses())):
        kubectl(
            "create",
            "-n",
            namespace,
            "-f",
            "-",
            check=False,
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"reserved-{index}"},
                    "spec": {"clusterIP": address, "ports": [{"port": 1}]},
                }
            ),
        )


@pytest.fixture(scope="module")
def kserve_crds(apiserver, kubectl) -> None:
    for path in sorted(CRDS.glob("serving.kserve.io_*.yaml")):
        kubectl("apply", "-f", str(path))
    for name in ("inferenceservices", "servingruntimes", "clusterservingruntimes"):
        kubectl("wait", "--for=condition=Established", f"crd/{name}.serving.kserve.io")
