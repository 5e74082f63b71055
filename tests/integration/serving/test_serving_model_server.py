"""The model server as a real process: protocols, validation, request ids, explain, integrity."""

from __future__ import annotations

import re
import shutil
import time

import httpx
import joblib
import modelfactory
import pandas as pd
import pytest
from serving_processes import CLIENT, spawn_server

FEATURES = [name for name in modelfactory.instance(0)]


def v1(url: str, name: str, instances: list, verb: str = "predict", **kwargs) -> httpx.Response:
    return CLIENT.post(f"{url}/v1/models/{name}:{verb}", json={"instances": instances}, **kwargs)


def test_v1_objects_and_arrays_give_the_pipelines_own_predictions(servers, versions):
    rows = [modelfactory.instance(i) for i in (0, 19, 20)]
    by_object = v1(servers["v1"].url, "churn-prod-v1", rows)
    by_array = v1(servers["v1"].url, "churn-prod-v1", [[row[f] for f in FEATURES] for row in rows])
    assert by_object.status_code == by_array.status_code == 200
    assert by_object.json() == by_array.json()
    expected = joblib.load(versions["v1"] / "model.joblib").predict_proba(pd.DataFrame(rows))
    body = by_object.json()
    assert body["predictions"] == expected.argmax(axis=1).tolist()
    assert [p["1"] for p in body["probabilities"]] == pytest.approx(expected[:, 1].tolist())


def test_every_response_carries_a_request_id_echoing_the_clients(servers):
    generated = v1(servers["v1"].url, "churn-prod-v1", [modelfactory.instance(0)])
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    echoed = v1(servers["v1"].url, "churn-prod-v1", [modelfactory.instance(0)], headers={"x-request-id": "client-7"})
    assert echoed.headers["x-request-id"] == "client-7"


def test_v2_per_feature_inputs_and_one_matrix_input_agree(servers):
    rows = [modelfactory.instance(i) for i in (0, 19)]
    per_feature = {
        "inputs": [
            {"name": f, "shape": [2], "datatype": "BYTES" if f == "size_band" else "FP64", "data": [r[f] for r in rows]}
            for f in FEATURES
        ]
    }
    matrix = {
        "id": "body-id",
        "inputs": [
            {"name": "x", "shape": [2, len(FEATURES)], "datatype": "BYTES", "data": [[r[f] for f in FEATURES] for r in rows]}
        ],
    }
    url = f"{servers['v1'].url}/v2/models/churn-prod-v1/infer"
    first = CLIENT.post(url, json=per_feature, headers={"x-request-id": "abc"})
    second = CLIENT.post(url, json=matrix)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == first.headers["x-request-id"] == "abc"
    assert second.json()["id"] == second.headers["x-request-id"] == "body-id"
    outputs = {o["name"]: o for o in first.json()["outputs"]}
    assert outputs["predict"]["data"] == {o["name"]: o for o in second.json()["outputs"]}["predict"]["data"]
    assert outputs["probabilities"]["shape"] == [2, 2]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda row: row.pop("mean_texture"), "instances[0]: missing feature 'mean_texture'"),
        (lambda row: row.update(mean_area="big"), "feature 'mean_area' expects a number, got 'big'"),
        (lambda row: row.update(size_band=None), "feature 'size_band' is null"),
    ],
)
def test_invalid_requests_get_400_naming_the_field(servers, mutate, message):
    row = modelfactory.instance(0)
    mutate(row)
    response = v1(servers["v1"].url, "churn-prod-v1", [row], headers={"x-request-id": "bad-1"})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert response.headers["x-request-id"] == "bad-1"


def test_unknown_categories_are_accepted_by_default(servers):
    row = {**modelfactory.instance(0), "size_band": "huge"}
    assert v1(servers["v1"].url, "churn-prod-v1", [row]).status_code == 200


def test_explain_attributes_the_score_to_each_feature(servers):
    response = v1(servers["v1"].url, "churn-prod-v1", [modelfactory.instance(0)], verb="explain")
    assert response.status_code == 200 and response.headers["x-request-id"]
    body = response.json()
    attributions = body["explanations"][0]["attributions"]
    assert list(attributions) == FEATURES
    assert any(abs(value) > 1e-6 for value in attributions.values())
    assert "occlusion" in body["method"]


def test_a_tampered_version_is_refused_and_never_ready(versions, tmp_path):
    model_dir = tmp_path / "v1"
    shutil.copytree(versions["v1"], model_dir)
    (model_dir / "model.joblib").write_bytes((model_dir / "model.joblib").read_bytes() + b"\0")
    process = spawn_server("tampered", model_dir, tmp_path)
    deadline = time.monotonic() + 60
    while process.popen.poll() is None and time.monotonic() < deadline:
        try:
            assert CLIENT.get(process.url + "/v2/health/ready", timeout=1).status_code != 200
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.stop()
    assert process.popen.returncode == 1
    log = process.log.read_text()
    assert "integrity check failed" in log and f"{model_dir}/model.joblib: sha256" in log, log
