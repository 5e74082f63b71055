"""The kubernetes Python client (37) against the embedded API server: CRUD, watch, custom objects, SSA."""

from __future__ import annotations

import threading
import uuid

import pytest
from apiserver_helpers import eventually
from kubernetes import client, dynamic, watch


@pytest.fixture
def core(api_client):
    return client.CoreV1Api(api_client)


def test_configmap_crud_patch_types_and_stale_replace(core, namespace):
    created = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "pc1", "labels": {"a": "b"}}, "data": {"x": "1"}}
    )
    assert created.metadata.creation_timestamp.tzinfo is not None
    merged = core.patch_namespaced_config_map("pc1", namespace, {"data": {"y": "2"}})  # strategic merge
    assert merged.data == {"x": "1", "y": "2"}
    patched = core.patch_namespaced_config_map("pc1", namespace, [{"op": "add", "path": "/data/z", "value": "3"}])
    assert patched.data == {"x": "1", "y": "2", "z": "3"}
    patched.data["w"] = "4"
    replaced = core.replace_namespaced_config_map("pc1", namespace, patched)
    assert int(replaced.metadata.resource_version) > int(patched.metadata.resource_version)
    replaced.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(client.ApiException) as stale:
        core.replace_namespaced_config_map("pc1", namespace, replaced)
    assert stale.value.status == 409 and "the object has been modified" in stale.value.body
    listed = core.list_namespaced_config_map(namespace, label_selector="a=b")
    assert [item.metadata.name for item in listed.items] == ["pc1"]
    assert int(listed.metadata.resource_version) >= int(replaced.metadata.resource_version)
    core.delete_namespaced_config_map("pc1", namespace)
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map("pc1", namespace)
    assert gone.value.status == 404


def test_watch_sees_every_write_in_order_and_no_op_writes_are_silent(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "seed"}})
    seen: list[tuple[str, str, int]] = []
    started = threading.Event()

    def follow():
        stream = watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=2)
        started.set()
        for event in stream:
            seen.append((event["type"], event["object"].metadata.name, int(event["object"].metadata.resource_version)))

    thread = threading.Thread(target=follow)
    thread.start()
    started.wait()
    eventually(lambda: seen)  # the synthetic ADDED of "seed"
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}, "data": {"k": "1"}})
    same = core.patch_namespaced_config_map("w", namespace, {"data": {"k": "1"}})  # a no-op
    assert same.metadata.resource_version == first.metadata.resource_version
    core.patch_namespaced_config_map("w", namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    thread.join()
    assert [(kind, name) for kind, name, _ in seen] == [("ADDED", "seed"), ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    versions = [rv for _, _, rv in seen]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_custom_objects_create_patch_status_and_delete(api_client, widgets, namespace):
    objects = client.CustomObjectsApi(api_client)
    args = ("example.com", "v1", namespace, "widgets")
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "pw"},
        "spec": {"size": 2},
        "status": {"phase": "ignored on create"},
    }
    created = objects.create_namespaced_custom_object(*args, body)
    assert "status" not in created and created["spec"] == {"size": 2, "color": "red"}
    patched = objects.patch_namespaced_custom_object(*args, "pw", {"spec": {"size": 3}, "status": {"phase": "X"}})
    assert patched["spec"]["size"] == 3 and "status" not in patched and patched["metadata"]["generation"] == 2
    status = objects.patch_namespaced_custom_object_status(
        *args, "pw", {"metadata": {"labels": {"sneaky": "yes"}}, "status": {"phase": "Ready"}}
    )
    assert status["status"] == {"phase": "Ready"}
    assert "labels" not in status["metadata"] and status["metadata"]["generation"] == 2
    unconditional = dict(objects.get_namespaced_custom_object(*args, "pw"))
    unconditional["metadata"] = {k: v for k, v in unconditional["metadata"].items() if k != "resourceVersion"}
    with pytest.raises(client.ApiException) as missing_rv:
        objects.replace_namespaced_custom_object(*args, "pw", unconditional)
    assert missing_rv.value.status == 422
    objects.delete_namespaced_custom_object(*args, "pw")
    with pytest.raises(client.ApiException) as gone:
        objects.get_namespaced_custom_object(*args, "pw")
    assert gone.value.status == 404


def test_dynamic_client_server_side_apply_creates_then_updates(api_client, widgets, namespace):
    dyn = dynamic.DynamicClient(api_client)
    widgets_api = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    name = f"dw-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": 4, "tags": ["a"]},
    }
    first = dyn.server_side_apply(widgets_api, body=body, field_manager="py")
    assert first.spec.size == 4
    body["spec"] = {"size": 5}
    second = dyn.server_side_apply(widgets_api, body=body, field_manager="py")
    assert second.spec.size == 5 and second.spec.tags is None  # fields the manager no longer applies go away
    managers = [(entry.manager, entry.operation) for entry in second.metadata.managedFields]
    assert ("py", "Apply") in managers
    fetched = dyn.get(resource=widgets_api, name=name, namespace=namespace)
    assert fetched.metadata.resourceVersion == second.metadata.resourceVersion


def test_json_patch_test_op_on_a_stale_resource_version_is_422(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "t"}})
    with pytest.raises(client.ApiException) as failed:
        core.patch_namespaced_config_map(
            "t",
            namespace,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
            ],
        )
    assert failed.value.status == 422
    assert core.read_namespaced_config_map("t", namespace).metadata.finalizers is None


def test_events_posted_like_kopf_round_trip_times(core, http, namespace):
    event = core.create_namespaced_event(
        namespace,
        {
            "metadata": {"namespace": namespace, "generateName": "kopf-event-"},
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace, "apiVersion": "v1"},
            "type": "Normal",
            "reason": "Tested",
            "message": "hello",
            "source": {"component": "kopf"},
            "reportingComponent": "kopf",
            "reportingInstance": "dev",
            "action": "Action",
            "firstTimestamp": "2026-03-01T10:00:00.123456+00:00",
            "lastTimestamp": "2026-03-01T10:00:00.123456+00:00",
            "eventTime": "2026-03-01T10:00:00.123456+00:00",
        },
    )
    assert event.metadata.name.startswith("kopf-event-") and len(event.metadata.name) == len("kopf-event-") + 5
    selected = core.list_namespaced_event(namespace, field_selector="involvedObject.name=x,reason=Tested")
    assert [e.message for e in selected.items] == ["hello"]
    raw = http.get(f"/api/v1/namespaces/{namespace}/events/{event.metadata.name}").json()
    assert raw["firstTimestamp"] == "2026-03-01T10:00:00Z"
    assert raw["eventTime"] == "2026-03-01T10:00:00.123456Z"
    with pytest.raises(client.ApiException) as bad:
        core.list_namespaced_event(namespace, field_selector="spec.nothing=1")
    assert bad.value.status == 400 and "is not a known field selector" in bad.value.body


def test_delete_collection_by_label(core, namespace):
    for index, tier in enumerate(["a", "a", "b"]):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{index}", "labels": {"tier": tier}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="tier=a")
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["c2"]
