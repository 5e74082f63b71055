"""One local cluster (real processes, real HTTP) for the anomaly detection and clustering acceptance tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import localcluster
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with localcluster.running(LocalCluster(tmp_path_factory.mktemp("cluster"))) as local:
        yield local


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    with localcluster.namespace(cluster) as name:
        yield name
