"""Issue 6 acceptance on the embedded control plane: training, the registry and the champion,
clear failures, an operator killed mid-training, and scheduled retraining. Real processes, kubectl."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time

from lifecycle_helpers import project, trainingjob, wait_for

ONE_FEATURE = {"featureSelection": {"method": "kbest", "k": 1}}  # f1 about 0.71 on penguins
ALL_FEATURES = {"featureSelection": {"method": "none"}}  # f1 about 1.0


def finished(cluster, name, namespace, timeout=240):
    def done():
        tj = cluster.get("trainingjob", name, namespace)
        status = (tj or {}).get("status") or {}
        return status if status.get("phase") == "Failed" or status.get("modelVersion") is not None else None

    return wait_for(done, timeout, f"TrainingJob {name} to finish", interval=0.5)


def registry(cluster, namespace, name="penguins"):
    status = cluster.get("mlproject", name, namespace)["status"]
    return status.get("championVersion"), {m["version"]: m for m in status.get("models", [])}


def test_runs_register_versions_and_the_better_one_becomes_champion(cluster, namespace, penguins_csv, tmp_path):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models"), namespace)
    # Random forests (about 0.5 s a trial here) so that the search lasts several of the operator's
    # 1 s progress reads even on a loaded machine; logistic regression finished between two reads.
    cluster.apply(
        trainingjob(
            "first",
            "penguins",
            preprocessing=ONE_FEATURE,
            algorithms=[{"name": "random_forest"}],
            tuning={"strategy": "random", "maxTrials": 8, "cvFolds": 3},
        ),
        namespace,
    )
    phases, progress_seen = [], False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        table = cluster.kubectl("get", "tj", "first", "-n", namespace).stdout.splitlines()
        header, row = table[0].split(), table[1].split()
        assert header[:6] == ["NAME", "PROJECT", "PHASE", "PROGRESS", "BEST", "VERSION"]
        phase = row[2] if len(row) > 2 else ""
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
        progress_seen |= phase == "Running" and "/" in table[1]
        if len(row) >= 6 and row[5].isdigit():
            break
        time.sleep(0.2)
    assert phases[-1] == "Succeeded" and "Running" in phases, phases
    assert progress_seen, "kubectl get tj showed no progress while running"
    status = finished(cluster, "first", namespace)
    assert status["metrics"]["test"]["f1"] < 0.9 and status["successCriteriaMet"] is True
    assert status["modelVersion"] == 1 and status["artifactUri"].startswith("file://")
    assert registry(cluster, namespace)[0] == 1
    job = cluster.get("job", status["jobName"], namespace)
    assert status["lineage"] == {
        "data": [
            {
                "uri": f"file://{penguins_csv}",
                "digest": "sha256:" + hashlib.sha256(penguins_csv.read_bytes()).hexdigest(),
                "rows": 344,
            }
        ],
        "image": job["spec"]["template"]["spec"]["containers"][0]["image"],
        "mlkubeVersion": importlib.metadata.version("mlkube"),
    }

    cluster.apply(trainingjob("better", "penguins", preprocessing=ALL_FEATURES), namespace)
    better = finished(cluster, "better", namespace)
    assert better.get("modelVersion") == 2, json.dumps(better)
    wait_for(lambda: registry(cluster, namespace)[0] == 2, 30, "version 2 to become champion")

    cluster.apply(trainingjob("worse", "penguins", preprocessing=ONE_FEATURE), namespace)
    assert finished(cluster, "worse", namespace)["modelVersion"] == 3
    champion, models = registry(cluster, namespace)
    assert champion == 2 and sorted(models) == [1, 2, 3] and models[3]["eligible"]
    events = cluster.kubectl("describe", "tj", "better", "-n", namespace).stdout
    assert "JobCreated" in events and "Registered" in events


def test_missing_target_column_fails_clearly_and_registers_nothing(cluster, namespace, penguins_csv, tmp_path):
    body = project("broken", penguins_csv, tmp_path / "models")
    body["spec"]["problem"]["target"] = "churned"
    cluster.apply(body, namespace)
    cluster.apply(trainingjob("no-target", "broken"), namespace)
    status = finished(cluster, "no-target", namespace)
    assert status["phase"] == "Failed"
    assert "churned" in status["message"] and "Traceback" not in status["message"]
    assert not (cluster.get("mlproject", "broken", namespace)["status"].get("models"))
    assert not list((tmp_path / "models").rglob("MANIFEST.json"))


def test_unknown_project_waits_with_a_reason_and_creates_no_job(cluster, namespace):
    cluster.apply(trainingjob("orphan", "nope"), namespace)

    def reported():
        status = (cluster.get("trainingjob", "orphan", namespace) or {}).get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
        return ready if ready and ready["reason"] == "ProjectNotFound" else None

    ready = wait_for(reported, 30, "a ProjectNotFound condition")
    assert "MLProject 'nope' does not exist" in ready["message"]
    assert cluster.items("jobs", namespace) == []


def test_operator_killed_mid_training_converges_to_one_job_and_one_version(cluster, namespace, penguins_csv, tmp_path):
    slow = {"tuning": {"strategy": "random", "maxTrials": 6, "cvFolds": 3}, "algorithms": [{"name": "random_forest"}]}
    cluster.apply(project("restart", penguins_csv, tmp_path / "models"), namespace)
    cluster.apply(trainingjob("survivor", "restart", **slow), namespace)
    wait_for(
        lambda: ((cluster.get("trainingjob", "survivor", namespace) or {}).get("status") or {}).get("phase") == "Running",
        120,
        "the run to start",
    )
    cluster.operator.kill()
    time.sleep(2)
    cluster.operator.start()
    status = finished(cluster, "survivor", namespace)
    assert status["modelVersion"] == 1
    assert len(cluster.items("jobs", namespace)) == 1
    assert [m["version"] for m in cluster.get("mlproject", "restart", namespace)["status"]["models"]] == [1]


def test_schedule_every_minute_starts_one_run_per_tick(cluster, namespace, penguins_csv, tmp_path):
    cluster.apply(project("cron", penguins_csv, tmp_path / "models", retraining={"schedule": "* * * * *"}), namespace)

    def scheduled_runs():
        return [tj["metadata"]["name"] for tj in cluster.items("trainingjobs", namespace)]

    first = wait_for(scheduled_runs, 75, "the first scheduled run", interval=1)
    assert len(first) == 1 and first[0].startswith("cron-sched-")
    cluster.operator.kill()  # a restart must not start the same tick again
    cluster.operator.start()
    second = wait_for(lambda: len(scheduled_runs()) >= 2 and scheduled_runs(), 75, "the next tick", interval=1)
    assert len(set(second)) == len(second) == 2
    status = cluster.get("mlproject", "cron", namespace)["status"]
    assert status["nextScheduledRetrain"] > status["lastScheduleTime"]
    # Both runs are recorded by their creation times, so the history limits cannot erase them from
    # the retraining budget.
    created = sorted(tj["metadata"]["creationTimestamp"] for tj in cluster.items("trainingjobs", namespace))
    recorded = wait_for(
        lambda: (s := cluster.get("mlproject", "cron", namespace)["status"]).get("retrainTimes") == created and s,
        30,
        "status.retrainTimes to record both runs",
        interval=1,
    )
    assert recorded["lastRetrainTime"] == created[-1]
