"""A whole local cluster for end-to-end tests: `mlkube local up --no-operator` (API server and
process runtime) plus `mlkube operator` as its own process (so tests can kill and restart it, and
scrape its metrics), driven with kubectl as a user would. Shared by the suites that run a whole
cluster (lifecycle, rollout, drift, trials, text, forecasting, unsupervised, batch, faults): their
conftests keep their own fixtures (scope, markers) and call `running` or `started` and
`namespace` for the bodies."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import psutil
import pytest
import yaml


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """The first truthy value of ``condition()``, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, argv: list[str], log: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.argv, self.log_path, self.env = argv, log, env
        self.child: subprocess.Popen | None = None

    def start(self) -> Process:
        env = {**os.environ, **self.env} if self.env else None
        with open(self.log_path, "a") as log:
            self.child = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.child and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait()

    def stop(self) -> None:
        """Ctrl-C, then SIGKILL if it does not exit."""
        if self.child and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """The embedded control plane and the operator, driven with kubectl."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.kubeconfig = str(self.state / "kubeconfig")
        self.plane = Process(
            [sys.executable, "-m", "mlkube.cli", "local", "up", "--no-operator", "--state-dir", str(self.state), "--port", "0"],
            workdir / "control-plane.log",
        )
        self.metrics_port = free_port()
        self.operator = Process(
            [sys.executable, "-m", "mlkube.cli", "operator", "--kubeconfig", self.kubeconfig],
            workdir / "operator.log",
            env={"MLKUBE_METRICS_PORT": str(self.metrics_port)},
        )
        self._kubectl = shutil.which("kubectl")

    def start(self) -> LocalCluster:
        """The control plane, its CRDs, then the operator."""
        self.plane.start()
        wait_for(lambda: pathlib.Path(self.kubeconfig).exists(), 60, "the control plane")
        wait_for(lambda: self.kubectl("get", "crd", "mlprojects.mlkube.io", check=False).returncode == 0, 30, "the CRDs")
        self.operator.start()
        return self

    def stop(self) -> None:
        self.operator.stop()
        self.plane.stop()

    def operator_metrics(self) -> str:
        """The operator's Prometheus exposition (``MLKUBE_METRICS_PORT``), as a scrape reads it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return response.read().decode()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        if self._kubectl is None:
            pytest.skip("kubectl is not on PATH")
        result = subprocess.run(
            [self._kubectl, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.workdir / "kcache"), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    def apply(self, obj: dict[str, Any], namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def status(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return (self.get(kind, name, namespace) or {}).get("status") or {}

    def items(self, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
        return json.loads(self.kubectl("get", kind, "-n", namespace, *selector, "-o", "json").stdout)["items"]

    def events(self, name: str, namespace: str) -> list[str]:
        """The reasons of the Events about object ``name``."""
        return [e["reason"] for e in self.items("events", namespace) if e["involvedObject"]["name"] == name]

    def processes_of(self, pod_name_prefix: str) -> list[psutil.Process]:
        """The local processes running the containers of this cluster's pods named ``prefix...``."""
        found = []
        for process in psutil.process_iter(["pid"]):
            try:
                environment = process.environ()
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            if environment.get("MLKUBE_CONTAINER_ROOT", "").startswith(str(self.state)) and environment.get(
                "HOSTNAME", ""
            ).startswith(pod_name_prefix):
                found.append(process)
        return found


def listening_service_addresses() -> list[str]:
    """127.1.x.y addresses some process on this machine listens on (another local cluster's
    Services, read from /proc/net/tcp): a cluster under test must not allocate them."""
    addresses = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address = ".".join(str(b) for b in bytes.fromhex(local.split(":")[0])[::-1])
        if state == "0A" and address.startswith("127.1."):  # LISTEN
            addresses.add(address)
    return sorted(addresses)


def reserve_service_addresses(cluster: LocalCluster, addresses: list[str]) -> None:
    """Hold each address with a selector-less placeholder Service in namespace mlkube-reserved."""
    if not addresses:
        return
    cluster.kubectl("create", "namespace", "mlkube-reserved")
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"reserved-{i}"},
            "spec": {"clusterIP": address, "ports": [{"port": 1}]},
        }
        for i, address in enumerate(addresses)
    ]
    cluster.kubectl("create", "-n", "mlkube-reserved", "-f", "-", input=yaml.safe_dump_all(services))


@contextlib.contextmanager
def started(local: LocalCluster) -> Iterator[LocalCluster]:
    """``local`` started, and stopped afterwards whatever happens (also when it fails to start)."""
    try:
        local.start()
        yield local
    finally:
        local.stop()


@contextlib.contextmanager
def running(local: LocalCluster) -> Iterator[LocalCluster]:
    """``local`` started, clear of the Service addresses other local clusters on this machine
    serve, and stopped afterwards whatever happens."""
    with started(local):
        reserve_service_addresses(local, listening_service_addresses())
        yield local


class RunsKubectl(Protocol):
    """A control plane that `kubectl` talks to: a LocalCluster, or local mode's embedded plane."""

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess: ...


@contextlib.contextmanager
def namespace(cluster: RunsKubectl, *, prefix: str = "t") -> Iterator[str]:
    """A fresh namespace ``<prefix>-<hex>`` in ``cluster``, deleted afterwards (without waiting)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def cluster_fixture(
    *,
    start: Callable[[Any], contextlib.AbstractContextManager] = running,
    kind: type[LocalCluster] = LocalCluster,
    configure: Callable[[Any], None] | None = None,
) -> Any:
    """A folder's session ``cluster`` fixture, for its conftest: ``cluster = localcluster.cluster_fixture()``.

    A ``kind`` cluster in the session's temporary directory, ``configure``d before ``start``
    (``running``: clear of other clusters' Service addresses; ``started``: as is), stopped after
    the folder's last test (tests/conftest.py)."""

    @pytest.fixture(scope="session", name="cluster")
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
        local = kind(tmp_path_factory.mktemp("cluster"))
        if configure is not None:
            configure(local)
        with start(local):
            yield local

    return cluster


@pytest.fixture(name="namespace")
def namespace_fixture(cluster: LocalCluster) -> Iterator[str]:
    """A folder's ``namespace`` fixture (``namespace = localcluster.namespace_fixture``): a fresh one per test."""
    with namespace(cluster) as name:
        yield name


def penguins_csv(directory: pathlib.Path) -> pathlib.Path:
    """The Palmer penguins table (shipped in the palmerpenguins package) as a CSV in ``directory``."""
    import palmerpenguins

    path = directory / "penguins.csv"
    palmerpenguins.load_penguins().to_csv(path, index=False)
    return path
