"""The model server's guards, on KServe's real app in-process (ASGI, no sockets): no repository routes,
readiness that is the model's, bounded request bodies."""

from __future__ import annotations

import asyncio
import pathlib

import fastapi
import httpx
import kserve
import pytest
from kserve import model_repository

from mlkube.serving import asgi, server

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")  # KServe's own V1 endpoint uses it


class Loaded(kserve.Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [len(payload["instances"])]}


def app_with(*models: kserve.Model, max_bytes: int = 1000) -> fastapi.FastAPI:
    registry = model_repository.ModelRepository()
    for model in models:
        registry.update(model)
    rest = server.SingleModelRESTServer("unused:app", server.SingleModelDataPlane(registry), None, 0)
    app = fastapi.FastAPI()
    rest._register_endpoints(app)
    rest._add_exception_handlers(app)
    app.add_middleware(asgi.BodyLimitMiddleware, max_bytes=max_bytes)
    app.add_middleware(asgi.RequestIdMiddleware)
    return app


def call(app: fastapi.FastAPI, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_the_repository_routes_are_gone_and_the_model_keeps_serving():
    app = app_with(Loaded("churn"))
    for path in ("/v2/repository/models/churn/unload", "/v2/repository/models/churn/load", "/v2/repository/index"):
        refused = call(app, "POST", path)
        assert refused.status_code == 404, path
        assert refused.json()["error"] == server.REPOSITORY_DISABLED and "x-request-id" in refused.headers
    assert call(app, "POST", "/v1/models/churn:predict", json={"instances": [[1], [2]]}).json() == {"predictions": [2]}
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert call(app, "GET", "/v2").json()["extensions"] == []


def test_readiness_is_the_models_own():
    unloaded = server.VersionModel("churn", pathlib.Path("/nowhere"))  # constructed, never loaded
    app = app_with(unloaded)
    assert call(app, "GET", "/v2/health/ready").status_code == 503
    assert call(app, "GET", "/v2/models/churn/ready").status_code == 503
    assert call(app, "GET", "/v1/models/churn").status_code == 503
    assert call(app_with(), "GET", "/v2/health/ready").status_code == 503, "no model, not ready"
    loaded = Loaded("churn")
    app = app_with(loaded)
    assert call(app, "GET", "/v2/health/ready").status_code == 200
    loaded.stop()  # what KServe does on SIGTERM: not ready while it drains
    assert call(app, "GET", "/v2/health/ready").status_code == 503


def test_a_version_model_is_healthy_only_while_loaded():
    model = server.VersionModel("churn", pathlib.Path("/nowhere"))
    model.ready = True  # the flag alone is not enough: nothing is loaded
    assert asyncio.run(model.healthy()) is False


def test_a_body_over_the_limit_is_refused_with_413_naming_the_limit():
    app = app_with(Loaded("churn"), max_bytes=1000)
    declared = call(app, "POST", "/v1/models/churn:predict", content=b"x" * 1001, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == (
        "request body is 1001 bytes, over this server's limit of 1000 bytes (--max_request_bytes): "
        "send fewer rows per request, or raise the limit"
    )

    async def chunked(*parts: bytes):  # no Content-Length: the middleware counts what it reads
        for part in parts:
            yield part

    many = [b'{"instances": [', *[b"[1],"] * 300, b"[1]]}"]
    streamed = call(app, "POST", "/v1/models/churn:predict", content=chunked(*many))
    assert streamed.status_code == 413 and "more than 1000 bytes" in streamed.json()["error"]
    small = call(app, "POST", "/v1/models/churn:predict", content=chunked(b'{"instances": ', b"[[1]]}"))
    assert small.status_code == 200 and small.json() == {"predictions": [1]}, "a small chunked body is replayed whole"
