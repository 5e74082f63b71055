"""The router's front door as a real process: a request answered on the lean path and the same request
answered by aiohttp (on a connection aiohttp owns) look the same to a client; pipelining and
chunked bodies keep working."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse

import modelfactory

PREDICT = "/v1/models/churn-prod:predict"
BODY = json.dumps({"instances": [modelfactory.instance(4)]})


def connection(router) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(router.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def answer(conn: http.client.HTTPConnection, method: str, path: str, body: str | None = None, **headers: str):
    conn.request(method, path, body=body, headers={"content-type": "application/json", **headers})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_the_lean_path_and_aiohttp_answer_a_prediction_alike(start_router, make_table):
    router = start_router(make_table())
    lean = connection(router)
    lean_answer = answer(lean, "POST", PREDICT, BODY, **{"x-request-id": "lean-1"})
    handed_over = connection(router)
    assert answer(handed_over, "GET", "/v2/health/ready")[0] == 200  # from now on aiohttp owns this connection
    aiohttp_answer = answer(handed_over, "POST", PREDICT, BODY, **{"x-request-id": "aiohttp-1"})
    (status, headers, body), (status_2, headers_2, body_2) = lean_answer, aiohttp_answer
    assert status == status_2 == 200 and json.loads(body) == json.loads(body_2)
    assert (headers["x-request-id"], headers_2["x-request-id"]) == ("lean-1", "aiohttp-1")
    same = ("content-type", "x-mlkube-version", "server", "content-length")
    assert {k: headers[k] for k in same} == {k: headers_2[k] for k in same}
    assert "date" in headers and "date" in headers_2
    # Both were routed, counted and remembered for feedback.
    assert router.stats()["versions"]["1"]["requests"] == 2
    for request_id in ("lean-1", "aiohttp-1"):
        feedback = answer(lean, "POST", "/v1/feedback", json.dumps({"requestId": request_id, "groundTruth": 1}))
        assert feedback[0] == 200, feedback


def test_pipelined_requests_are_answered_in_order(start_router, make_table):
    router = start_router(make_table())
    parts = urllib.parse.urlsplit(router.url)
    requests = b""
    for i in range(3):
        body = json.dumps({"instances": [modelfactory.instance(i)]}).encode()
        requests += (
            f"POST {PREDICT} HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\n"
            f"X-Request-Id: pipe-{i}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(requests)
        reader = sock.makefile("rb")
        ids = []
        for _ in range(3):
            assert reader.readline().startswith(b"HTTP/1.1 200 ")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            reader.read(int(headers["content-length"]))
            ids.append(headers["x-request-id"])
    assert ids == ["pipe-0", "pipe-1", "pipe-2"]


def test_a_chunked_request_body_is_answered_by_aiohttp(start_router, make_table):
    router = start_router(make_table())
    conn = connection(router)
    conn.request(
        "POST", PREDICT, body=iter([BODY[:10].encode(), BODY[10:].encode()]), headers={"content-type": "application/json"}
    )
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("x-mlkube-version") == "1"
    assert json.loads(response.read())["predictions"] in ([0], [1])
