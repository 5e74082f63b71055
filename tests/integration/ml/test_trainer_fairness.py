"""Bias detection and mitigation end to end, on real data with a known disparity (a sample of UCI
Adult shipped in tests/data/adult: 33 % of the men and 10 % of the women earn >50K).

The trainer entry point runs as the Job runs it, three times on the same spec with ``sex`` kept out
of the features: without mitigation, with exponentiated_gradient under demographic parity, and with
threshold_optimizer. The results go through the operator's pure registry (the MLProject plan) and
the threshold_optimizer version is served by the real model server. About a minute on two cores.
"""

import datetime
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from concurrent import futures

import httpx
import pytest

from mlkube.api import trainer as trainer_api
from mlkube.control.plans import project as project_plan
from mlkube.ml import artifacts

ADULT = pathlib.Path(__file__).parents[2] / "data" / "adult" / "adult_4000.csv"
CRITERION = {"metric": "disparate_impact", "op": ">=", "threshold": 0.8}
RUNS = {
    "unmitigated": {},
    "exponentiated-gradient": {"method": "exponentiated_gradient", "constraint": "demographic_parity"},
    "threshold-optimizer": {"method": "threshold_optimizer"},
}


def spec(name, output, mitigation):
    return {
        "project": {
            "name": "adult",
            "namespace": "ml",
            "goal": {"description": "grant credit fairly", "type": "Financial"},
            "problem": {
                "task": "classification",
                "target": "income",
                "primaryMetric": "accuracy",
                "features": {"exclude": ["sex"]},
            },
            "fairness": {"sensitiveFeatures": ["sex"], "favorableOutcome": ">50K", "criteria": [CRITERION]},
        },
        "trainingJob": {"name": name, "namespace": "ml", "uid": f"uid-{name}"},
        "data": {"uri": f"file://{ADULT}"},
        "preprocessing": {"mitigation": mitigation},
        "algorithms": [{"name": "logistic_regression", "params": {"C": 1.0}}],
        "tuning": {"strategy": "random", "maxTrials": 1, "cvFolds": 2},
        "output": {"uri": output},
    }


