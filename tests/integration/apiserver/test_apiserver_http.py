"""Wire-level semantics over raw HTTP: auth, watch start points and 410, bookmarks, streaming lists,
selector transitions, field validation, dry run, pagination, Services' cluster IPs, discovery, OpenAPI."""

from __future__ import annotations

import json
import queue
import threading
import uuid

import httpx
import pytest
from apiserver_helpers import client_for, eventually

CM = "/api/v1/namespaces/{ns}/configmaps"
WD = "/apis/example.com/v1/namespaces/{ns}/widgets"


def _lines(http: httpx.Client, path: str, *, count: int, **params) -> list[dict]:
    """The first `count` events of a watch (or fewer if the server ends the stream)."""
    events = []
    with http.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            events.append(json.loads(line))
            if len(events) == count:
                break
    return events


def test_requests_without_the_token_get_401_but_health_does_not(apiserver):
    with client_for(apiserver, token="") as anonymous:
        denied = anonymous.get("/api/v1/namespaces")
        assert denied.status_code == 401 and denied.json()["reason"] == "Unauthorized"
        assert anonymous.get("/healthz").text == "ok"
        wrong = anonymous.get("/api", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_watch_from_a_resource_version_replays_only_later_events(http, namespace):
    first = http.post(CM.format(ns=namespace), json={"metadata": {"name": "a"}}).json()
    http.post(CM.format(ns=namespace), json={"metadata": {"name": "b"}})
    events = _lines(http, CM.format(ns=namespace), count=1, resourceVersion=first["metadata"]["resourceVersion"])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


def test_watch_with_label_selector_sees_objects_leave_and_enter(http, namespace):
    http.post(CM.format(ns=namespace), json={"metadata": {"name": "m", "labels": {"app": "demo"}}})
    events: queue.Queue = queue.Queue()

    def follow() -> None:
        params = {"watch": "true", "labelSelector": "app=demo", "timeoutSeconds": "5"}
        with http.stream("GET", CM.format(ns=namespace), params=params) as response:
            for line in response.iter_lines():
                events.put(json.loads(line)["type"])

    threading.Thread(target=follow, daemon=True).start()
    assert events.get(timeout=5) == "ADDED"
    merge = {"Content-Type": "application/merge-patch+json"}
    http.patch(CM.format(ns=namespace) + "/m", json={"metadata": {"labels": {"app": None}}}, headers=merge)
    assert events.get(timeout=5) == "DELETED"
    http.patch(CM.format(ns=namespace) + "/m", json={"metadata": {"labels": {"app": "demo"}}}, headers=merge)
    assert events.get(timeout=5) == "ADDED"


def test_too_old_resource_version_is_an_error_event_in_a_200_stream(fresh_apiserver):
    server = fresh_apiserver(history=5)
    with client_for(server) as http:
        start = http.get(CM.format(ns="default")).json()["metadata"]["resourceVersion"]
        for index in range(10):
            http.post(CM.format(ns="default"), json={"metadata": {"name": f"c{index}"}})
        events = _lines(http, CM.format(ns="default"), count=2, resourceVersion=start)
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_streaming_list_ends_initial_events_with_a_bookmark_and_bookmarks_repeat(fresh_apiserver):
    server = fresh_apiserver(extra_args=("--bookmark-interval", "0.3"))
    with client_for(server) as http:
        http.post(CM.format(ns="default"), json={"metadata": {"name": "one"}})
        events = _lines(
            http,
            CM.format(ns="default"),
            count=3,
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
            allowWatchBookmarks="true",
            timeoutSeconds="5",
        )
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK", "BOOKMARK"]
        assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        refused = http.get(CM.format(ns="default"), params={"sendInitialEvents": "true"})
        assert refused.status_code == 422 and "sendInitialEvents is forbidden for list" in refused.text


def test_watch_timeout_ends_the_stream(http, namespace):
    assert _lines(http, CM.format(ns=namespace), count=5, timeoutSeconds="1", resourceVersion="0") == []


def test_field_validation_strict_warn_and_ignore(http, widgets, namespace):
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "fv"}, "spec": {"size": 2, "shape": "round"}}
    strict = http.post(WD.format(ns=namespace), json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert strict.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.shape"'
    )
    warned = http.post(WD.format(ns=namespace), json=body)
    assert warned.status_code == 201 and warned.headers["Warning"] == '299 - "unknown field \\"spec.shape\\""'
    assert "shape" not in warned.json()["spec"]
    body["metadata"]["name"] = "fv2"
    ignored = http.post(WD.format(ns=namespace), json=body, params={"fieldValidation": "Ignore"})
    assert ignored.status_code == 201 and "Warning" not in ignored.headers


