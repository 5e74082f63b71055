"""Helpers of the text and gradient boosting acceptance tests: waiting for trained versions and
for a ModelDeployment to serve, through kubectl."""

from __future__ import annotations

from typing import Any

from localcluster import LocalCluster, wait_for


def registered(cluster: LocalCluster, namespace: str, project: str, jobs: set[str]) -> dict[str, dict[str, Any]]:
    """The project's registry entries by TrainingJob once every job in ``jobs`` registered a version
    (fails with the TrainingJobs' messages when one fails)."""

    def done() -> dict[str, dict[str, Any]] | None:
        for job in jobs:
            status = cluster.status("trainingjob", job, namespace)
            assert status.get("phase") != "Failed", (job, status.get("message"), status)
        found = {m["trainingJob"]: m for m in cluster.status("mlproject", project, namespace).get("models", [])}
        return found if found.keys() >= jobs else None

    return wait_for(done, 300, f"TrainingJobs {', '.join(sorted(jobs))} to register", interval=1)


def serving(cluster: LocalCluster, name: str, namespace: str) -> str:
    """The router's URL once the ModelDeployment is Ready."""

    def ready() -> str | None:
        status = cluster.status("mdep", name, namespace)
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return status.get("url") if conditions.get("Ready") == "True" else None

    return wait_for(ready, 120, f"ModelDeployment {name} to serve", interval=1)
