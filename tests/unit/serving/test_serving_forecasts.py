"""A forecasting version as the model server, batch scoring, capture, the router's agreement and the
drift check see it: trained by the forecasting run on AirPassengers, then asked for months after its history."""

from __future__ import annotations

import asyncio
import datetime
import pathlib

import fastapi
import httpx
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from kserve import model_repository

from mlkube import driftcheck
from mlkube.api import batch, inference_log, scaling
from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, experiment, traffic
from mlkube.serving import agreement, asgi, endpoints, postprocessing, scorer, server

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")

DATA = pathlib.Path(__file__).parents[2] / "data/airpassengers/airpassengers.csv"
V1, V2 = "/v1/models/air:predict", "/v2/models/air/infer"


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("forecast") / "v1"
    spec = {
        "project": {
            "name": "air",
            "namespace": "ml",
            "goal": {"description": "plan crews", "type": "Process"},
            "problem": {
                "task": "forecasting",
                "target": "passengers",
                "timeColumn": "month",
                "horizon": 12,
                "primaryMetric": "mape",
            },
        },
        "trainingJob": {"name": "air-1", "namespace": "ml", "uid": "1", "trigger": "manual", "parentVersion": None},
        "data": {"uri": DATA.as_uri()},
        "preprocessing": {},
        "algorithms": [{"name": "ridge", "params": {"alpha": [1.0]}}],
        "tuning": {"maxTrials": 2, "cvFolds": 3},
        "output": {"uri": dest.as_uri()},
    }
    outcome, _ = experiment.run(trainer_api.TrainerInput.model_validate(spec))
    assert outcome.metrics["test"]["mape"] < outcome.metrics["test"]["baseline_mape"]
    return dest


def lean(version: pathlib.Path) -> endpoints.LeanInference:
    model = server.VersionModel("air", version, batching=scaling.Batching(enabled=False))
    model.load()
    registry = model_repository.ModelRepository()
    registry.update(model)
    rest = server.SingleModelRESTServer("unused:app", server.SingleModelDataPlane(registry), None, 0)
    kserve_app = fastapi.FastAPI()
    rest._register_endpoints(kserve_app)
    rest._add_exception_handlers(kserve_app)
    kserve_app.add_middleware(asgi.RequestIdMiddleware)
    return endpoints.LeanInference(kserve_app, model, max_request_bytes=100_000)


async def post(app, path: str, body: dict) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
        return await client.post(path, json=body)


def test_a_request_names_months_and_gets_forecasts_with_intervals(version):
    app = lean(version)
    answer = asyncio.run(post(app, V1, {"instances": [{"month": "1961-01-01"}, {"month": "1961-07-01"}]}))
    assert answer.status_code == 200, answer.text
    january, july = answer.json()["predictions"]
    assert set(january) == {"prediction", "lower", "upper"}
    assert january["lower"] < january["prediction"] < january["upper"] and july["prediction"] > january["prediction"]
    v2 = asyncio.run(post(app, V2, {"inputs": [{"name": "month", "shape": [1], "datatype": "BYTES", "data": ["1961-07-01"]}]}))
    outputs = {o["name"]: o["data"] for o in v2.json()["outputs"]}
    assert outputs["prediction"] == [pytest.approx(july["prediction"])] and set(outputs) == {"prediction", "lower", "upper"}


def test_a_time_the_model_cannot_forecast_is_the_clients_to_fix(version):
    app = lean(version)
    past = asyncio.run(post(app, V1, {"instances": [{"month": "1955-01-01"}]}))
    assert past.status_code == 400 and "month: 1955-01-01 is not after the end" in past.json()["error"]
    off_grid = asyncio.run(post(app, V1, {"instances": [{"month": "1961-01-15"}]}))
    assert off_grid.status_code == 400 and "grid" in off_grid.json()["error"]


def test_batch_scoring_writes_the_forecast_and_its_interval(version):
    loaded = artifacts.load(version)
    output = batch.Output(uri="file:///unused", include=["prediction", "modelVersion"])
    scored = scorer.Scorer(loaded.pipeline, loaded.card, block=postprocessing.Postprocessing(), output=output, version=1)
    table = scored.score(pa.table({"month": ["1961-01-01", "1961-02-01"]})).table
    assert table.column_names == ["prediction", "lower", "upper", "model_version"]
    online = loaded.pipeline.predict_interval(pd.DataFrame({"month": ["1961-01-01", "1961-02-01"]}))
    assert table.column("upper").to_pylist() == pytest.approx(online["upper"].tolist())


