"""A whole local cluster for lifecycle tests: `mlkube local up --no-operator` (API server and process
runtime) plus the operator as its own process, so tests can kill and restart it."""

from __future__ import annotations

import pathlib

import pytest

import localcluster

cluster = localcluster.cluster_fixture(start=localcluster.started)


namespace = localcluster.namespace_fixture


@pytest.fixture(scope="session")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))
