"""Real model-server and router processes on loopback for the serving integration tests.

`versions` writes two model versions once per session (breast-cancer logistic regressions with
different regularisation). `servers` starts a model server for each, in parallel. `start_router` starts a
router on a routes file; `RouterProcess.apply(table)` rewrites the file and waits until the
router reports the new generation.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

import modelfactory
import pytest
from serving_processes import Process, RouterProcess, free_port, spawn, spawn_server


@pytest.fixture(scope="session")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("versions")
    modelfactory.write_version(root / "v1", C=1.0)
    modelfactory.write_version(root / "v2", C=0.001)
    return {"v1": root / "v1", "v2": root / "v2"}


@pytest.fixture(scope="session")
def servers(versions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Process]]:
    logs = tmp_path_factory.mktemp("server-logs")
    started = {
        "v1": spawn_server("churn-prod-v1", versions["v1"], logs),
        "v2": spawn_server("churn-prod-v2", versions["v2"], logs),
    }
    try:
        for process in started.values():
            process.wait_ready()
        yield started
    finally:
        for process in started.values():
            process.stop(kill=True)


@pytest.fixture
def start_router(tmp_path: pathlib.Path) -> Iterator[Callable[[dict], RouterProcess]]:
    started: list[RouterProcess] = []

    def start(table: dict, *extra: str) -> RouterProcess:
        routes = tmp_path / f"routes-{len(started)}.json"
        routes.write_text(json.dumps({**table, "generation": 1}))
        port = free_port()
        args = ["-m", "mlkube.serving.router", "--routes-file", str(routes), "--port", str(port), "--seed", "7", *extra]
        base = spawn(args, tmp_path / f"router-{port}.log", port)
        router = RouterProcess(base.popen, base.url, base.log, routes=routes, generation=1)
        started.append(router)
        return router.wait_ready()

    yield start
    for router in started:
        router.stop()


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    """The capture store of a test (its file:// URI is the table's capture.uri)."""
    return tmp_path / "store"


@pytest.fixture
def make_table(servers: dict[str, Process], store: pathlib.Path) -> Callable[..., dict]:
    """`make_table(**changes)`: a routing table for `churn-prod` over the v1 and v2 servers."""

    def make(**changes) -> dict:
        doc = {
            "deployment": "churn-prod",
            "namespace": "ml",
            "project": "churn",
            "backends": {
                "1": {"url": servers["v1"].url, "model": "churn-prod-v1"},
                "2": {"url": servers["v2"].url, "model": "churn-prod-v2"},
            },
            "split": [{"version": 1, "weight": 100, "role": "stable"}],
            "sticky": None,
            "shadow": None,
            "compare": None,
            "preview": None,
            "capture": {"enabled": True, "sampleRate": 1.0, "uri": store.as_uri(), "endpoint": None},
        }
        doc.update(changes)
        return doc

    return make
