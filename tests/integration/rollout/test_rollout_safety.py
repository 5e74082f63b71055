"""Issue 7 acceptance, safety: a request missing a feature gets a 400 naming it; a version whose
artifact was modified after training is refused at load, its InferenceService never becomes
Ready, and the stable version serves every request meanwhile."""

from __future__ import annotations

import collections

import pytest
from rollout_helpers import Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 10, "maxErrorRate": 0.05, "maxLatencyP99": "5s"}


def test_a_request_missing_a_feature_is_answered_400_naming_it(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    name = deploy(versions["good"], {"type": "Direct", "analysis": ANALYSIS})
    client = Client(serving(cluster, name, namespace), name)
    row = penguin_rows(penguins_csv)[0]
    missing = client.predict({k: v for k, v in row.items() if k != "flipper_length_mm"})
    assert missing.status_code == 400 and "flipper_length_mm" in missing.json()["error"], missing.text
    assert missing.headers["x-mlkube-version"] == str(versions["good"]) and missing.headers["x-request-id"]
    assert client.predict(row).status_code == 200
    client.close()


def test_a_tampered_version_is_refused_at_load_and_the_stable_keeps_serving(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    stable, tampered = str(versions["good"]), str(versions["tampered"])
    name = deploy(
        versions["good"],
        {"type": "Canary", "analysis": ANALYSIS, "onFailure": "pause", "canary": {"steps": [{"weight": 50, "pause": "1m"}]}},
    )
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)[:24]
    roll_to(cluster, name, namespace, versions["tampered"])
    answers, readiness = [], set()

    def paused():
        answers.extend(client.burst(rows))
        isvc = cluster.status("isvc", f"{name}-v{tampered}", namespace)
        readiness.update(c["status"] for c in isvc.get("conditions", []) if c["type"] == "Ready")
        return cluster.mdep_status(name, namespace).get("phase") == "Paused"

    wait_for(paused, 120, "the rollout to stop on the refused version", interval=0)
    isvc = cluster.status("isvc", f"{name}-v{tampered}", namespace)
    failure = isvc["modelStatus"]["lastFailureInfo"]["message"]
    assert "integrity" in failure and "model.joblib" in failure, failure
    assert readiness == {"False"} and {c["type"]: c["status"] for c in isvc["conditions"]}["Ready"] == "False"
    status = cluster.mdep_status(name, namespace)
    assert (
        status["message"].startswith(f"Version {tampered}: version {tampered} cannot load")
        and "model.joblib" in status["message"]
    )
    assert status["traffic"] == [
        {"version": versions["good"], "role": "stable", "percent": 100},
        {"version": versions["tampered"], "role": "canary", "percent": 0},
    ]
    answers += client.burst(rows)
    assert collections.Counter(answers) == {(stable, 200): len(answers)}, collections.Counter(answers)

    cluster.kubectl("annotate", "mdep", name, "-n", namespace, "mlkube.io/action=abort")
    wait_for(lambda: cluster.mdep_status(name, namespace).get("phase") == "RolledBack", 30, "the abort")
    wait_for(
        lambda: cluster.get("isvc", f"{name}-v{tampered}", namespace) is None, 30, "the refused version's InferenceService to go"
    )
    assert "mlkube.io/action" not in (cluster.get("mdep", name, namespace)["metadata"].get("annotations") or {})
    assert {"RolloutPaused", "RolledBack"} <= set(cluster.events(name, namespace))
    assert {r for r in client.burst(rows)} == {(stable, 200)}
    client.close()


def test_deleting_a_model_deployment_removes_what_it_created(cluster, project, deploy):
    namespace, versions = project["namespace"], project["versions"]
    name = deploy(versions["good"], {"type": "Direct", "analysis": ANALYSIS})
    serving(cluster, name, namespace)
    children = [
        ("isvc", f"{name}-v{versions['good']}"),
        ("deployment", f"{name}-router"),
        ("service", f"{name}-router"),
        ("configmap", f"{name}-router"),
    ]
    assert all(cluster.get(kind, child, namespace) for kind, child in children)
    cluster.kubectl("delete", "mdep", name, "-n", namespace)
    wait_for(lambda: not any(cluster.get(kind, child, namespace) for kind, child in children), 60, "the children to go")
    wait_for(lambda: not cluster.items_with_prefix("pods", f"{name}-", namespace), 60, "the pods to stop")
