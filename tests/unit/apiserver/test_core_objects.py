"""Write semantics on a real (temporary) store: generation, no-ops, status split, finalizers, CRD lifecycle."""

import pytest

from mlkube.local.apiserver import errors, objects, patch_requests, registry, storage

OPTS = objects.WriteOptions(field_manager="test")
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def api(tmp_path):
    store = storage.Store(str(tmp_path / "s.db"))
    store.open()
    api = objects.Objects(store, registry.Registry())
    api.create(api.registry.lookup("", "v1", "namespaces"), "", {"metadata": {"name": "ns"}}, OPTS)
    events = []
    store.subscribe(lambda event: events.append(event.type))
    api.events = events
    yield api
    store.close()


@pytest.fixture
def widgets(api):
    api.create(api.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", CRD, OPTS)
    api.events.clear()
    return api.registry.lookup("example.com", "v1", "widgets")


def _widget(api, widgets, **spec):
    return api.create(widgets, "ns", {"metadata": {"name": "w"}, "spec": spec, "status": {"phase": "x"}}, OPTS).obj


def test_crd_registers_its_types_with_established_status(api, widgets):
    crd = api.get(api.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", "widgets.example.com")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {"NamesAccepted": "True", "Established": "True"}
    assert widgets.has_status and widgets.singular == "widget"


def test_create_drops_status_and_sets_generation_one(api, widgets):
    created = _widget(api, widgets, size=1)
    assert "status" not in created and created["metadata"]["generation"] == 1


def test_generation_counts_spec_changes_only(api, widgets):
    created = _widget(api, widgets, size=1)
    labelled = api.patch(widgets, "ns", "w", patch_requests.MERGE, {"metadata": {"labels": {"a": "b"}}}, OPTS).obj
    assert labelled["metadata"]["generation"] == 1
    resized = api.patch(widgets, "ns", "w", patch_requests.MERGE, {"spec": {"size": 2}}, OPTS).obj
    assert resized["metadata"]["generation"] == 2
    status = api.patch(
        widgets, "ns", "w", patch_requests.MERGE, {"status": {"phase": "Ready"}, "spec": {"size": 9}}, OPTS, subresource="status"
    ).obj
    assert status["metadata"]["generation"] == 2 and status["spec"]["size"] == 2 and status["status"]["phase"] == "Ready"
    main = api.patch(widgets, "ns", "w", patch_requests.MERGE, {"status": {"phase": "Lost"}}, OPTS).obj
    assert main["status"]["phase"] == "Ready"
    assert int(created["metadata"]["resourceVersion"]) < int(status["metadata"]["resourceVersion"])


def test_no_op_patch_keeps_rv_and_emits_nothing(api, widgets):
    created = _widget(api, widgets, size=1)
    api.events.clear()
    same = api.patch(widgets, "ns", "w", patch_requests.MERGE, {"metadata": {"annotations": {"x": None}}}, OPTS).obj
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"] and api.events == []


def test_stale_resource_version_conflicts(api, widgets):
    created = _widget(api, widgets, size=1)
    api.patch(widgets, "ns", "w", patch_requests.MERGE, {"spec": {"size": 2}}, OPTS)
    stale = {**created, "spec": {"size": 3}}
    with pytest.raises(errors.APIError) as conflict:
        api.replace(widgets, "ns", "w", stale, OPTS)
    assert conflict.value.code == 409


def test_finalizers_hold_deletion_until_removed(api, widgets):
    _widget(api, widgets, size=1)
    api.patch(widgets, "ns", "w", patch_requests.MERGE, {"metadata": {"finalizers": ["hold"]}}, OPTS)
    deleting = api.delete(widgets, "ns", "w").obj
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 2
    again = api.delete(widgets, "ns", "w").obj
    assert again["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    with pytest.raises(errors.APIError) as forbidden:
        api.patch(widgets, "ns", "w", patch_requests.MERGE, {"metadata": {"finalizers": ["hold", "more"]}}, OPTS)
    assert forbidden.value.details["causes"][0]["reason"] == "FieldValueForbidden"
    api.events.clear()
    api.patch(widgets, "ns", "w", patch_requests.JSON_PATCH, [{"op": "remove", "path": "/metadata/finalizers"}], OPTS)
    assert api.events == ["DELETED"] and api.store.get(widgets.storage_key, "ns", "w") is None


def test_strategic_merge_patch_on_a_custom_resource_is_415(api, widgets):
    _widget(api, widgets, size=1)
    with pytest.raises(errors.APIError) as unsupported:
        api.patch(widgets, "ns", "w", patch_requests.STRATEGIC, {"spec": {"size": 2}}, OPTS)
    assert unsupported.value.code == 415


def test_dry_run_create_writes_nothing(api, widgets):
    result = api.create(
        widgets, "ns", {"metadata": {"name": "d"}, "spec": {}}, objects.WriteOptions(dry_run=True, field_manager="t")
    )
    assert result.created and api.events == [] and api.store.get(widgets.storage_key, "ns", "d") is None


def test_secret_string_data_is_folded_into_data(api):
    secrets = api.registry.lookup("", "v1", "secrets")
    secret = api.create(secrets, "ns", {"metadata": {"name": "s"}, "stringData": {"a": "hi"}}, OPTS).obj
    assert secret["data"] == {"a": "aGk="} and secret["type"] == "Opaque" and "stringData" not in secret
