"""Faults in the lifecycle on a whole local cluster (`mlkube local up --no-operator` plus the
operator as its own process), with the project's models in a real S3 endpoint (moto's server):

- SIGKILL of a trainer process mid-training: a Job with a retry left converges to one TrainingJob,
  at most ``retries + 1`` pods and exactly one registered version; one with none left fails
  clearly and registers nothing.
- SIGKILL of the operator at seeded random points of a Canary rollout (three times): the rollout
  converges, with no duplicate InferenceService, router, Job, TrainingJob or version, no decision
  posted twice, and every prediction answered meanwhile.
- The S3 endpoint down while a candidate is rolled out: the stable keeps answering every
  prediction, the candidate (which cannot fetch its model) takes none, and the rollout ends with a
  message naming the storage failure; after the endpoint is back the deployment serves on.

Each test prints what it measured (run with ``-s`` to see it).
"""

from __future__ import annotations

import collections
import json
import pathlib
import random
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from faults_helpers import (
    FaultCluster,
    S3Endpoint,
    Traffic,
    lifecycle_helpers,
    localcluster,
    rollout_helpers,
    s3_project,
    storage_secret,
    wait_for,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

PROJECT = "penguins"
SECRET = "models-s3"
SEED = 14  # the operator's kill points are random, but the same on every run
SLOW_SEARCH = {"algorithms": [{"name": "random_forest"}], "tuning": {"strategy": "random", "maxTrials": 4, "cvFolds": 3}}
ANALYSIS = {"interval": "2s", "minRequests": 10, "maxErrorRate": 0.05, "maxLatencyP99": "5s", "minAgreement": 0.8}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    endpoint = S3Endpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    with localcluster.running(FaultCluster(tmp_path_factory.mktemp("cluster"))) as local:
        yield local


@pytest.fixture(scope="module")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def project(cluster: FaultCluster, s3: S3Endpoint, penguins_csv: pathlib.Path) -> dict[str, Any]:
    """A namespace with the penguins project, its models in a bucket of its own."""
    namespace, bucket = f"faults-{uuid.uuid4().hex[:6]}", f"models-{uuid.uuid4().hex[:8]}"
    s3.client().create_bucket(Bucket=bucket)
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(storage_secret(SECRET, s3), namespace)
    cluster.apply(s3_project(PROJECT, penguins_csv, uri=f"s3://{bucket}/penguins", endpoint=s3, secret=SECRET), namespace)
    return {"namespace": namespace, "bucket": bucket}


@pytest.fixture(scope="module")
def versions(cluster: FaultCluster, project: dict[str, Any]) -> dict[str, int]:
    """Two trained versions to roll from one to the other: {"stable": n, "candidate": m}."""
    namespace = project["namespace"]
    trainings = {"stable": 1, "candidate": 2}  # maxTrials: two real trainings that mostly agree
    for name, trials in trainings.items():
        tuning = {"strategy": "random", "cvFolds": 2, "maxTrials": trials}
        cluster.apply(lifecycle_helpers.trainingjob(f"v-{name}", PROJECT, tuning=tuning), namespace)
    found = wait_for(
        lambda: (r := rollout_helpers.registry(cluster, namespace, PROJECT)).keys() >= {f"v-{n}" for n in trainings} and r,
        240,
        "the two trainings to register their versions",
        interval=1,
    )
    return {name: found[f"v-{name}"]["version"] for name in trainings}


def training_status(cluster: FaultCluster, name: str, namespace: str) -> dict[str, Any]:
    return cluster.status("trainingjob", name, namespace)


def finished(cluster: FaultCluster, name: str, namespace: str, timeout: float = 180) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        # Succeeded is final once the registry has given the run its version (a separate pass).
        status = training_status(cluster, name, namespace)
        finished = status.get("phase") == "Failed" or (status.get("phase") == "Succeeded" and "modelVersion" in status)
        return status if finished else None

    return wait_for(done, timeout, f"TrainingJob {name} to finish", interval=0.5)


def kill_trainer_mid_training(cluster: FaultCluster, name: str, namespace: str) -> str:
    """SIGKILL the trainer process of TrainingJob ``name`` once it reports a stage of its search;
    return the name of the pod it ran for."""
    job = f"{name}-train"
    process = wait_for(lambda: next(iter(cluster.trainer_processes(job)), None), 120, f"the trainer process of {job}")
    wait_for(
        lambda: (training_status(cluster, name, namespace).get("progress") or {}).get("stage"),
        60,
        f"TrainingJob {name} to report progress",
        interval=0.2,
    )
    try:
        pod = process.environ()["HOSTNAME"]
        process.send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        pytest.fail(f"the trainer of {name} finished before it could be killed: make SLOW_SEARCH slower")
    return pod


def exit_code(pod: dict[str, Any]) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated.get("exitCode")
    return None


@pytest.fixture(scope="module")
def killed_runs(cluster: FaultCluster, project: dict[str, Any], s3: S3Endpoint) -> dict[str, Any]:
    """Two TrainingJobs whose first trainer was SIGKILLed mid-search, run to their end: ``retried``
    (one retry left) and ``exhausted`` (none). What each left behind, by run name."""
    namespace, bucket = project["namespace"], project["bucket"]
    runs = {"retried": 1, "exhausted": 0}  # spec.retries
    for name, retries in runs.items():
        cluster.apply(lifecycle_helpers.trainingjob(name, PROJECT, retries=retries, **SLOW_SEARCH), namespace)
    killed = {name: kill_trainer_mid_training(cluster, name, namespace) for name in runs}
    found: dict[str, Any] = {"killed": killed, "retries": runs}
    for name in runs:
        uid = cluster.get("trainingjob", name, namespace)["metadata"]["uid"]
        found[name] = {
            "status": finished(cluster, name, namespace),
            "pods": cluster.pods_of_job(f"{name}-train", namespace),
            "jobs": cluster.items("jobs", namespace, "-l", f"mlkube.io/trainingjob={name}"),
            "manifests": [k for k in s3.keys(bucket, f"penguins/runs/{name}-{uid[:8]}/") if k.endswith("MANIFEST.json")],
        }
    models = cluster.status("mlproject", PROJECT, namespace).get("models", [])
    found["versions"] = [(m["trainingJob"], m["version"]) for m in models if m["trainingJob"] in runs]
    print(
        "\ntrainer kills:",
        json.dumps(
            {
                "kills": len(killed),
                "pods": {n: [(p["metadata"]["name"], exit_code(p)) for p in found[n]["pods"]] for n in runs},
                "jobs": {n: len(found[n]["jobs"]) for n in runs},
                "versions": found["versions"],
                "manifests in S3": {n: len(found[n]["manifests"]) for n in runs},
                "status": {n: {k: found[n]["status"].get(k) for k in ("phase", "message", "conditions")} for n in runs},
            }
        ),
    )
    return found


def test_a_killed_trainer_with_a_retry_left_registers_exactly_one_version(killed_runs):
    retried = killed_runs["retried"]
    codes = {p["metadata"]["name"]: exit_code(p) for p in retried["pods"]}
    assert codes[killed_runs["killed"]["retried"]] == 128 + signal.SIGKILL, codes
    assert len(retried["pods"]) <= killed_runs["retries"]["retried"] + 1 and len(retried["jobs"]) == 1
    status = retried["status"]
    assert status["phase"] == "Succeeded" and status["modelVersion"] is not None, status
    assert [v for v in killed_runs["versions"] if v[0] == "retried"] == [("retried", status["modelVersion"])]
    assert len(retried["manifests"]) == 1


def test_a_killed_trainer_with_no_retry_left_fails_and_registers_nothing(killed_runs):
    exhausted = killed_runs["exhausted"]
    assert [exit_code(p) for p in exhausted["pods"]] == [128 + signal.SIGKILL] and len(exhausted["jobs"]) == 1
    assert exhausted["status"]["phase"] == "Failed" and exhausted["status"].get("modelVersion") is None
    assert [v for v in killed_runs["versions"] if v[0] == "exhausted"] == [] and exhausted["manifests"] == []


def test_a_killed_trainer_fails_with_a_message_that_says_so(killed_runs):
    """The Failed status of a run whose trainer was killed says so (not its last progress line)."""
    status = killed_runs["exhausted"]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    for message in (status["message"], ready["message"]):
        assert "MLKUBE_PROGRESS" not in message and "killed" in message.lower() and "137" in message, message


def decisions(cluster: FaultCluster, name: str, namespace: str) -> collections.Counter:
    """How many times each (reason, message) Event about ``name`` was posted."""
    return collections.Counter(
        (e["reason"], e.get("message", ""))
        for e in cluster.items("events", namespace)
        if e["involvedObject"]["name"] == name
        for _ in range(e.get("count") or 1)
    )


def deploy(cluster: FaultCluster, namespace: str, version: int, strategy: dict[str, Any]) -> str:
    name = f"pg-{uuid.uuid4().hex[:5]}"
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"projectRef": PROJECT, "model": {"version": version}, "strategy": strategy, "logging": {"enabled": False}},
        },
        namespace,
    )
    return name


