"""Objects as the API returns them, for the dashboard's tests: project penguins with two
versions, a canary of version 2 over version 1, a drifting monitor, a training under way and
Events, some of them carrying markup in user-supplied text."""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.dashboard import store

NOW = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.UTC)
NS = "ml"
HOSTILE = "<script>alert(1)</script>"


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "creationTimestamp": "2026-12-05T11:00:00Z", "resourceVersion": "1", **extra}


def project() -> dict[str, Any]:
    return {
        "kind": "MLProject",
        "metadata": meta("penguins"),
        "spec": {"problem": {"primaryMetric": "f1"}, "goal": {"description": f"Identify species {HOSTILE}"}},
        "status": {"phase": "Ready", "championVersion": 1},
    }


def version(number: int, f1: float, *, card: bool = True) -> dict[str, Any]:
    status = {"phase": "Champion" if number == 1 else "Eligible", "primaryMetric": f"f1={f1:.4g}", "eligible": True}
    if card:
        status["cardUri"] = f"file:///models/v{number}/model_card.html"
    return {
        "kind": "ModelVersion",
        "metadata": meta(f"penguins-v{number}"),
        "spec": {
            "projectRef": "penguins",
            "version": number,
            "algorithm": "random_forest",
            "trigger": "manual",
            "metrics": {"test": {"f1": f1}, "validation": {"f1": f1 - 0.01}},
            "approval": {"state": "Pending"},
        },
        "status": status,
    }


def canary(percent: int = 25, verdict: str | None = "Passing") -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Progressing",
        "stableVersion": 1,
        "candidateVersion": 2,
        "currentStep": 0,
        "traffic": [
            {"version": 1, "role": "stable", "percent": 100 - percent},
            {"version": 2, "role": "canary", "percent": percent},
        ],
    }
    if verdict:
        status["analysis"] = {"verdict": verdict, "requests": 60, "errorRate": 0.0}
    return {
        "kind": "ModelDeployment",
        "metadata": meta("penguins-prod"),
        "spec": {"projectRef": "penguins", "model": {"track": "champion"}, "strategy": {"type": "Canary"}},
        "status": status,
    }


def monitor(at: str, *, share: float, bill: float, drifted: bool) -> dict[str, Any]:
    return {
        "kind": "DriftMonitor",
        "metadata": meta("penguins-drift"),
        "spec": {"deploymentRef": "penguins-prod"},
        "status": {
            "phase": "Drifting" if drifted else "Healthy",
            "modelVersion": 1,
            "lastCheckTime": at,
            "samples": 300,
            "driftShare": share,
            "features": [
                {"name": "bill_length_mm", "method": "ks", "score": bill, "threshold": 0.05, "drifted": drifted},
                {"name": HOSTILE, "method": "psi", "score": 0.01, "threshold": 0.2, "drifted": False},
            ],
            "reportUri": f"file:///reports/{at}.html",
        },
    }


def training() -> dict[str, Any]:
    return {
        "kind": "TrainingJob",
        "metadata": meta("retrain-1"),
        "spec": {"projectRef": "penguins"},
        "status": {
            "phase": "Running",
            "startTime": "2026-12-05T11:59:00Z",
            "progress": {"trialsCompleted": 2, "trialsTotal": 6, "stage": "tuning", "bestScore": 0.97},
        },
    }


def event(name: str, reason: str, message: str, at: str, kind: str = "ModelDeployment", obj: str = "penguins-prod") -> dict:
    return {
        "kind": "Event",
        "metadata": meta(name),
        "involvedObject": {"kind": kind, "name": obj, "namespace": NS},
        "reason": reason,
        "message": message,
        "type": "Normal",
        "lastTimestamp": at,
    }


def filled() -> store.Store:
    """A store after a list of everything and a few watch events (the canary moving to 50%, a second analysis)."""
    data = store.Store()
    data.replace("mlprojects", [project()], now=NOW)
    data.replace("modelversions", [version(2, 0.9851), version(1, 0.9814)], now=NOW)
    data.replace("modeldeployments", [canary(25)], now=NOW)
    data.replace("driftmonitors", [monitor("2026-12-05T11:50:00Z", share=0.0, bill=0.5, drifted=False)], now=NOW)
    data.replace("trainingjobs", [training()], now=NOW)
    data.replace(
        "events",
        [
            event("e1", "CanaryStarted", "version 2 takes 25%", "2026-12-05T11:55:00Z"),
            event("e2", "DriftDetected", f"drift in {HOSTILE}", "2026-12-05T11:59:00Z", "DriftMonitor", "penguins-drift"),
            event("e3", "Other", "someone else's", "2026-12-05T11:59:30Z", "ModelDeployment", "other-prod"),
        ],
        now=NOW,
    )
    later = NOW + datetime.timedelta(seconds=30)
    data.apply("modeldeployments", "MODIFIED", canary(50), now=later)
    data.apply("driftmonitors", "MODIFIED", monitor("2026-12-05T11:59:00Z", share=0.5, bill=1e-6, drifted=True), now=later)
    return data
