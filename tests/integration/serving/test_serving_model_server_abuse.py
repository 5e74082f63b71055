"""The model server as a real process refusing abuse: no one can unload its model, and bodies are bounded."""

from __future__ import annotations

import modelfactory
from serving_processes import CLIENT, spawn_server

MODEL = "churn-prod-v1"


def predict(url: str, **kwargs):
    return CLIENT.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [modelfactory.instance(0)]}, **kwargs)


def test_the_model_cannot_be_unloaded_or_reloaded_over_http(servers):
    # Issue 14: unload answered 200, then predictions were 404 while /v2/health/ready stayed 200,
    # and load answered 503 until a restart.
    url = servers["v1"].url
    for verb in ("unload", "load"):
        refused = CLIENT.post(f"{url}/v2/repository/models/{MODEL}/{verb}")
        assert refused.status_code == 404, verb
        assert "the model repository API (load/unload) is disabled" in refused.json()["error"]
    assert CLIENT.post(f"{url}/v2/repository/index").status_code == 404
    assert predict(url).status_code == 200
    assert CLIENT.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert CLIENT.get(f"{url}/v2/models/{MODEL}/ready").status_code == 200
    assert CLIENT.get(f"{url}/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}
    assert "model_repository_extension" not in CLIENT.get(f"{url}/v2").json()["extensions"]


def test_a_body_over_the_default_limit_is_refused_before_it_is_read(servers):
    # Issue 14: the server read a 100 MB body. The default limit is 8 MiB.
    url = servers["v1"].url
    body = b'{"instances": [' + b"1," * (9 * 1024 * 1024 // 2) + b"1]}"
    refused = CLIENT.post(f"{url}/v1/models/{MODEL}:predict", content=body, headers={"x-request-id": "big-1"})
    assert refused.status_code == 413 and refused.headers["x-request-id"] == "big-1"
    assert refused.json()["error"] == (
        f"request body is {len(body)} bytes, over this server's limit of 8388608 bytes (--max_request_bytes): "
        "send fewer rows per request, or raise the limit"
    )
    v2 = CLIENT.post(f"{url}/v2/models/{MODEL}/infer", content=body, headers={"content-type": "application/json"})
    assert v2.status_code == 413

    def chunked():  # no Content-Length: refused once the limit is read
        for _ in range(9):
            yield b" " * (1024 * 1024)

    assert CLIENT.post(f"{url}/v1/models/{MODEL}:predict", content=chunked()).status_code == 413
    assert predict(url).status_code == 200, "the server goes on serving"


def test_the_limit_is_configurable(versions, tmp_path):
    process = spawn_server("small-limit", versions["v1"], tmp_path, "--max_request_bytes", "2000").wait_ready()
    try:
        one = {"instances": [modelfactory.instance(0)]}
        many = {"instances": [modelfactory.instance(i) for i in range(40)]}
        assert CLIENT.post(f"{process.url}/v1/models/small-limit:predict", json=one).status_code == 200
        refused = CLIENT.post(f"{process.url}/v1/models/small-limit:predict", json=many)
        assert refused.status_code == 413 and "limit of 2000 bytes" in refused.json()["error"]
    finally:
        process.stop(kill=True)
