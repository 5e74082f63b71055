"""Fixtures of the rollout acceptance tests: one local cluster and one penguins project per session.

The project's versions are made once and shared: `good` and `better` (two real trainings on
every feature, so their predictions mostly agree), `tampered` (trained, then its model file
modified), `faulty` (a real pipeline that fails on rows with a zero measurement) and `constant`
(valid, but always answers the most frequent species).
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rollout_helpers import (
    PROJECT,
    RolloutCluster,
    register,
    registry,
    tamper,
    wait_for,
    write_constant_version,
    write_faulty_version,
)

import localcluster

TRAININGS = {"good": {"maxTrials": 1}, "better": {"maxTrials": 2}, "tampered": {"maxTrials": 1}}


cluster = localcluster.cluster_fixture(kind=RolloutCluster)


@pytest.fixture(scope="session")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def project(cluster: RolloutCluster, penguins_csv: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Namespace, project and version numbers: {"namespace", "versions": {"good": 1, ...}}."""
    namespace = f"rollout-{uuid.uuid4().hex[:6]}"
    storage = tmp_path_factory.mktemp("models")
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "MLProject",
            "metadata": {"name": PROJECT},
            "spec": {
                "goal": {"description": "Identify penguin species", "type": "Process"},
                "problem": {
                    "task": "classification",
                    "target": "species",
                    "primaryMetric": "f1",
                    "features": {"exclude": ["year"]},
                },
                "data": {"uri": penguins_csv.as_uri()},
                "storage": {"uri": storage.as_uri()},
                "promotion": {"policy": "manual"},
                "training": {
                    "template": {"algorithms": [{"name": "logistic_regression"}], "tuning": {"strategy": "random", "cvFolds": 2}}
                },
            },
        },
        namespace,
    )
    for name, tuning in TRAININGS.items():
        cluster.apply(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": name},
                "spec": {"projectRef": PROJECT, "tuning": {"strategy": "random", "cvFolds": 2, **tuning}},
            },
            namespace,
        )
    trained = wait_for(
        lambda: (found := registry(cluster, namespace, PROJECT)).keys() >= TRAININGS.keys() and found,
        300,
        "three trainings to register their versions",
        interval=1,
    )
    tamper(trained["tampered"]["artifactUri"])
    faulty = write_faulty_version(trained["good"]["artifactUri"], penguins_csv, storage / "hand-made" / "faulty")
    register(cluster, namespace, PROJECT, name="faulty", info=faulty)
    constant = write_constant_version(trained["good"]["artifactUri"], penguins_csv, storage / "hand-made" / "constant")
    register(cluster, namespace, PROJECT, name="constant", info=constant)
    versions = {name: entry["version"] for name, entry in registry(cluster, namespace, PROJECT).items()}
    return {"namespace": namespace, "versions": versions}


@pytest.fixture
def deploy(cluster: RolloutCluster, project: dict[str, Any]) -> Iterator[Callable[..., str]]:
    """Create a ModelDeployment of the session's project (deleted after the test); returns its name."""
    created = []

    def create(version: int | None, strategy: dict[str, Any]) -> str:
        """``version`` None: track the project's champion."""
        name = f"pg-{uuid.uuid4().hex[:5]}"
        model = {"version": version} if version is not None else {"track": "champion"}
        cluster.apply(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": name},
                "spec": {"projectRef": PROJECT, "model": model, "strategy": strategy, "logging": {"enabled": False}},
            },
            project["namespace"],
        )
        created.append(name)
        return name

    yield create
    for name in created:
        cluster.kubectl("delete", "mdep", name, "-n", project["namespace"], "--wait=false", check=False)