def train(name, root):
    document = spec(name, f"file://{root}/models/{name}/", RUNS[name])
    environment = {**os.environ, "MLKUBE_TRAINING_SPEC": json.dumps(document), "MLKUBE_CONTAINER_ROOT": str(root / name)}
    done = subprocess.run([sys.executable, "-m", "mlkube.trainer"], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((root / name / "dev" / "termination-log").read_text())
    trainer_api.TrainerResult.model_validate(result)  # what the operator parses
    return result, artifacts.load(root / "models" / name), root / "models" / name


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fair")
    with futures.ThreadPoolExecutor(2) as pool:
        runs = dict(zip(RUNS, pool.map(lambda name: train(name, root), RUNS)))
    return runs


def test_without_mitigation_the_status_shows_the_disparity_with_intervals_and_the_failed_criterion(trained):
    result, version, _ = trained["unmitigated"]
    fairness = result["fairness"]
    groups = fairness["groups"]["sex"]
    assert set(groups) == {"Female", "Male"}
    assert {"count", "selection_rate", "tpr", "fpr", "accuracy"} <= set(groups["Female"])
    assert groups["Female"]["selection_rate"] < groups["Male"]["selection_rate"]
    assert fairness["data"]["label_rate_difference"]["sex"] > 0.15  # the data's own disparity, before training
    disparate_impact = fairness["metrics"]["disparate_impact"]
    assert disparate_impact < 0.8
    low, high = fairness["intervals"]["disparate_impact"]
    assert low <= disparate_impact <= high < 0.8
    assert fairness["criteriaMet"] is False
    assert fairness["failedCriteria"] == [f"disparate_impact >= 0.8 (measured {disparate_impact:.4g})"]
    assert "sex" not in [f["name"] for f in version.card["featureSchema"]]  # measured, not a feature
    assert version.card["fairness"]["metrics"] == fairness["metrics"] and version.card["eligible"] is False


def test_exponentiated_gradient_moves_disparate_impact_toward_one_at_a_bounded_accuracy_cost(trained):
    before = trained["unmitigated"][0]
    result, version, _ = trained["exponentiated-gradient"]
    tradeoff = result["fairness"]["tradeoff"]
    assert tradeoff["disparate_impact"] == {
        "unmitigated": before["fairness"]["metrics"]["disparate_impact"],
        "mitigated": result["fairness"]["metrics"]["disparate_impact"],
    }
    assert tradeoff["disparate_impact"]["mitigated"] > tradeoff["disparate_impact"]["unmitigated"] + 0.15
    assert tradeoff["demographic_parity_difference"]["mitigated"] < tradeoff["demographic_parity_difference"]["unmitigated"]
    cost = tradeoff["accuracy"]["unmitigated"] - tradeoff["accuracy"]["mitigated"]
    assert tradeoff["accuracy"]["unmitigated"] == before["metrics"]["test"]["accuracy"]
    assert tradeoff["accuracy"]["mitigated"] == result["metrics"]["test"]["accuracy"]
    assert 0 <= cost < 0.05
    assert version.card["fairness"]["tradeoff"] == tradeoff and result["fairness"]["mitigation"] == (
        "exponentiated_gradient/demographic_parity"
    )
    assert version.card["processing"]["steps"] == ["features", "exponentiated_gradient"]


def test_the_registry_keeps_every_run_and_only_a_version_meeting_the_fairness_criterion_is_eligible(trained):
    runs = [
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": "ml", "creationTimestamp": "2026-12-01T10:00:00Z"},
            "spec": {"projectRef": "adult"},
            "status": {
                "phase": "Succeeded",
                "completionTime": f"2026-12-01T10:0{index}:00Z",
                "bestAlgorithm": result["algorithm"],
                "metrics": result["metrics"],
                "successCriteriaMet": result["successCriteriaMet"],
                "artifactUri": result["artifactUri"],
                "digest": result["digest"],
                "fairness": result["fairness"],
            },
        }
        for index, (name, (result, _, _)) in enumerate(trained.items(), start=1)
    ]
    project = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {
            "name": "adult",
            "namespace": "ml",
            "uid": "u",
            "generation": 1,
            "creationTimestamp": "2026-12-01T09:00:00Z",
        },
        "spec": {
            **{k: v for k, v in spec("x", "file:///s/", {})["project"].items() if k in ("goal", "problem", "fairness")},
            "data": {"uri": f"file://{ADULT}"},
            "storage": {"uri": "file:///s"},
        },
    }
    plan = project_plan.plan(
        project, project_plan.Observed(runs=tuple(runs)), now=datetime.datetime(2026, 12, 1, 11, tzinfo=datetime.UTC)
    )
    models = {m.training_job: m for m in plan.status.models}
    assert set(models) == set(RUNS)  # the unmitigated and the mitigated runs are both in the registry
    unmitigated = trained["unmitigated"][0]["fairness"]["metrics"]["disparate_impact"]
    assert models["unmitigated"].eligible is False
    assert f"fails disparate_impact >= 0.8 (measured {unmitigated:.4g})" in plan.events[0].message
    threshold = trained["threshold-optimizer"][0]["fairness"]["metrics"]["disparate_impact"]
    assert models["threshold-optimizer"].eligible is (threshold >= 0.8)
    created = {mv["spec"]["trainingJob"]: mv["spec"] for mv in plan.create_after_status}
    assert (
        created["exponentiated-gradient"]["fairness"]["tradeoff"] == trained["exponentiated-gradient"][0]["fairness"]["tradeoff"]
    )


def test_a_threshold_optimizer_version_needs_the_sensitive_feature_and_a_request_without_it_gets_400(trained, tmp_path):
    _, version, directory = trained["threshold-optimizer"]
    entry = next(f for f in version.card["featureSchema"] if f["name"] == "sex")
    assert entry["sensitive"] is True and entry["groups"] == ["Female", "Male"]
    assert version.card["fairness"]["requiredAtPrediction"] == ["sex"]
    row = {f["name"]: None for f in version.card["featureSchema"]}
    row.update(age=39, workclass="Private", education_num=13, marital_status="Never-married", occupation="Exec-managerial")
    row.update(relationship="Not-in-family", race="White", capital_gain=0, capital_loss=0, hours_per_week=40, sex="Female")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (the child's output, closed with it)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlkube.serving.server", "--model_name", "adult-v3", "--model_dir"]
        + [str(directory), "--http_port", str(port)]
        + ["--enable_latency_logging", "false"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLKUBE_BIND_HOST": "127.0.0.1"},
    )
    url = f"http://127.0.0.1:{port}/v1/models/adult-v3:predict"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        answered = httpx.post(url, json={"instances": [row]}, timeout=10)
        assert answered.status_code == 200 and answered.json()["predictions"][0] in ("<=50K", ">50K")
        without = {k: v for k, v in row.items() if k != "sex"}
        refused = httpx.post(url, json={"instances": [without]}, timeout=10)
        assert refused.status_code == 400
        assert "missing feature 'sex' (a sensitive feature" in refused.json()["error"]
    finally:
        server.kill()
        server.wait()
        log.close()
