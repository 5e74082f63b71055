"""Argo CD health checks (manifests/argocd/health-checks.yaml), run in a real Lua 5.1.

Argo CD runs these scripts in gopher-lua (Lua 5.1) with the object as the global `obj`;
lupa's Lua 5.1 runtime stands in for it.
"""

from __future__ import annotations

import cluster_schemas as cs
import pytest

lupa = pytest.importorskip("lupa", reason="lupa (Lua for Python) runs the health scripts")
lua51 = pytest.importorskip("lupa.lua51", reason="lupa was built without Lua 5.1")

(HEALTH_CM,) = cs.load_all(cs.ROOT / "manifests" / "argocd" / "health-checks.yaml")
KINDS = ["MLProject", "TrainingJob", "ModelVersion", "ModelDeployment", "DriftMonitor", "BatchPrediction"]


def health(kind: str, status: dict | None, *, generation: int = 2) -> tuple[str, str]:
    script = HEALTH_CM["data"][f"resource.customizations.health.mlkube.io_{kind}"]
    runtime = lua51.LuaRuntime()
    obj = {"apiVersion": "mlkube.io/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": generation}}
    if status is not None:
        obj["status"] = status
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    return result["status"], result["message"]


def ready(value: str, message: str = "", reason: str = "Reconciled") -> dict:
    return {"type": "Ready", "status": value, "reason": reason, "message": message}


def test_config_map_patches_argocd_cm_for_every_kind():
    from mlkube.api import kinds

    assert sorted(KINDS) == sorted(k.kind for k in kinds.ALL)
    assert HEALTH_CM["kind"] == "ConfigMap" and HEALTH_CM["metadata"]["name"] == "argocd-cm"
    assert sorted(HEALTH_CM["data"]) == sorted(f"resource.customizations.health.mlkube.io_{k}" for k in KINDS)
    assert cs.kubernetes_errors(HEALTH_CM) == []


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_observed_yet_is_progressing(kind):
    assert health(kind, None) == ("Progressing", "Waiting for the mlkube operator")


@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_status_is_progressing_whatever_it_says(kind):
    status = {"observedGeneration": 1, "phase": "Healthy", "conditions": [ready("True")]}
    assert health(kind, status, generation=2) == ("Progressing", "Waiting for the operator to observe generation 2")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Ready", "championVersion": 3, "conditions": [ready("True")]}, ("Healthy", "Champion version 3")),
        (
            {"phase": "Failed", "conditions": [ready("False", "spec.data.uri: bucket 'x' does not exist")]},
            ("Degraded", "spec.data.uri: bucket 'x' does not exist"),
        ),
        ({"phase": "Pending", "conditions": [ready("False", "No eligible model yet")]}, ("Progressing", "No eligible model yet")),
    ],
)
def test_mlproject(status, expected):
    assert health("MLProject", {"observedGeneration": 2, **status}) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Succeeded", "modelVersion": 4}, ("Healthy", "Model version 4")),
        ({"phase": "Failed", "message": "column 'churned' not found"}, ("Degraded", "column 'churned' not found")),
        ({"phase": "Running", "progress": {"trialsCompleted": 7, "trialsTotal": 30}}, ("Progressing", "Running: trial 7/30")),
        (
            {"phase": "Pending", "conditions": [ready("False", "Waiting for MLProject churn")]},
            ("Progressing", "Waiting for MLProject churn"),
        ),
    ],
)
def test_trainingjob(status, expected):
    assert health("TrainingJob", {"observedGeneration": 2, **status}) == expected


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Healthy", "Healthy"),
        ("Degraded", "Degraded"),
        ("RolledBack", "Degraded"),
        ("Paused", "Suspended"),
        ("Progressing", "Progressing"),
        ("Pending", "Progressing"),
    ],
)
def test_modeldeployment(phase, expected):
    status = {
        "observedGeneration": 2,
        "phase": phase,
        "conditions": [ready("True" if phase == "Healthy" else "False", f"{phase} now")],
    }
    assert health("ModelDeployment", status) == (expected, f"{phase} now")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Healthy"}, ("Healthy", "No drift")),
        ({"phase": "Drifting", "driftShare": 0.4}, ("Degraded", "Drift detected in 40% of features")),
        ({"phase": "InsufficientData", "samples": 12}, ("Healthy", "Insufficient data: 12 samples")),
        ({"phase": "Pending"}, ("Progressing", "Waiting for the mlkube operator")),
    ],
)
def test_driftmonitor(status, expected):
    assert health("DriftMonitor", {"observedGeneration": 2, **status}) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"phase": "Champion", "conditions": [ready("True", "Version 2 (Champion)")]},
            ("Healthy", "Champion: Version 2 (Champion)"),
        ),
        ({"phase": "Rejected", "conditions": [ready("True", "rejected")]}, ("Healthy", "Rejected: rejected")),
        (
            {"phase": "Eligible", "conditions": [ready("False", "alias production refused: not eligible")]},
            ("Degraded", "alias production refused: not eligible"),
        ),
    ],
)
def test_modelversion(status, expected):
    assert health("ModelVersion", {"observedGeneration": 2, **status}) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Succeeded", "rowsScored": 1000}, ("Healthy", "1000 rows scored")),
        ({"phase": "Failed", "message": "12% of rows failed"}, ("Degraded", "12% of rows failed")),
        ({"phase": "Running", "shards": {"done": 1, "total": 4}}, ("Progressing", "Running: 1/4 shards")),
    ],
)
def test_batchprediction(status, expected):
    assert health("BatchPrediction", {"observedGeneration": 2, **status}) == expected
