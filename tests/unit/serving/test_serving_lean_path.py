"""The model server's lean request path, in-process (ASGI, no sockets), on a real fitted version:
it answers exactly as KServe's generic path does, and batching keeps every request's own answer."""

from __future__ import annotations

import asyncio
import pathlib

import fastapi
import httpx
import numpy as np
import pandas as pd
import prometheus_client
import pytest
from kserve import model_repository
from sklearn import compose, linear_model, pipeline, preprocessing

from mlkube.api import scaling
from mlkube.ml import artifacts
from mlkube.serving import asgi, endpoints, server

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")  # KServe's own V1 endpoint uses it

NUMERIC = ["age", "income", "tenure"]
FEATURES = [*NUMERIC, "plan"]


def write_version(dest: pathlib.Path) -> None:
    """A logistic regression whose encoder refuses categories it never saw (the pipeline then raises)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=NUMERIC)
    frame["plan"] = rng.choice(["basic", "pro"], size=200)
    target = (frame["age"] + (frame["plan"] == "pro") > 0.5).astype(int)
    steps = [
        ("num", preprocessing.StandardScaler(), NUMERIC),
        ("cat", preprocessing.OneHotEncoder(handle_unknown="error"), ["plan"]),
    ]
    model = pipeline.Pipeline([("prep", compose.ColumnTransformer(steps)), ("clf", linear_model.LogisticRegression())])
    model.fit(frame, target)
    reference = frame.iloc[:50].copy()
    reference["__prediction__"] = model.predict(frame.iloc[:50])
    reference["__target__"] = target.iloc[:50].to_numpy()
    card = {
        "schemaVersion": 1,
        "problem": {"task": "classification", "target": "target", "positiveClass": 1},
        "featureSchema": [{"name": n, "type": "numeric", "nullable": False} for n in NUMERIC]
        + [{"name": "plan", "type": "categorical", "categories": ["basic", "pro"], "nullable": False}],
        "classes": [0, 1],
    }
    artifacts.write(dest.as_uri(), pipeline=model, card=card, metrics={}, reference=reference)


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("lean") / "v1"
    write_version(dest)
    return dest


def loaded(version: pathlib.Path, name: str, **batching) -> server.VersionModel:
    model = server.VersionModel(name, version, batching=scaling.Batching(**batching))
    model.load()
    return model


def apps(model: server.VersionModel) -> tuple[endpoints.LeanInference, fastapi.FastAPI]:
    """(the lean path in front of KServe's app, KServe's app alone), as the server assembles them."""
    registry = model_repository.ModelRepository()
    registry.update(model)
    rest = server.SingleModelRESTServer("unused:app", server.SingleModelDataPlane(registry), None, 0)
    kserve_app = fastapi.FastAPI()
    rest._register_endpoints(kserve_app)
    rest._add_exception_handlers(kserve_app)
    kserve_app.add_middleware(asgi.BodyLimitMiddleware, max_bytes=100_000)
    kserve_app.add_middleware(asgi.RequestIdMiddleware)
    return endpoints.LeanInference(kserve_app, model, max_request_bytes=100_000), kserve_app


async def post(app, path: str, **kwargs) -> httpx.Response:
    # KServe's app re-raises a 500's exception after answering (for the HTTP server to log): the answer counts.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
        return await client.post(path, **kwargs)


def row(i: int, plan: str = "basic") -> dict:
    return {"age": 0.1 * i - 1, "income": 1.5 - 0.2 * i, "tenure": i % 3, "plan": plan}


def flat(*rows: dict) -> list:
    """Rows as one V2 matrix input's data, in featureSchema order."""
    return [r[f] for r in rows for f in FEATURES]


