"""Helpers of the lifecycle tests: a local cluster as processes, and small manifests."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
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

    def start(self) -> "Process":
        log = open(self.log_path, "a")
        self.child = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                      env={**os.environ, **(self.env or {})})
        log.close()
        return self

    def kill(self) -> None:
        if self.child and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait()

    def stop(self) -> None:
        if self.child and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalCluster:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.kubeconfig = str(self.state / "kubeconfig")
        self.plane = Process([sys.executable, "-m", "mlkube.cli", "local", "up", "--no-operator", "--state-dir",
                              str(self.state), "--port", "0"], workdir / "control-plane.log")
        self.operator = Process([sys.executable, "-m", "mlkube.cli", "operator", "--kubeconfig", self.kubeconfig],
                                workdir / "operator.log")
        self._kubectl = shutil.which("kubectl")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        if self._kubectl is None:
            pytest.skip("kubectl is not on PATH")
        result = subprocess.run([self._kubectl, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.workdir / "kcache"), *args],
                                input=input, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    def apply(self, obj: dict[str, Any], namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def items(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return json.loads(self.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]


def project(name: str, data: pathlib.Path, storage: pathlib.Path, **spec: Any) -> dict[str, Any]:
    """A small penguins project: quick trainings of a few trials."""
    body = {
        "goal": {"description": "Identify penguin species", "type": "Process"},
        "problem": {"task": "classification", "target": "species", "primaryMetric": "f1", "features": {"exclude": ["year"]}},
        "successCriteria": [{"metric": "f1", "op": ">=", "threshold": 0.6}],
        "data": {"uri": f"file://{data}"},
        "storage": {"uri": f"file://{storage}"},
        "training": {"template": {"algorithms": [{"name": "logistic_regression"}], "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 2}}},
    }
    body.update(spec)
    return {"apiVersion": "mlkube.io/v1alpha1", "kind": "MLProject", "metadata": {"name": name}, "spec": body}


def trainingjob(name: str, project_name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "mlkube.io/v1alpha1", "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"projectRef": project_name, **spec}}
