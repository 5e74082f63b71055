"""Durability: SIGKILL the server, restart it on the same state directory, and find everything as it was."""

from __future__ import annotations

import json
import os
import stat

import yaml
from apiserver_helpers import WIDGET_CRD, client_for

CM = "/api/v1/namespaces/default/configmaps"
WD = "/apis/example.com/v1/namespaces/default/widgets"


def _watch_first_event(http, path: str, rv: str) -> dict:
    with http.stream("GET", path, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            return json.loads(line)
    return {}


def test_objects_survive_sigkill_and_old_watches_get_410(fresh_apiserver):
    server = fresh_apiserver()
    token, port = server.token, server.port
    with client_for(server) as http:
        crd = yaml.safe_load(WIDGET_CRD.read_text())
        assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
        written = {}
        for index in range(20):
            obj = http.post(CM, json={"metadata": {"name": f"c{index}"}, "data": {"i": str(index)}}).json()
            written[obj["metadata"]["name"]] = obj["metadata"]["resourceVersion"]
        widget = http.post(
            WD, json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
        ).json()
        last = http.patch(
            CM + "/c0", json={"data": {"i": "changed"}}, headers={"Content-Type": "application/merge-patch+json"}
        ).json()
        written["c0"] = last["metadata"]["resourceVersion"]
        before_kill = http.get(CM).json()["metadata"]["resourceVersion"]

    server.restart()  # SIGKILL, then start on the same directory and port

    assert server.token == token and server.port == port
    with client_for(server) as http:
        listed = http.get(CM).json()
        assert {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in listed["items"]} == written
        assert http.get(CM + "/c0").json()["data"] == {"i": "changed"}
        assert http.get(WD + "/w").json()["metadata"]["uid"] == widget["metadata"]["uid"]
        expired = _watch_first_event(http, CM, before_kill)
        assert expired["type"] == "ERROR" and expired["object"]["code"] == 410
        relist_rv = http.get(CM).json()["metadata"]["resourceVersion"]
        created = http.post(CM, json={"metadata": {"name": "after"}}).json()
        assert int(created["metadata"]["resourceVersion"]) > int(before_kill)
        resumed = _watch_first_event(http, CM, relist_rv)
        assert resumed["type"] == "ADDED" and resumed["object"]["metadata"]["name"] == "after"


def test_state_directory_and_kubeconfig_are_private(fresh_apiserver):
    server = fresh_apiserver()
    assert stat.S_IMODE(os.stat(server.state_dir).st_mode) == 0o700
    for name in ("kubeconfig", "token", "server.key"):
        assert stat.S_IMODE(os.stat(server.state_dir / name).st_mode) == 0o600
    config = yaml.safe_load((server.state_dir / "kubeconfig").read_text())
    assert config["contexts"][0]["context"]["namespace"] == "default"
    assert config["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
