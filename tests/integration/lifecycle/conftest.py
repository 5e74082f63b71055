"""A whole local cluster for lifecycle tests: `mlkube local up --no-operator` (API server and process
runtime) plus the operator as its own process, so tests can kill and restart it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

import localcluster
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with localcluster.started(LocalCluster(tmp_path_factory.mktemp("cluster"))) as local:
        yield local


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    with localcluster.namespace(cluster) as name:
        yield name


@pytest.fixture(scope="session")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))
