"""One local cluster and one trained penguins project for the BatchPrediction acceptance tests.

The project's version 1 is trained once per session by a real TrainingJob (logistic regression,
one trial) in a namespace of the session; every test scores with it there, isolated from the
others by its BatchPredictions' names and its data directories.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

import pytest
from batch_helpers import PROJECT, wait_for

import localcluster
from localcluster import LocalCluster

cluster = localcluster.cluster_fixture()


@pytest.fixture(scope="session")
def trained(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"namespace", "version", "digest", "storage"}: a namespace whose project has a trained, eligible version 1."""
    namespace = f"batch-{uuid.uuid4().hex[:6]}"
    data = localcluster.penguins_csv(tmp_path_factory.mktemp("data"))
    storage = tmp_path_factory.mktemp("store")
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
                "successCriteria": [{"metric": "f1", "op": ">=", "threshold": 0.6}],
                "data": {"uri": data.as_uri()},
                "storage": {"uri": storage.as_uri()},
                "training": {
                    "template": {
                        "algorithms": [{"name": "logistic_regression"}],
                        "tuning": {"strategy": "random", "maxTrials": 1, "cvFolds": 2},
                    }
                },
            },
        },
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "first"},
            "spec": {"projectRef": PROJECT},
        },
        namespace,
    )

    def registered() -> dict[str, Any] | None:
        status = cluster.status("mlproject", PROJECT, namespace)
        return next((m for m in status.get("models", []) if m["version"] == 1), None) if status.get("championVersion") else None

    entry = wait_for(registered, 300, "version 1 to be trained and registered", interval=1)
    return {"namespace": namespace, "version": 1, "digest": entry["digest"], "storage": storage}


@pytest.fixture(scope="session")
def rows_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("rows")
