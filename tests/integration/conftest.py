"""Fixtures every integration test shares: the embedded API server (as a subprocess), kubectl, clients.

`apiserver` is session-scoped: tests isolate themselves by namespace or by unique names.
`fresh_apiserver` gives a test its own server and state directory (restart and kill tests).
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import yaml

STARTUP_TIMEOUT = 20.0


@dataclasses.dataclass
class RunningAPIServer:
    """`python -m mlkube.local.apiserver` on a state directory, with kill/restart for durability tests."""

    state_dir: pathlib.Path
    port: int = 0
    history: int | None = None
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    url: str = ""
    token: str = ""

    @property
    def kubeconfig(self) -> str:
        return str(self.state_dir / "kubeconfig")

    @property
    def ca(self) -> str:
        return str(self.state_dir / "ca.crt")

    def start(self) -> RunningAPIServer:
        kubeconfig = pathlib.Path(self.kubeconfig)
        if kubeconfig.exists():
            kubeconfig.unlink()
        command = [sys.executable, "-m", "mlkube.local.apiserver", "--state-dir", str(self.state_dir), "--port", str(self.port)]
        if self.history is not None:
            command += ["--history", str(self.history)]
        command += list(self.extra_args)
        log = open(self.state_dir.parent / f"{self.state_dir.name}.log", "ab")  # noqa: SIM115 (the server's)
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not kubeconfig.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited with {self.process.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"API server did not write {kubeconfig} within {STARTUP_TIMEOUT}s")
            time.sleep(0.05)
        config = yaml.safe_load(kubeconfig.read_text())
        self.url = config["clusters"][0]["cluster"]["server"]
        self.token = config["users"][0]["user"]["token"]
        self.port = int(self.url.rsplit(":", 1)[1])  # a restart keeps the port, so clients keep working
        return self

    def kill(self) -> None:
        """SIGKILL: nothing gets a chance to flush, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def restart(self) -> RunningAPIServer:
        self.kill()
        return self.start()


def _start(state_dir: pathlib.Path, **kwargs) -> RunningAPIServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    return RunningAPIServer(state_dir, **kwargs).start()


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    server = _start(tmp_path_factory.mktemp("apiserver") / "state")
    yield server
    server.stop()


@pytest.fixture
def fresh_apiserver(tmp_path: pathlib.Path) -> Iterator[Callable[..., RunningAPIServer]]:
    """A factory for private servers: `fresh_apiserver(history=5)`."""
    started: list[RunningAPIServer] = []

    def start(**kwargs) -> RunningAPIServer:
        server = _start(tmp_path / f"state{len(started)}", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


Kubectl = Callable[..., subprocess.CompletedProcess]


def _kubectl_for(server: RunningAPIServer, cache_dir: pathlib.Path) -> Kubectl:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH: the kubectl scenarios need kubectl 1.32")

    def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        command = [binary, "--kubeconfig", server.kubeconfig, "--cache-dir", str(cache_dir), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return kubectl


@pytest.fixture(scope="session")
def kubectl(apiserver: RunningAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """Real kubectl against the session server, with its own discovery/OpenAPI cache."""
    return _kubectl_for(apiserver, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture
def kubectl_for(tmp_path: pathlib.Path) -> Callable[[RunningAPIServer], Kubectl]:
    """kubectl bound to another server (e.g. one from fresh_apiserver)."""
    return lambda server: _kubectl_for(server, tmp_path / f"kcache-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="session")
def http(apiserver: RunningAPIServer):
    """An httpx client authenticated to the session server, for raw API calls."""
    import httpx

    with httpx.Client(
        base_url=apiserver.url,
        verify=ssl.create_default_context(cafile=apiserver.ca),
        timeout=30,
        headers={"Authorization": f"Bearer {apiserver.token}"},
    ) as client:
        yield client


@pytest.fixture(scope="session")
def api_client(apiserver: RunningAPIServer):
    """A kubernetes.client.ApiClient configured from the server's kubeconfig."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=apiserver.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