def settled(cluster: FaultCluster, name: str, namespace: str, timeout: float) -> dict[str, Any]:
    """The ModelDeployment's status once its rollout ended (Healthy with no candidate, or RolledBack)."""

    def done() -> dict[str, Any] | None:
        status = cluster.mdep_status(name, namespace)
        ended = status.get("phase") in ("Healthy", "RolledBack") and status.get("candidateVersion") is None
        return status if ended else None

    return wait_for(done, timeout, f"the rollout of {name} to end", interval=0.5)


def inventory(cluster: FaultCluster, name: str, namespace: str) -> dict[str, Any]:
    """What exists that a duplicated decision would multiply."""
    isvcs = cluster.owned("inferenceservices", name, namespace)
    return {
        "isvc_versions": sorted(i["metadata"]["labels"]["mlkube.io/model-version"] for i in isvcs),
        "routers": len(cluster.owned("deployments", name, namespace)),
        "jobs": len(cluster.items("jobs", namespace)),
        "trainingjobs": len(cluster.items("trainingjobs", namespace)),
        "versions": sorted(m["version"] for m in cluster.status("mlproject", PROJECT, namespace).get("models", [])),
    }


def test_operator_killed_at_random_points_of_a_canary_rollout_converges_once(cluster, project, versions, penguins_csv):
    namespace, stable, candidate = project["namespace"], versions["stable"], versions["candidate"]
    strategy = {
        "type": "Canary",
        "analysis": ANALYSIS,
        "canary": {"steps": [{"weight": 25, "pause": "4s"}, {"weight": 50, "pause": "4s"}]},
    }
    name = deploy(cluster, namespace, stable, strategy)
    url = rollout_helpers.serving(cluster, name, namespace)
    before = inventory(cluster, name, namespace)
    rng = random.Random(SEED)
    kills, answered_while_down = [], 0
    with Traffic(url, name, rollout_helpers.penguin_rows(penguins_csv)) as traffic:
        wait_for(lambda: traffic.count() >= 20, 30, "the first predictions")
        rollout_helpers.roll_to(cluster, name, namespace, candidate)
        for _ in range(3):
            time.sleep(rng.uniform(2.0, 9.0))  # the operator takes a few seconds to start: some kills land then
            status = cluster.mdep_status(name, namespace)
            cluster.operator.kill()
            down_from = traffic.count()
            kills.append(f"{status.get('phase')}/{status.get('trafficSummary')}")
            time.sleep(rng.uniform(0.5, 3.0))
            answered_while_down += traffic.count() - down_from
            cluster.operator.start()
        status = settled(cluster, name, namespace, 150)
        if status["phase"] == "Healthy":
            wait_for(lambda: len(cluster.owned("inferenceservices", name, namespace)) == 1, 60, "the old version's to go")
    after = inventory(cluster, name, namespace)
    events = decisions(cluster, name, namespace)
    measured = traffic.summary()
    print(
        "\noperator kills:",
        json.dumps(
            {
                "seed": SEED,
                "killed at": kills,
                "answered while the operator was down": answered_while_down,
                **measured,
                "phase": status["phase"],
                "message": status.get("message"),
                "before": before,
                "after": after,
                "events": {f"{r}: {m}": n for (r, m), n in events.items()},
            }
        ),
    )
    assert measured["failed"] == 0, measured
    assert answered_while_down > 0
    assert (status["phase"], status["stableVersion"]) in (("Healthy", candidate), ("RolledBack", stable)), status
    served = candidate if status["phase"] == "Healthy" else stable
    assert after == {**before, "isvc_versions": [str(served)]}, (before, after)
    repeated = {
        key: n for key, n in events.items() if n > 1 and key[0] in ("RolloutStarted", "StepCompleted", "Promoted", "RolledBack")
    }
    assert not repeated, repeated