def test_versions_agree_when_their_point_forecasts_do():
    first = orjson.dumps({"predictions": [{"prediction": 100.0, "lower": 90.0, "upper": 110.0}]})
    close = orjson.dumps({"predictions": [{"prediction": 102.0, "lower": 70.0, "upper": 130.0}]})
    far = orjson.dumps({"predictions": [{"prediction": 130.0, "lower": 120.0, "upper": 140.0}]})
    assert agreement.agrees(first, close) is True and agreement.agrees(first, far) is False
    assert agreement.outcome({"prediction": 100.0, "lower": 90.0, "upper": 110.0}, 120)[1] == pytest.approx(-20.0)


def test_a_captured_v2_forecast_keeps_its_point_value(tmp_path):
    record = inference_log.CaptureRecord.model_validate(
        {
            "requestId": "r1",
            "timestamp": "2026-01-01T00:00:00Z",
            "version": 1,
            "role": "stable",
            "status": 200,
            "request": {"inputs": [{"name": "month", "shape": [1], "datatype": "BYTES", "data": ["1961-01-01"]}]},
            "response": {"outputs": [{"name": "prediction", "data": [450.0]}, {"name": "lower", "data": [400.0]}]},
        }
    )
    folder = (
        tmp_path / inference_log.prefix(inference_log.INFERENCE_LOG, namespace="ml", deployment="air-prod") / "date=2026-01-01"
    )
    folder.mkdir(parents=True)
    (folder / "1-host-w-0.jsonl").write_bytes(orjson.dumps(record.wire()) + b"\n")
    since = datetime.datetime(2025, 12, 31, tzinfo=datetime.UTC)
    window = traffic.window(tmp_path.as_uri(), namespace="ml", deployment="air-prod", features=["month"], since=since, size=10)
    assert window["month"].tolist() == ["1961-01-01"] and window["__prediction__"].tolist() == [450.0]


def captured(store: pathlib.Path, version: pathlib.Path, *, shift: float) -> None:
    """24 months asked one per request, as the router captures them, and actuals `shift` times the forecast."""
    model = artifacts.load(version).pipeline
    months = [f"{year}-{month:02d}-01" for year in (1961, 1962) for month in range(1, 13)]
    forecasts = model.predict_interval(pd.DataFrame({"month": months})).to_dict("records")
    log, answers = [], []
    for i, (month, forecast) in enumerate(zip(months, forecasts)):
        stamp = f"2026-11-24T11:00:{i:02d}.000Z"
        request = {"instances": [{"month": month}]}
        log.append(
            {
                "requestId": f"r{i}",
                "timestamp": stamp,
                "version": 1,
                "role": "stable",
                "status": 200,
                "request": request,
                "response": {"predictions": [forecast]},
            }
        )
        answers.append({"requestId": f"r{i}", "groundTruth": round(forecast["prediction"] * shift, 1), "timestamp": stamp})
    for kind, records in (("inference-log", log), ("feedback", answers)):
        path = store / f"{kind}/ml/prod/date=2026-11-24/1795000000-router-000001.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(orjson.dumps(r).decode() + "\n" for r in records))


def drift_request(store: pathlib.Path, version: pathlib.Path) -> dict:
    digest = artifacts.digest_of((version / artifacts.MANIFEST).read_bytes())
    return {
        "reference": {"uri": f"{version.as_uri()}/", "digest": digest},
        "traffic": {"uri": store.as_uri(), "namespace": "ml", "deployment": "prod", "size": 100, "since": "2026-11-24T00:00:00Z"},
        "minSamples": 20,
        "dataDrift": {"method": "auto"},
        "predictionDrift": {"method": "psi"},
        "conceptDrift": {"metric": "mape", "maxDrop": 0.1, "minLabeled": 20},
        "report": {"uri": f"{store.as_uri()}/reports/r.html"},
    }


@pytest.mark.parametrize(("shift", "drifted"), [(1.0, False), (1.5, True)])
def test_concept_drift_compares_the_live_errors_of_forecasts_with_the_test_errors(version, tmp_path, shift, drifted):
    captured(tmp_path, version, shift=shift)
    result = driftcheck.analyse(drift_request(tmp_path, version))
    performance = result["performance"]
    assert performance["metric"] == "mape" and performance["samples"] == 24 and performance["drifted"] is drifted
    assert result["phase"] == ("Drifting" if drifted else "Healthy"), result["summary"]
    assert result["features"] == [] and not result["datasetDrift"]  # the requested months are no drifting feature
    assert "predictionDrift" not in result  # a forecast's distribution follows the months asked, not the world
    assert (tmp_path / "reports/r.html").read_text().startswith("<!DOCTYPE html>")
