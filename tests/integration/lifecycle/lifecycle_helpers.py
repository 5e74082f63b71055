"""Helpers of the lifecycle tests: small manifests; the cluster is the shared one of tests/integration/localcluster.py."""

from __future__ import annotations

import pathlib
from typing import Any

from localcluster import wait_for  # noqa: F401  (the tests import it from here)


def project(name: str, data: pathlib.Path, storage: pathlib.Path, **spec: Any) -> dict[str, Any]:
    """A small penguins project: quick trainings of a few trials."""
    body = {
        "goal": {"description": "Identify penguin species", "type": "Process"},
        "problem": {"task": "classification", "target": "species", "primaryMetric": "f1", "features": {"exclude": ["year"]}},
        "successCriteria": [{"metric": "f1", "op": ">=", "threshold": 0.6}],
        "data": {"uri": f"file://{data}"},
        "storage": {"uri": f"file://{storage}"},
        "training": {
            "template": {
                "algorithms": [{"name": "logistic_regression"}],
                "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 2},
            }
        },
    }
    body.update(spec)
    return {"apiVersion": "mlkube.io/v1alpha1", "kind": "MLProject", "metadata": {"name": name}, "spec": body}


def trainingjob(name: str, project_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {"projectRef": project_name, **spec},
    }
