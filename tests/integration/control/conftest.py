"""Reconcilers against the embedded API server: one pass at a time, driven from the test.

No operator process and no runtime: a test calls ``reconcile.<kind>`` with the operator's own
client (``mlkube.clients.k8s``) on a real API server with the project's CRDs, then looks at what
a user would see (the objects, their status, the Events).
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest

from mlkube.clients import k8s

ROOT = pathlib.Path(__file__).parents[3]


@pytest.fixture(scope="module")
def crds(apiserver, kubectl) -> None:
    kubectl("apply", "-k", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def client(apiserver, crds, loop) -> Iterator[k8s.Client]:
    """The operator's client on the test's API server."""
    client = k8s.Client(k8s.Credentials.load(apiserver.kubeconfig))
    yield client
    loop.run_until_complete(client.close())
