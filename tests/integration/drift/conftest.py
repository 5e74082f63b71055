"""One local cluster (real processes, real HTTP) for the closed-loop acceptance test."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest

from drift_helpers import LocalCluster, foreign_service_addresses, reserve_service_addresses, wait_for


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    local.plane.start()
    try:
        wait_for(lambda: pathlib.Path(local.kubeconfig).exists(), 60, "the control plane")
        wait_for(lambda: local.kubectl("get", "crd", "driftmonitors.mlkube.io", check=False).returncode == 0, 30, "the CRDs")
        # The embedded API server allocates clusterIPs from 127.1.0.1 in every state directory: keep
        # clear of the Services of other local clusters running on this machine (as tests/integration/rollout).
        reserve_service_addresses(local, foreign_service_addresses(first_free=96))
        local.operator.start()
        yield local
    finally:
        local.operator.stop()
        local.plane.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