def test_dry_run_persists_nothing(http, namespace):
    dry = http.post(CM.format(ns=namespace), json={"metadata": {"name": "dry"}}, params={"dryRun": "All"})
    assert dry.status_code == 201 and dry.json()["metadata"]["name"] == "dry"
    assert http.get(CM.format(ns=namespace) + "/dry").status_code == 404


def test_names_generate_name_and_namespace_errors(http, namespace):
    generated = {
        http.post(CM.format(ns=namespace), json={"metadata": {"generateName": "gen-"}}).json()["metadata"]["name"]
        for _ in range(2)
    }
    assert len(generated) == 2 and all(name.startswith("gen-") and len(name) == 9 for name in generated)
    bad = http.post(CM.format(ns=namespace), json={"metadata": {"name": "Bad_Name"}})
    assert bad.status_code == 422 and bad.json()["details"]["causes"][0]["field"] == "metadata.name"
    missing = http.post(CM.format(ns="nope"), json={"metadata": {"name": "x"}})
    assert missing.status_code == 404 and missing.json()["message"] == 'namespaces "nope" not found'
    mismatch = http.post(CM.format(ns=namespace), json={"metadata": {"name": "x", "namespace": "other"}})
    assert mismatch.status_code == 400
    wrong_kind = http.post(CM.format(ns=namespace), json={"kind": "Secret", "metadata": {"name": "x"}})
    assert wrong_kind.status_code == 400


def test_pagination_with_limit_and_continue(http, namespace):
    for index in range(5):
        http.post(CM.format(ns=namespace), json={"metadata": {"name": f"p{index}"}})
    names, token = [], ""
    while True:
        page = http.get(CM.format(ns=namespace), params={"limit": "2", **({"continue": token} if token else {})})
        body = page.json()
        names += [item["metadata"]["name"] for item in body["items"]]
        token = body["metadata"]["continue"]
        if not token:
            break
    assert names == [f"p{index}" for index in range(5)]


