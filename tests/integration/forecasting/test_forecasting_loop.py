"""Issue 15 acceptance for forecasting on the embedded control plane, through kubectl.

AirPassengers (R's monthly airline passengers, tests/data/airpassengers) is trained as a
forecasting project; its test MAPE (the last 12 months) beats the seasonal-naive baseline's; the
deployment answers requested months with a forecast and its interval; the actuals that feedback
then reports sit at a level 50 % above the forecasts (a level shift), which the DriftMonitor's
concept drift sees, and the retraining it starts appends those actuals: the new champion
forecasts from the new level.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import httpx
import pytest

from localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.slow

DATA = pathlib.Path(__file__).parents[2] / "data/airpassengers/airpassengers.csv"
PROJECT, DEPLOYMENT, MONITOR = "air", "air-prod", "air-drift"


def project(data: pathlib.Path, storage: pathlib.Path, **problem) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": PROJECT},
        "spec": {
            "goal": {"description": "Plan cabin crews a year ahead", "type": "Process"},
            "problem": {
                "task": "forecasting",
                "target": "passengers",
                "timeColumn": "month",
                "horizon": 12,
                "frequency": "MS",
                "primaryMetric": "mape",
                **problem,
            },
            "data": {"uri": f"file://{data}"},
            "storage": {"uri": f"file://{storage}"},
            "training": {"template": {"algorithms": [{"name": "ridge"}], "tuning": {"maxTrials": 4, "cvFolds": 3}}},
            "retraining": {"onDrift": True, "cooldown": "1h", "includeFeedback": True, "feedbackWindow": "1d"},
        },
    }


def forecast(url: str, months: list[str]) -> tuple[list[dict], str]:
    response = httpx.post(f"{url}/v1/models/{DEPLOYMENT}:predict", json={"instances": [{"month": m} for m in months]}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"], response.headers["x-request-id"]


def test_inconsistent_forecasting_framings_are_refused_with_the_field_path(cluster: LocalCluster, namespace, tmp_path):
    body = project(DATA, tmp_path)
    del body["spec"]["problem"]["timeColumn"]
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert refused.returncode != 0 and "spec.problem.timeColumn" in refused.stderr, refused.stderr
    body = project(DATA, tmp_path, task="regression", timeColumn=None, primaryMetric="rmse")
    del body["spec"]["problem"]["timeColumn"], body["spec"]["problem"]["frequency"]
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert "spec.problem.horizon" in refused.stderr and "forecasting only" in refused.stderr, refused.stderr
    body = project(DATA, tmp_path, primaryMetric="f1")
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert "spec.problem.primaryMetric" in refused.stderr, refused.stderr


def test_forecast_beats_the_baseline_serves_intervals_and_retrains_after_a_level_shift(
    cluster: LocalCluster, namespace, tmp_path
):
    data = tmp_path / "airpassengers.csv"
    shutil.copy(DATA, data)
    storage = tmp_path / "models"
    cluster.apply(project(data, storage), namespace)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "first"},
            "spec": {"projectRef": PROJECT},
        },
        namespace,
    )
    trained = wait_for(
        lambda: (lambda s: s if s.get("phase") in ("Succeeded", "Failed") else None)(cluster.status("tj", "first", namespace)),
        120,
        "the first training run to finish",
    )
    assert trained["phase"] == "Succeeded", trained.get("message")
    test = trained["metrics"]["test"]
    assert test["mape"] < test["baseline_mape"] and test["mase"] < test["baseline_mase"], test
    assert {"smape", "rmse", "mae", "baseline_smape", "baseline_rmse", "baseline_mae"} <= set(test)
    wait_for(lambda: cluster.status("mlproject", PROJECT, namespace).get("championVersion") == 1, 60, "version 1 to be champion")

    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": DEPLOYMENT},
            "spec": {"projectRef": PROJECT, "model": {"track": "champion"}, "strategy": {"type": "Direct"}},
        },
        namespace,
    )
    served = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Healthy" and s.get("stableVersion") == 1 else None)(
            cluster.status("mdep", DEPLOYMENT, namespace)
        ),
        120,
        "the deployment to serve version 1",
    )
    url = served["url"]
    (january, july), _ = forecast(url, ["1961-01-01", "1961-07-01"])
    for answer in (january, july):
        assert answer["lower"] < answer["prediction"] < answer["upper"]
    assert july["prediction"] > january["prediction"]  # the summer peak of the series
    before, _ = forecast(url, ["1963-01-01"])
    refused = httpx.post(f"{url}/v1/models/{DEPLOYMENT}:predict", json={"instances": [{"month": "1950-01-01"}]}, timeout=30)
    assert refused.status_code == 400 and "not after the end" in refused.text

    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": MONITOR},
            "spec": {
                "deploymentRef": DEPLOYMENT,
                "interval": "5s",
                "window": {"size": 100, "duration": "1h"},
                "minSamples": 20,
                "conceptDrift": {"metric": "mape", "maxDrop": 0.1, "minLabeled": 20},
                "action": {"retrain": True},
            },
        },
        namespace,
    )
    # Two years of months, asked one at a time; feedback reports actuals 50 % above every forecast.
    months = [f"{year}-{month:02d}-01" for year in (1961, 1962) for month in range(1, 13)]
    items = []
    for month in months:
        (answer,), request_id = forecast(url, [month])
        items.append({"requestId": request_id, "groundTruth": round(answer["prediction"] * 1.5, 1)})
    httpx.post(f"{url}/v1/feedback", json={"items": items}, timeout=30).raise_for_status()

    drifting = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Drifting" and s.get("performance") and s.get("retrainingJob") else None)(
            cluster.status("dmon", MONITOR, namespace)
        ),
        90,
        "concept drift on the shifted actuals to start a retraining",
    )
    performance = drifting["performance"]
    assert performance["metric"] == "mape" and performance["drifted"] and performance["current"] > 0.3, performance
    assert "predictionDrift" not in drifting and not drifting["datasetDrift"]  # the errors drifted, nothing else
    run = wait_for(
        lambda: (lambda s: s if s.get("phase") in ("Succeeded", "Failed") else None)(
            cluster.status("tj", drifting["retrainingJob"], namespace)
        ),
        120,
        "the retraining run to finish",
    )
    assert run["phase"] == "Succeeded", run.get("message")
    card = json.loads(next(storage.glob(f"runs/{drifting['retrainingJob']}-*/model_card.json")).read_text())
    assert card["processing"]["rows"]["feedback"] == 24 and card["forecasting"]["series"][""]["end"] == "1962-12-01"

    wait_for(lambda: cluster.status("mlproject", PROJECT, namespace).get("championVersion") == 2, 60, "version 2 to be champion")
    wait_for(
        lambda: cluster.status("mdep", DEPLOYMENT, namespace).get("stableVersion") == 2, 120, "the deployment to serve version 2"
    )
    after, _ = forecast(url, ["1963-01-01"])
    assert after[0]["prediction"] > 1.3 * before[0]["prediction"], (before, after)
