"""A whole local cluster for lifecycle tests: `mlkube local up --no-operator` (API server and process
runtime) plus the operator as its own process, so tests can kill and restart it."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest

import localcluster
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield local.start()
    finally:
        local.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))
