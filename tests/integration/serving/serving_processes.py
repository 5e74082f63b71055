"""Model-server and router processes on loopback, for the serving integration tests (their
fixtures are in this folder's conftest.py): free ports, spawning with a startup wait, the router
process that reloads its routing table, one pooled HTTP client."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import httpx

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
