"""Table rendering: ages, CRD printer columns with JSONPath, built-in column sets."""

import datetime

import pytest

from mlkube.local.apiserver import jsonpath, registry, tables

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 600, "5h10m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
    ],
)
def test_human_duration_matches_upstream(seconds, text):
    assert tables.human_duration(seconds) == text


def test_jsonpath_subset():
    obj = {
        "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
        "spec": {"items": [1, 2]},
    }
    assert jsonpath.first(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"
    assert jsonpath.find(obj, ".spec.items[*]") == [1, 2]
    assert jsonpath.first(obj, "{.spec.items[1]}") == 2
    assert jsonpath.first(obj, ".spec.missing") is None
    with pytest.raises(ValueError):
        jsonpath.compile_path(".spec..bad(")


def test_custom_resource_columns_are_typed_cells():
    rtype = registry.ResourceType(
        group="example.com",
        version="v1",
        plural="widgets",
        kind="Widget",
        namespaced=True,
        custom=True,
        printer_columns=(
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Wide", "type": "string", "jsonPath": ".spec.note", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ),
    )
    obj = {"metadata": {"name": "w1", "creationTimestamp": "2026-01-02T03:03:05Z"}, "spec": {"size": "x", "note": 3}}
    table = tables.table(rtype, [obj], now=NOW, resource_version="7")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Phase", "Wide", "Age"]
    assert table["columnDefinitions"][3]["priority"] == 1
    assert table["rows"][0]["cells"] == ["w1", None, None, "3", "60s"]
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def test_custom_resource_without_columns_gets_age_only():
    rtype = registry.ResourceType(group="g.io", version="v1", plural="things", kind="Thing", namespaced=True, custom=True)
    table = tables.table(rtype, [], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]


@pytest.mark.parametrize(
    "plural, columns",
    [
        ("namespaces", ["Name", "Status", "Age"]),
        ("configmaps", ["Name", "Data", "Age"]),
        ("secrets", ["Name", "Type", "Data", "Age"]),
        ("pods", ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"]),
        ("events", ["Name", "Last Seen", "Type", "Reason", "Object", "Message"]),
        ("serviceaccounts", ["Name", "Secrets", "Age"]),
        ("endpoints", ["Name", "Endpoints", "Age"]),
    ],
)
def test_builtin_column_sets(plural, columns):
    rtype = registry.Registry().lookup("", "v1", plural)
    assert [c["name"] for c in tables.table(rtype, [], now=NOW)["columnDefinitions"]] == columns


def test_pod_and_event_cells():
    pods = registry.Registry().lookup("", "v1", "pods")
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-02T03:04:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "127.2.0.1",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 1, "state": {"running": {}}},
                {"name": "b", "ready": False, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }
    assert tables.table(pods, [pod], now=NOW)["rows"][0]["cells"][:6] == ["p", "1/2", "CrashLoopBackOff", "3", "5s", "127.2.0.1"]
    events = registry.Registry().lookup("", "v1", "events")
    event = {
        "metadata": {"name": "e"},
        "lastTimestamp": "2026-01-02T03:03:05Z",
        "type": "Normal",
        "reason": "Created",
        "involvedObject": {"kind": "Widget", "name": "w1"},
        "message": "hi",
    }
    assert tables.table(events, [event], now=NOW)["rows"][0]["cells"] == ["e", "60s", "Normal", "Created", "widget/w1", "hi"]