V1, V2 = "/v1/models/churn:predict", "/v2/models/churn/infer"
REQUESTS = [
    (V1, {"json": {"instances": [row(1), row(2, "pro")]}, "headers": {"x-request-id": "client-1"}}),
    (V1, {"json": {"instances": [[row(3)[f] for f in FEATURES]]}}),
    (V1, {"json": {"instances": [{**row(4), "age": "old"}]}, "headers": {"x-request-id": "bad-1"}}),
    (V1, {"json": {"instances": [row(5, "gold")]}, "headers": {"x-request-id": "unscorable"}}),
    (V1, {"json": {"instances": []}}),
    (V1, {"json": {"instances": 3}}),
    (V1, {"json": {"rows": []}}),
    (V1, {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    (
        V2,
        {
            "json": {
                "id": "body-id",
                "inputs": [{"name": "x", "shape": [2, 4], "datatype": "BYTES", "data": flat(row(6), row(7))}],
            }
        },
    ),
    (V2, {"json": {"inputs": [{"name": f, "shape": [1], "datatype": "FP64", "data": [row(8)[f]]} for f in FEATURES]}}),
    (V2, {"json": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": [[1, 2, 3, "basic"]]}]}}),
    (V2, {"json": {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}}),
    (V2, {"json": {"id": 7, "inputs": []}}),
    (V2, {"json": {"parameters": {"a": [1]}, "inputs": []}}),
]


@pytest.mark.parametrize("path, request_", REQUESTS, ids=[f"{i}" for i in range(len(REQUESTS))])
def test_the_lean_path_answers_exactly_as_kserves_generic_path(version, path, request_):
    lean, generic = apps(loaded(version, "churn", enabled=False))
    ours, theirs = asyncio.run(post(lean, path, **request_)), asyncio.run(post(generic, path, **request_))
    assert (ours.status_code, ours.headers["content-type"]) == (theirs.status_code, theirs.headers["content-type"])
    ids = [r.headers.get("x-request-id") for r in (ours, theirs)]
    if theirs.status_code == 500:  # KServe answers 500s outside its middleware, without the id; the lean path keeps it
        ids[1] = request_["headers"]["x-request-id"]
    bodies = [r.json() for r in (ours, theirs)]
    if "x-request-id" in request_.get("headers", {}) or "body-id" in str(request_):
        assert ids[0] == ids[1]
    else:  # a new id each: the V2 body carries it as "id"
        assert all(len(i) == 32 for i in ids)
        for body, request_id in zip(bodies, ids):
            if isinstance(body, dict) and "outputs" in body:
                assert body.pop("id") == request_id
    assert bodies[0] == bodies[1]


def test_in_a_batch_each_request_gets_its_own_answer_and_one_the_pipeline_cannot_score_fails_alone(version):
    single = loaded(version, "alone", enabled=False)
    batched = loaded(version, "together", max_latency="1s")
    requests = [[row(i), row(i + 1, "pro")] for i in range(6)]
    requests.insert(3, [row(40, "gold")])  # valid for the schema, unknown to the pipeline's encoder

    async def score_all(model):
        rows = [model.schema.rows_from_instances(instances) for instances in requests]
        return await asyncio.gather(*(model.score(r) for r in rows), return_exceptions=True)

    together, alone = asyncio.run(score_all(batched)), asyncio.run(score_all(single))
    failed = [i for i, answer in enumerate(together) if isinstance(answer, Exception)]
    assert failed == [3] and "unknown categories" in str(together[3]) and isinstance(alone[3], ValueError)
    for ours, reference in zip(together[:3] + together[4:], alone[:3] + alone[4:]):
        assert ours.labels == reference.labels
        np.testing.assert_allclose(ours.probability_matrix, reference.probability_matrix, rtol=0, atol=1e-12)
    batches = prometheus_client.REGISTRY.get_sample_value("mlkube_predict_batch_requests_count", {"model_name": "together"})
    requests_in_batches = prometheus_client.REGISTRY.get_sample_value(
        "mlkube_predict_batch_requests_sum", {"model_name": "together"}
    )
    assert (batches, requests_in_batches) == (1, len(requests)), "one pipeline call for the seven requests"