def test_services_get_unique_loopback_cluster_ips_that_survive_updates(http, namespace):
    ips = []
    for name in ("s1", "s2"):
        created = http.post(
            f"/api/v1/namespaces/{namespace}/services", json={"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
        ).json()
        ips.append(created["spec"]["clusterIP"])
    headless = http.post(
        f"/api/v1/namespaces/{namespace}/services", json={"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}
    ).json()
    assert len(set(ips)) == 2 and all(ip.startswith("127.1.") for ip in ips)
    assert headless["spec"]["clusterIP"] == "None"
    updated = http.patch(
        f"/api/v1/namespaces/{namespace}/services/s1",
        json={"spec": {"clusterIP": "127.9.9.9"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert updated["spec"]["clusterIP"] == ips[0]


def test_owner_references_background_orphan_and_foreground(http, widgets, namespace):
    def widget(name: str) -> dict:
        return http.post(
            WD.format(ns=namespace),
            json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}},
        ).json()

    def dependent(name: str, owner: dict, **extra) -> None:
        ref = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            **extra,
        }
        http.post(CM.format(ns=namespace), json={"metadata": {"name": name, "ownerReferences": [ref]}})

    background, orphan, foreground = widget("bg"), widget("or"), widget("fg")
    dependent("bg-dep", background)
    dependent("or-dep", orphan)
    dependent("fg-dep", foreground, blockOwnerDeletion=True)
    http.patch(
        CM.format(ns=namespace) + "/fg-dep",
        json={"metadata": {"finalizers": ["example.com/hold"]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    bogus = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    http.post(CM.format(ns=namespace), json={"metadata": {"name": "ghost-dep", "ownerReferences": [bogus]}})

    http.request("DELETE", WD.format(ns=namespace) + "/bg", json={"propagationPolicy": "Background"})
    http.request("DELETE", WD.format(ns=namespace) + "/or", json={"propagationPolicy": "Orphan"})
    http.request("DELETE", WD.format(ns=namespace) + "/fg", json={"propagationPolicy": "Foreground"})
    eventually(lambda: http.get(CM.format(ns=namespace) + "/bg-dep").status_code == 404)
    eventually(lambda: http.get(CM.format(ns=namespace) + "/ghost-dep").status_code == 404)
    eventually(lambda: http.get(WD.format(ns=namespace) + "/or").status_code == 404)
    survivor = http.get(CM.format(ns=namespace) + "/or-dep").json()
    assert "ownerReferences" not in survivor["metadata"]
    held = http.get(WD.format(ns=namespace) + "/fg").json()
    assert held["metadata"]["deletionTimestamp"] and "foregroundDeletion" in held["metadata"]["finalizers"]
    assert http.get(CM.format(ns=namespace) + "/fg-dep").json()["metadata"]["deletionTimestamp"]
    http.patch(
        CM.format(ns=namespace) + "/fg-dep",
        json={"metadata": {"finalizers": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    eventually(lambda: http.get(WD.format(ns=namespace) + "/fg").status_code == 404)


def test_discovery_formats_and_openapi_hashes_follow_crd_changes(http):
    legacy = http.get("/apis").json()
    assert legacy["kind"] == "APIGroupList"
    aggregated = http.get(
        "/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"}
    )
    assert aggregated.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    assert {item["metadata"]["name"] for item in aggregated.json()["items"]} == {group["name"] for group in legacy["groups"]}
    v2 = http.get("/openapi/v2").json()
    assert v2["swagger"] == "2.0" and "replicas" in v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
    protobuf_only = http.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert protobuf_only.status_code == 406  # kubectl then falls back to v3
    before = http.get("/openapi/v3").json()["paths"]
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.io"},
        "spec": {
            "group": "test.io",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v2",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                },
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                },
            ],
        },
    }
    assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
    after = http.get("/openapi/v3").json()["paths"]
    assert "apis/test.io/v1" in after and "apis/test.io/v1" not in before
    assert after["apis/apiextensions.k8s.io/v1"] == before["apis/apiextensions.k8s.io/v1"]
    group = http.get("/apis/test.io").json()
    assert group["preferredVersion"]["version"] == "v2"
    created = http.post(
        "/apis/test.io/v1/gadgets", json={"apiVersion": "test.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "x": 1}
    )
    assert created.status_code == 201
    assert http.get("/apis/test.io/v2/gadgets/g").json()["apiVersion"] == "test.io/v2"
    document = http.get(after["apis/test.io/v1"]["serverRelativeURL"]).json()
    patch_op = document["paths"]["/apis/test.io/v1/gadgets/{name}"]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"] == {"group": "test.io", "version": "v1", "kind": "Gadget"}
    assert "fieldValidation" in {p["name"] for p in patch_op["parameters"]}
    http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.test.io")
    eventually(lambda: http.get("/apis/test.io/v1").status_code == 404)
    assert "apis/test.io/v1" not in http.get("/openapi/v3").json()["paths"]


def test_invalid_crds_are_refused(http):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "wrong.test.io"},
        "spec": {
            "group": "test.io",
            "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {}}}},
                }
            ],
        },
    }
    refused = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert refused.status_code == 422
    fields = {cause["field"] for cause in refused.json()["details"]["causes"]}
    assert "metadata.name" in fields
    assert any(field.startswith("spec.versions[0].schema.openAPIV3Schema") for field in fields)


@pytest.mark.parametrize("params", [{"limit": "x"}, {"resourceVersion": "abc"}, {"watch": "true", "timeoutSeconds": "soon"}])
def test_malformed_numeric_parameters_are_400(http, params):
    response = http.get(CM.format(ns="default"), params=params)
    assert response.status_code == 400 and response.json()["kind"] == "Status"


def test_concurrent_writes_reach_a_watcher_exactly_once_in_rv_order(apiserver, http, namespace):
    http.post(CM.format(ns=namespace), json={"metadata": {"name": "hot"}})
    start = http.get(CM.format(ns=namespace)).json()["metadata"]["resourceVersion"]
    writes = 40

    def patch(index: int) -> None:
        with client_for(apiserver) as own:
            own.patch(
                CM.format(ns=namespace) + "/hot",
                json={"data": {"i": str(index)}},
                headers={"Content-Type": "application/merge-patch+json"},
            )

    threads = [threading.Thread(target=patch, args=(index,)) for index in range(writes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = _lines(http, CM.format(ns=namespace), count=writes, resourceVersion=start, timeoutSeconds="5")
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert len(events) == writes and versions == sorted(set(versions))
    assert {event["object"]["data"]["i"] for event in events} == {str(index) for index in range(writes)}


def test_crd_selectable_fields_work_as_field_selectors(http, namespace):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crates.sel.io"},
        "spec": {
            "group": "sel.io",
            "scope": "Namespaced",
            "names": {"plural": "crates", "kind": "Crate"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "selectableFields": [{"jsonPath": ".spec.color"}],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"color": {"type": "string"}}}},
                        }
                    },
                }
            ],
        },
    }
    assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
    path = f"/apis/sel.io/v1/namespaces/{namespace}/crates"
    for name, color in (("a", "red"), ("b", "blue")):
        http.post(path, json={"apiVersion": "sel.io/v1", "kind": "Crate", "metadata": {"name": name}, "spec": {"color": color}})
    selected = http.get(path, params={"fieldSelector": "spec.color=blue"}).json()["items"]
    assert [item["metadata"]["name"] for item in selected] == ["b"]
    assert http.get(path, params={"fieldSelector": "spec.size=1"}).status_code == 400
    http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crates.sel.io")
