"""Helpers of the closed-loop tests: the local cluster as processes (``mlkube local up --no-operator``
plus ``mlkube operator``), driven with kubectl, as in tests/integration/lifecycle (copied here:
test directories do not import each other)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, argv: list[str], log: pathlib.Path) -> None:
        self.argv, self.log_path = argv, log
        self.child: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log_path, "a") as log:
            self.child = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.child and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()


class LocalCluster:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.kubeconfig = str(workdir / "state" / "kubeconfig")
        self.plane = Process([sys.executable, "-m", "mlkube.cli", "local", "up", "--no-operator", "--state-dir",
                              str(workdir / "state"), "--port", "0"], workdir / "control-plane.log")
        self.operator = Process([sys.executable, "-m", "mlkube.cli", "operator", "--kubeconfig", self.kubeconfig],
                                workdir / "operator.log")
        self._kubectl = shutil.which("kubectl")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        if self._kubectl is None:
            pytest.skip("kubectl is not on PATH")
        result = subprocess.run([self._kubectl, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.workdir / "kcache"),
                                 *args], input=input, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    def apply(self, obj: dict[str, Any], namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))

    def status(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        result = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return (json.loads(result.stdout).get("status") or {}) if result.returncode == 0 else {}

    def items(self, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
        return json.loads(self.kubectl("get", kind, "-n", namespace, *selector, "-o", "json").stdout)["items"]

    def events(self, name: str, namespace: str) -> list[str]:
        return [e["reason"] for e in self.items("events", namespace) if e["involvedObject"]["name"] == name]


def foreign_service_addresses(first_free: int) -> list[str]:
    """clusterIPs our cluster must not allocate: 127.1.x.y addresses some process on this machine
    listens on (another local cluster's Services, read from /proc/net/tcp), and the first
    ``first_free`` of the range, where every other local cluster's allocator starts."""
    addresses = {f"127.1.0.{i}" for i in range(1, first_free)}
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address = ".".join(str(b) for b in bytes.fromhex(local.split(":")[0])[::-1])
        if state == "0A" and address.startswith("127.1."):  # LISTEN
            addresses.add(address)
    return sorted(addresses)


def reserve_service_addresses(cluster: LocalCluster, addresses: list[str]) -> None:
    """Hold each address with a selector-less placeholder Service in namespace mlkube-reserved."""
    cluster.kubectl("create", "namespace", "mlkube-reserved")
    services = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"reserved-{i}"},
                 "spec": {"clusterIP": address, "ports": [{"port": 1}]}} for i, address in enumerate(addresses)]
    cluster.kubectl("create", "-n", "mlkube-reserved", "-f", "-", input=yaml.safe_dump_all(services))


def mlkube(*args: str) -> subprocess.CompletedProcess:
    """The ``mlkube`` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "mlkube.cli", *args], capture_output=True, text=True, timeout=120)
