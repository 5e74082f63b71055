"""Abuse over real HTTP is refused with Kubernetes' limits and a Status naming them, and the server keeps serving:
YAML alias bombs, bodies over 3 MiB, objects over 1.5 MiB, deep nesting, endless watches, history by bytes, file modes."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest
from apiserver_helpers import client_for

from mlkube.local.apiserver import limits

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
YAML = {"Content-Type": "application/yaml"}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _refused(response, code: int, *phrases: str) -> dict:
    assert response.status_code == code, response.text
    status = response.json()
    assert status["kind"] == "Status" and status["code"] == code
    for phrase in phrases:
        assert phrase in status["message"], status["message"]
    return status


def test_a_yaml_alias_bomb_is_refused_with_400_and_the_server_keeps_serving(http):
    name = _name("lol")
    levels = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, current in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"  {current}: &{current} [" + ",".join([f"*{previous}"] * 9) + "]")
    bomb = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata:\n" + "\n".join(levels) + "\n"
    assert len(bomb) < 600  # expands to ~490 million nodes
    _refused(http.post(CM, content=bomb, headers=YAML), 400, "aliases", f"the limit is {limits.YAML_ALIAS_BUDGET}")
    assert http.get(CM + "/" + name).status_code == 404
    assert http.get("/healthz").text == "ok"


def test_a_self_referencing_yaml_alias_is_refused(http):
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {_name('loop')}}}\ndata: &d {{x: *d}}\n"
    _refused(http.post(CM, content=body, headers=YAML), 400, "refers to itself")


def test_a_body_over_3_mib_is_refused_with_413_naming_the_limit(http):
    name = _name("huge")
    body = json.dumps({"metadata": {"name": name}, "data": {"x": "y" * (20 * 1024 * 1024)}})
    _refused(http.post(CM, content=body, headers={"Content-Type": "application/json"}), 413, "limit is 3145728")

    def chunks():  # no Content-Length: the limit applies while reading
        yield b'{"metadata": {"name": "' + name.encode() + b'"}, "data": {"x": "'
        for _ in range(5):
            yield b"y" * (1024 * 1024)
        yield b'"}}'

    _refused(http.post(CM, content=chunks(), headers={"Content-Type": "application/json"}), 413, "limit is 3145728")
    assert http.get(CM + "/" + name).status_code == 404


def test_an_object_over_1_5_mib_is_refused_with_413_and_stays_as_it_was(http):
    name = _name("grow")
    created = http.post(CM, json={"metadata": {"name": name}, "data": {"a": "y" * 1_000_000}})
    assert created.status_code == 201
    grown = http.patch(f"{CM}/{name}", json={"data": {"b": "z" * 1_000_000}}, headers=MERGE)
    _refused(grown, 413, f'"{name}" is too large to store', f"the limit is {limits.MAX_OBJECT_BYTES} bytes")
    current = http.get(f"{CM}/{name}").json()
    assert set(current["data"]) == {"a"}
    assert current["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


@pytest.mark.parametrize("depth", [limits.MAX_DEPTH + 1, 300, 100_000])
def test_deeply_nested_json_is_400_not_500(http, depth):
    body = json.dumps({"metadata": {"name": _name("deep")}, "data": {}})[:-2] + '"x": ' + "[" * depth + "]" * depth + "}}"
    _refused(http.post(CM, content=body, headers={"Content-Type": "application/json"}), 400, "levels deep")
    patch = '{"data": ' + '{"x": ' * depth + "1" + "}" * depth + "}"
    _refused(http.patch(f"{CM}/missing", content=patch, headers=MERGE), 400, "levels deep")


def test_nesting_within_the_limit_is_served(http):
    junk: object = "leaf"
    for _ in range(limits.MAX_DEPTH - 2):  # the body's depth is then exactly the limit
        junk = {"x": junk}
    created = http.post(CM, json={"metadata": {"name": _name("nested")}, "junk": junk})
    assert created.status_code == 201 and 'unknown field \\"junk' in created.headers["Warning"]


def test_deeply_nested_yaml_is_400_not_500(http):
    body = f"metadata: {{name: {_name('deep')}}}\ndata: " + "[" * 500 + "]" * 500 + "\n"
    _refused(http.post(CM, content=body, headers=YAML), 400, "levels deep")


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "-1", "1e999"])
def test_a_watch_timeout_that_is_not_a_finite_non_negative_number_is_400(http, timeout):
    _refused(http.get(CM, params={"watch": "true", "timeoutSeconds": timeout}), 400, "timeoutSeconds", timeout)


def test_the_watch_history_is_bounded_by_bytes(fresh_apiserver):
    server = fresh_apiserver(extra_args=("--history-bytes", "500000"))
    with client_for(server) as http:
        start = http.get(CM).json()["metadata"]["resourceVersion"]
        for index in range(10):
            assert http.post(CM, json={"metadata": {"name": f"b{index}"}, "data": {"x": "y" * 200_000}}).status_code == 201
        with http.stream("GET", CM, params={"watch": "true", "resourceVersion": start, "timeoutSeconds": "2"}) as response:
            first = json.loads(next(response.iter_lines()))
        assert first["type"] == "ERROR" and first["object"]["code"] == 410
        recent = http.get(CM + "/b8").json()["metadata"]["resourceVersion"]
        with http.stream("GET", CM, params={"watch": "true", "resourceVersion": recent, "timeoutSeconds": "2"}) as response:
            replayed = json.loads(next(response.iter_lines()))
        assert replayed["type"] == "ADDED" and replayed["object"]["metadata"]["name"] == "b9"


def test_state_database_files_are_private(fresh_apiserver):
    server = fresh_apiserver()
    with client_for(server) as http:
        assert (
            http.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s"}, "data": {"k": "dg=="}}).status_code
            == 201
        )
    for name in ("state.db", "state.db-wal", "state.db-shm", "apiserver.lock"):
        assert stat.S_IMODE(os.stat(server.state_dir / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(server.state_dir).st_mode) == 0o700
