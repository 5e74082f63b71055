"""ModelDeployments, their project and what KServe and the router report, as plain data for the
pure tests of the ModelDeployment plan."""

from __future__ import annotations

import datetime

from mlkube.api import kinds
from mlkube.api import project as project_api
from mlkube.control.plans import deployment as plan_deployment

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
STAMP = "2026-01-01T00:00:00Z"
IMAGE = "registry.example/mlkube:test"
ROUTER_URL = "http://127.1.0.1:8080"

PROJECT = kinds.MLPROJECT.parse_spec(
    {
        "goal": {"description": "keep customers", "type": "Growth"},
        "problem": {"task": "classification", "target": "churned", "primaryMetric": "f1"},
        "data": {"uri": "file:///d.csv"},
        "storage": {"uri": "s3://models/churn/", "endpoint": "http://minio:9000", "credentialsSecret": "s3-creds"},
    }
)


def registry(*versions: int, champion: int | None = 1) -> project_api.MLProjectStatus:
    return project_api.MLProjectStatus(
        champion_version=champion,
        models=[
            project_api.ModelEntry(
                version=v,
                training_job=f"run-{v}",
                created_at=STAMP,
                artifact_uri=f"s3://models/churn/v{v}/",
                digest=f"sha256:{v}",
            )
            for v in versions or (1, 2)
        ],
    )


def mdep(*, status: dict | None = None, annotations: dict | None = None, **spec) -> dict:
    body = {
        "projectRef": "churn",
        "model": {"track": "champion"},
        "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "1m"}]}, "analysis": {"minRequests": 20}},
        **spec,
    }
    obj = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "churn-prod", "namespace": "ml", "uid": "u-1", "generation": 3, "annotations": annotations or {}},
        "spec": body,
    }
    if status is not None:
        obj["status"] = status
    return obj


def isvc(version: int, *, ready: bool = True, failure: dict | None = None, message: str = "") -> dict:
    model_status = {"states": {"targetModelState": "FailedToLoad" if failure else "Loaded"}}
    if failure:
        model_status["lastFailureInfo"] = failure
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": f"churn-prod-v{version}", "namespace": "ml", "labels": {"mlkube.io/model-version": str(version)}},
        "status": {
            "conditions": [{"type": "Ready", "status": str(ready), "message": message}],
            "modelStatus": model_status,
            "address": {"url": f"http://127.1.0.{10 + version}"},
        },
    }


ROUTER_SERVICE = {"spec": {"clusterIP": "127.1.0.1", "ports": [{"port": 8080}]}}
ROUTER_READY = {"status": {"availableReplicas": 1}}


def counters(requests: int, *, errors: int = 0, labeled: int = 0, correct: int = 0) -> dict:
    return {
        "requests": requests,
        "serverErrors": errors,
        "latency": {"buckets": [{"le": 5, "count": requests}, {"le": "+Inf", "count": requests}]},
        "agreement": {"compared": requests, "agreed": requests},
        "quality": {"labeled": labeled, "correct": correct},
    }


def stats(**versions: dict) -> dict:
    """Router counters: ``stats(v1=counters(...), v2=...)``."""
    return {"startTime": 1.0, "versions": {k.removeprefix("v"): v for k, v in versions.items()}}


def observed(**changes) -> plan_deployment.Observed:
    """A project with versions 1 and 2 (champion 1), version 1 Ready, the router up."""
    defaults = {
        "project": PROJECT,
        "registry": registry(),
        "isvcs": {1: isvc(1)},
        "router_service": ROUTER_SERVICE,
        "router_deployment": ROUTER_READY,
        "stats": None,
    }
    return plan_deployment.Observed(**{**defaults, **changes})


def plan(obj: dict, seen: plan_deployment.Observed, *, at: float = 0):
    return plan_deployment.plan(obj, seen, now=T0 + datetime.timedelta(seconds=at), image=IMAGE)


def stored(obj: dict, result) -> dict:
    """``obj`` as the API server returns it once the plan's status is written."""
    return {**obj, "status": result.status.wire()}


def ready(status: dict) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"], found["message"]
