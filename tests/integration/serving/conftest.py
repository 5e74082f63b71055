"""Real model-server and router processes on loopback for the serving integration tests.

`versions` writes two model versions once per session (breast-cancer logistic regressions with
different regularisation). `servers` starts a model server for each, in parallel. `start_router` starts a
router on a routes file; `RouterProcess.apply(table)` rewrites the file and waits until the
router reports the new generation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import modelfactory
import pytest

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0
# One pooled client for every call: a fresh httpx client per request costs ~0.1 s (SSL context).
CLIENT = httpx.Client(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Process:
    """A serving process and its log."""

    popen: subprocess.Popen
    url: str
    log: pathlib.Path

    def wait_ready(self, path: str = "/v2/health/ready") -> Process:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.url} exited with {self.popen.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if CLIENT.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.url} not ready within {STARTUP_TIMEOUT}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM and wait (the router flushes its capture), or SIGKILL when nothing needs flushing."""
        if self.popen.poll() is None:
            self.popen.kill() if kill else self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(args: list[str], log: pathlib.Path, port: int, env: dict | None = None) -> Process:
    handle = open(log, "wb")  # noqa: SIM115 (the child's output, closed with it)
    popen = subprocess.Popen(
        [sys.executable, *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLKUBE_BIND_HOST": HOST, **(env or {})},
    )
    return Process(popen, f"http://{HOST}:{port}", log)


def spawn_server(name: str, model_dir: pathlib.Path, log_dir: pathlib.Path, *extra: str) -> Process:
    port = free_port()
    args = [
        "-m",
        "mlkube.serving.server",
        "--model_name",
        name,
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(port),
        "--enable_latency_logging",
        "false",
        *extra,
    ]
    return spawn(args, log_dir / f"{name}-{port}.log", port)


@pytest.fixture(scope="session")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("versions")
    modelfactory.write_version(root / "v1", C=1.0)
    modelfactory.write_version(root / "v2", C=0.001)
    return {"v1": root / "v1", "v2": root / "v2"}


@pytest.fixture(scope="session")
def servers(versions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Process]]:
    logs = tmp_path_factory.mktemp("server-logs")
    started = {
        "v1": spawn_server("churn-prod-v1", versions["v1"], logs),
        "v2": spawn_server("churn-prod-v2", versions["v2"], logs),
    }
    try:
        for process in started.values():
            process.wait_ready()
        yield started
    finally:
        for process in started.values():
            process.stop(kill=True)


@dataclasses.dataclass
class RouterProcess(Process):
    routes: pathlib.Path = pathlib.Path()
    generation: int = 0

    def apply(self, table: dict) -> None:
        """Write a new table (next generation) and wait until the router serves it."""
        self.generation += 1
        doc = {**table, "generation": self.generation}
        staging = self.routes.with_suffix(".tmp")
        staging.write_text(json.dumps(doc))
        os.replace(staging, self.routes)
        deadline = time.monotonic() + 10
        while self.stats()["generation"] != self.generation:
            if time.monotonic() > deadline:
                raise RuntimeError(f"router did not load generation {self.generation}:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stats(self) -> dict:
        return CLIENT.get(self.url + "/mlkube/stats").json()


@pytest.fixture
def start_router(tmp_path: pathlib.Path) -> Iterator[Callable[[dict], RouterProcess]]:
    started: list[RouterProcess] = []

    def start(table: dict, *extra: str) -> RouterProcess:
        routes = tmp_path / f"routes-{len(started)}.json"
        routes.write_text(json.dumps({**table, "generation": 1}))
        port = free_port()
        args = ["-m", "mlkube.serving.router", "--routes-file", str(routes), "--port", str(port), "--seed", "7", *extra]
        base = spawn(args, tmp_path / f"router-{port}.log", port)
        router = RouterProcess(base.popen, base.url, base.log, routes=routes, generation=1)
        started.append(router)
        return router.wait_ready()

    yield start
    for router in started:
        router.stop()


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    """The capture store of a test (its file:// URI is the table's capture.uri)."""
    return tmp_path / "store"


@pytest.fixture
def make_table(servers: dict[str, Process], store: pathlib.Path) -> Callable[..., dict]:
    """`make_table(**changes)`: a routing table for `churn-prod` over the v1 and v2 servers."""

    def make(**changes) -> dict:
        doc = {
            "deployment": "churn-prod",
            "namespace": "ml",
            "project": "churn",
            "backends": {
                "1": {"url": servers["v1"].url, "model": "churn-prod-v1"},
                "2": {"url": servers["v2"].url, "model": "churn-prod-v2"},
            },
            "split": [{"version": 1, "weight": 100, "role": "stable"}],
            "sticky": None,
            "shadow": None,
            "compare": None,
            "preview": None,
            "capture": {"enabled": True, "sampleRate": 1.0, "uri": store.as_uri(), "endpoint": None},
        }
        doc.update(changes)
        return doc

    return make
