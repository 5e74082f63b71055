"""Issue 19 acceptance on the embedded control plane: `tuning.workers: 2` runs one Indexed Job of
two trial pods sharing one Optuna study (the operator's default SQLite file, or PostgreSQL
through a tuning.storage Secret); the version equals one pod's for a seeded grid search; a
SIGKILLed trial pod costs its trial, which is retried and counted once. Real trainer pods, kubectl."""

from __future__ import annotations

import base64
import json
import signal
from typing import Any

import optuna
import psutil

from localcluster import wait_for
from mlkube.local import up

# A grid of 8 random forests (each trial a couple of seconds of 2-fold cross-validation), so both
# pods take trials and a pod can be killed in the middle of one.
GRID = {"strategy": "grid", "maxTrials": 8, "cvFolds": 2, "earlyStopping": False}
FOREST = [
    {"name": "random_forest", "params": {"n_estimators": [120], "max_depth": [2, 3, 4, 5, 6, 7, 8, 9], "min_samples_leaf": [1]}}
]


def project(data, models) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": "penguins"},
        "spec": {
            "goal": {"description": "Identify penguin species", "type": "Process"},
            "problem": {"task": "classification", "target": "species", "primaryMetric": "f1", "features": {"exclude": ["year"]}},
            "data": {"uri": f"file://{data}"},
            "storage": {"uri": f"file://{models}"},
            "training": {"template": {"algorithms": FOREST, "tuning": GRID}},
        },
    }


def trainingjob(name: str, **tuning: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {"projectRef": "penguins", "tuning": tuning},
    }


def finished(cluster, name: str, namespace: str, timeout: float = 150) -> dict[str, Any]:
    def done():
        status = (cluster.get("trainingjob", name, namespace) or {}).get("status") or {}
        return status if status.get("phase") == "Failed" or status.get("modelVersion") is not None else None

    return wait_for(done, timeout, f"TrainingJob {name} to finish", interval=0.5)


def study_of(cluster, name: str, namespace: str, url: str) -> optuna.Study:
    uid = cluster.get("trainingjob", name, namespace)["metadata"]["uid"]
    return optuna.load_study(study_name=f"{namespace}/{name}/{uid}", storage=url)


def recorded(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if "mlkube.trial" in t.user_attrs and t.state.is_finished() and t.state.name != "FAIL"]


def version(status: dict[str, Any]) -> tuple:
    return status["bestAlgorithm"], status["bestParams"], status["metrics"]


def test_two_trial_pods_share_one_study_and_write_the_one_pod_version(cluster, namespace, penguins_csv, tmp_path):
    cluster.apply(project(penguins_csv, tmp_path / "models"), namespace)
    cluster.apply(trainingjob("one", **GRID), namespace)
    cluster.apply(trainingjob("two", **GRID, workers=2), namespace)

    two, one = finished(cluster, "two", namespace), finished(cluster, "one", namespace)
    assert two["phase"] == one["phase"] == "Succeeded", (two.get("conditions"), one.get("conditions"))
    assert version(two) == version(one)
    assert two["progress"]["trialsCompleted"] == two["progress"]["trialsTotal"] == 8
    assert two["progress"]["workers"] == 2

    job = cluster.get("job", two["jobName"], namespace)
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pods = cluster.items("pod", namespace, "-l", f"job-name={two['jobName']}")
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1"] and all(p["status"]["phase"] == "Succeeded" for p in pods)

    trials = recorded(study_of(cluster, "two", namespace, up.study_storage(cluster.state)))
    assert len(trials) == 8
    assert sorted(t.params["random_forest.max_depth"] for t in trials) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert {t.user_attrs["mlkube.pod"] for t in trials} == {0, 1}, "both trial pods ran trials"


def test_a_killed_trial_pod_costs_one_trial_that_is_retried_and_counted_once(cluster, namespace, penguins_csv, tmp_path):
    cluster.apply(project(penguins_csv, tmp_path / "models"), namespace)
    cluster.apply(trainingjob("kill", **GRID, workers=2), namespace)
    url = up.study_storage(cluster.state)

    def running_on_pod_1():
        try:
            study = study_of(cluster, "kill", namespace, url)
        except KeyError:
            return None
        return next((t for t in study.get_trials() if t.state.name == "RUNNING" and t.user_attrs.get("mlkube.pod") == 1), None)

    lost = wait_for(running_on_pod_1, 90, "trial pod 1 to run a trial", interval=0.2)
    processes = cluster.processes_of(f"{cluster.get('trainingjob', 'kill', namespace)['status']['jobName']}-1-")
    assert processes
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass

    status = finished(cluster, "kill", namespace, timeout=180)
    assert status["phase"] == "Succeeded", status.get("conditions")
    assert status["progress"]["trialsCompleted"] == 8
    study = study_of(cluster, "kill", namespace, url)
    assert study.trials[lost.number].state.name == "FAIL" and "mlkube.trial" not in study.trials[lost.number].user_attrs
    retries = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == lost.number]
    assert [t.state.name for t in retries] == ["COMPLETE"]
    assert retries[0].params == lost.params
    trials = recorded(study)
    assert sorted(t.params["random_forest.max_depth"] for t in trials) == [2, 3, 4, 5, 6, 7, 8, 9], "each point once"


def test_trial_pods_share_a_study_in_postgresql_named_by_a_secret(cluster, namespace, penguins_csv, tmp_path, postgres):
    cluster.apply(project(penguins_csv, tmp_path / "models"), namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "studies"},
        "data": {"url": base64.b64encode(postgres.encode()).decode()},
    }
    cluster.apply(secret, namespace)
    cluster.apply(trainingjob("pg", **GRID, workers=2, storage={"secretRef": {"name": "studies", "key": "url"}}), namespace)

    status = finished(cluster, "pg", namespace)
    assert status["phase"] == "Succeeded", status.get("conditions")
    job = cluster.get("job", status["jobName"], namespace)
    assert postgres not in json.dumps(job) and postgres not in json.dumps(cluster.get("trainingjob", "pg", namespace))
    trials = recorded(study_of(cluster, "pg", namespace, postgres.replace("postgresql://", "postgresql+psycopg://")))
    assert len(trials) == 8 and {t.user_attrs["mlkube.pod"] for t in trials} == {0, 1}
