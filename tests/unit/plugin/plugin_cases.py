"""Objects as the API returns them, for the plugin's rendering tests: project penguins during a
canary of version 3 over version 2, with a drifting monitor and a training under way."""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.plugin import tree

NOW = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.UTC)
NAMESPACE = "ml"


def meta(name: str, created: str = "2026-12-05T11:00:00Z") -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "creationTimestamp": created}


def project(champion: int | None = 2, policy: str = "manual") -> dict[str, Any]:
    status = {"phase": "Ready", "versions": 3, "latestVersion": 3}
    if champion is not None:
        status["championVersion"] = champion
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": meta("penguins", "2026-12-04T12:00:00Z"),
        "spec": {"promotion": {"policy": policy}},
        "status": status,
    }


def version(
    number: int, metric: str, *, phase: str, eligible: bool = True, approval: str = "Pending", **status: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": meta(f"penguins-v{number}", f"2026-12-05T1{number}:00:00Z" if number < 2 else "2026-12-05T11:30:00Z"),
        "spec": {"projectRef": "penguins", "version": number, "approval": {"state": approval}},
        "status": {"phase": phase, "primaryMetric": metric, "eligible": eligible, "champion": phase == "Champion", **status},
    }


def canary(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": meta("penguins-prod", "2026-12-05T11:58:30Z"),
        "spec": {
            "projectRef": "penguins",
            "model": {"track": "champion"},
            "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 10}, {"weight": 50}]}},
        },
        "status": {
            "phase": "Progressing",
            "stableVersion": 2,
            "candidateVersion": 3,
            "currentStep": 0,
            "traffic": [{"version": 2, "role": "stable", "percent": 90}, {"version": 3, "role": "canary", "percent": 10}],
            "trafficSummary": "v2=90,v3=10",
            "analysis": {"requests": 120, "errorRate": 0.0, "verdict": "Passing"},
            **status,
        },
    }


def monitor() -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": meta("penguins-drift"),
        "spec": {"deploymentRef": "penguins-prod"},
        "status": {
            "phase": "Drifting",
            "modelVersion": 2,
            "driftShare": 0.333,
            "features": [
                {"name": "bill_length_mm", "method": "ks", "score": 0.0, "drifted": True},
                {"name": "island", "method": "chi2", "score": 0.4, "drifted": False},
                {"name": "bill_depth_mm", "method": "ks", "score": 0.01, "drifted": True},
            ],
            "reportUri": "file:///var/mlkube/reports/ml/penguins-drift/20261205T115900Z.html",
        },
    }


def training(name: str, phase: str | None, *, done: int = 0, total: int = 0, started: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if total:
        status["progress"] = {"trialsCompleted": done, "trialsTotal": total, "bestScore": 0.97123, "stage": "tuning"}
    if started:
        status["startTime"] = started
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": meta(name, "2026-12-05T11:55:00Z"),
        "spec": {"projectRef": "penguins"},
        "status": status,
    }


def view() -> tree.View:
    return tree.View(
        project=project(),
        versions=[
            version(1, "f1=0.7101", phase="Registered", eligible=False, failedCriteria=["f1 >= 0.95 (measured 0.7101)"]),
            version(3, "f1=0.9851", phase="Eligible", approval="Approved", servedBy=["penguins-prod"]),
            version(2, "f1=0.9814", phase="Champion", approval="Approved", servedBy=["penguins-prod"], aliases=["production"]),
        ],
        deployments=[canary()],
        monitors=[monitor()],
        trainings=[
            training("nightly", "Running", done=5, total=20, started="2026-12-05T11:58:00Z"),
            training("first", "Succeeded"),
        ],
    )