def test_storage_down_during_a_rollout_keeps_the_stable_serving(cluster, project, versions, penguins_csv, s3):
    namespace, stable, candidate = project["namespace"], versions["stable"], versions["candidate"]
    strategy = {"type": "Canary", "analysis": ANALYSIS, "canary": {"steps": [{"weight": 50, "pause": "4s"}]}}
    name = deploy(cluster, namespace, stable, strategy)
    url = rollout_helpers.serving(cluster, name, namespace)
    with Traffic(url, name, rollout_helpers.penguin_rows(penguins_csv)) as traffic:
        wait_for(lambda: traffic.count() >= 20, 30, "the first predictions")
        s3.stop()
        down_from = traffic.count()
        rollout_helpers.roll_to(cluster, name, namespace, candidate)
        try:
            # The candidate's storage initializer cannot reach the endpoint: the rollout ends (or
            # waits) without giving it traffic.
            def blocked() -> dict[str, Any] | None:
                status = cluster.mdep_status(name, namespace)
                isvc = cluster.get("isvc", f"{name}-v{candidate}", namespace) or {}
                failed = ((isvc.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo")
                return status if status.get("phase") == "RolledBack" or failed else None

            during = wait_for(blocked, 120, "the candidate to fail fetching its model")
            time.sleep(3)  # a few more predictions while the endpoint is down
            while_down = traffic.since(down_from)
            phase_down = cluster.mdep_status(name, namespace).get("phase")
        finally:
            s3.start()
        status = settled(cluster, name, namespace, 120)
        up_from = traffic.count()
        wait_for(lambda: traffic.count() >= up_from + 20, 30, "predictions after the endpoint came back")
    served = candidate if status["phase"] == "Healthy" else stable
    wait_for(lambda: len(cluster.owned("inferenceservices", name, namespace)) == 1, 60, "one InferenceService to be left")
    measured, left = traffic.summary(), inventory(cluster, name, namespace)
    print(
        "\nstorage down:",
        json.dumps(
            {
                **measured,
                "sent while down": len(while_down),
                "by version while down": dict(collections.Counter(v for v, _ in while_down)),
                "first seen failing": {k: during.get(k) for k in ("phase", "message")},
                "phase when the endpoint came back": phase_down,
                "phase": status["phase"],
                "message": status.get("message"),
                "left": left,
            }
        ),
    )
    assert measured["failed"] == 0, measured
    assert while_down and {v for v, _ in while_down} == {str(stable)}, collections.Counter(while_down)
    assert left["isvc_versions"] == [str(served)] and left["routers"] == 1, left
    if status["phase"] == "RolledBack":
        assert (status["stableVersion"], status["rolledBackVersion"]) == (stable, candidate), status
        assert f"Version {candidate} rolled back" in status["message"] and "cannot load" in status["message"], status
        assert "failed to fetch" in status["message"] and f"127.0.0.1:{s3.port}" in status["message"], status
    else:
        assert status["stableVersion"] == candidate, status
