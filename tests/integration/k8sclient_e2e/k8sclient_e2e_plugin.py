"""pytest plugin for running the kubernetes Python client's own e2e tests (vendored in upstream/) unchanged.

Loaded with `-p k8sclient_e2e_plugin` by test_k8sclient_e2e.py in a pytest of its own, whose
working directory is upstream/ (the tests open `kubernetes/e2e_test/test_yaml/...` relative to
it). It makes `kubernetes.e2e_test` the vendored package (the installed client does not ship its
tests), points `base.get_e2e_configuration` at the cluster's kubeconfig (MLKUBE_E2E_KUBECONFIG;
it reads kube_config's default location), and marks the tests that cannot hold on one machine
with the reason, as docs/local-mode.md lists them: xfail (strict) when they fail, skip when they
would wait forever.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import signal
import sys

import pytest

UPSTREAM = pathlib.Path(__file__).parent / "upstream"

NO_NGINX = "needs the nginx image, which has no local equivalent (the local runtime runs python, busybox and mlkube images)"

# test id (file::class::name) -> (skip | xfail, reason). docs/local-mode.md lists each one.
# skip: would wait forever; xfail: fails on one machine (strict).
KNOWN_LIMITS: dict[str, tuple[str, str]] = {
    "kubernetes/e2e_test/test_client.py::TestClient::test_portforward_http": (
        "skip",
        NO_NGINX + "; it would wait forever for the pod to leave Pending",
    ),
}


def _alias_e2e_package() -> None:
    import kubernetes

    package_dir = UPSTREAM / "kubernetes" / "e2e_test"
    spec = importlib.util.spec_from_file_location(
        "kubernetes.e2e_test", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubernetes.e2e_test"] = module
    spec.loader.exec_module(module)
    kubernetes.e2e_test = module


def pytest_configure(config: pytest.Config) -> None:
    from kubernetes.config import kube_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = os.environ["MLKUBE_E2E_KUBECONFIG"]
    _alias_e2e_package()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        known = KNOWN_LIMITS.get(item.nodeid)
        if known is None:
            continue
        kind, reason = known
        if kind == "skip":
            item.add_marker(pytest.mark.skip(reason=reason))
        else:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


TEST_SECONDS = 90
"""No upstream test takes more than a few seconds here; one that waits longer fails, naming itself,
instead of holding the whole run until the outer timeout."""


class TookTooLong(Exception):
    """An upstream test ran past TEST_SECONDS."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    def expire(signum, frame):
        raise TookTooLong(f"{item.nodeid} ran longer than {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
