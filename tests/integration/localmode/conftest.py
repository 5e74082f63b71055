"""One `mlkube local up --no-operator` (API server and process runtime) for the kubectl scenarios of
local mode: exec, port-forward, top, nodes, DaemonSets and ReplicationControllers."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from localcluster import Process, wait_for
from localcluster import namespace as fresh_namespace

Kubectl = Callable[..., subprocess.CompletedProcess]


class Plane:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "state" / "kubeconfig"
        self.process = Process(
            [
                sys.executable,
                "-m",
                "mlkube.cli",
                "local",
                "up",
                "--no-operator",
                "--state-dir",
                str(workdir / "state"),
                "--port",
                "0",
            ],
            workdir / "control-plane.log",
        )

    def kubectl_argv(self, *args: str) -> list[str]:
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.skip("kubectl is not on PATH: the local-mode scenarios need kubectl 1.32")
        return [binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.workdir / "kcache"), *args]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.kubectl_argv(*args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    local = Plane(tmp_path_factory.mktemp("localmode"))
    local.process.start()
    try:
        wait_for(local.kubeconfig.exists, 60, "the local control plane")
        yield local
    finally:
        local.process.stop()


@pytest.fixture
def namespace(plane: Plane) -> Iterator[str]:
    with fresh_namespace(plane, prefix="lm") as name:
        yield name
