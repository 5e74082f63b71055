"""Server-side apply: the scenarios of the Kubernetes SSA documentation (ownership, conflicts,
force, removal, transferring ownership) and the contract's kubectl observations."""

import re

import pytest

from mlkube.local.apiserver import apply

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer"},
                "color": {"type": "string"},
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}},
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}
V = "example.com/v1"


def widget(**spec):
    return {"apiVersion": V, "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"}, "spec": spec}


def ssa(live, config, manager="kubectl", force=False, now="2026-01-01T00:01:00Z", **kwargs):
    return apply.apply(live, config, manager=manager, api_version=V, force=force, now=now, schema=WIDGET_SCHEMA, **kwargs)


def update(old, new, manager, now="2026-01-01T00:00:00Z", **kwargs):
    """A non-apply write as the core performs it: new object + recorded managedFields."""
    fields = apply.record_update(old, new, manager=manager, api_version=V, now=now, schema=WIDGET_SCHEMA, **kwargs)
    return {**new, "metadata": {**new["metadata"], "managedFields": fields}}


def owners(obj):
    return {(entry["manager"], entry["operation"]): entry["fieldsV1"] for entry in obj["metadata"]["managedFields"]}


def test_apply_creates_a_deployment_with_upstream_field_set():
    config = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    result = apply.apply(None, config, manager="kubectl", api_version="apps/v1", force=False, now="T")
    assert result["spec"] == config["spec"]
    assert result["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "T",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"nginx"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                                }
                            }
                        },
                    },
                },
            },
        }
    ]


def test_client_side_apply_then_server_side_apply_conflicts_on_spec_size():
    live = update(None, widget(size=3), "kubectl-client-side-apply")
    with pytest.raises(apply.Conflict) as caught:
        ssa(live, widget(size=5))
    assert caught.value.message(V) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using example.com/v1: .spec.size'
    )
    assert caught.value.conflicts == [("kubectl-client-side-apply", ".spec.size")]
    assert caught.value.causes(V) == [
        {
            "reason": "FieldManagerConflict",
            "field": ".spec.size",
            "message": 'conflict with "kubectl-client-side-apply" using example.com/v1',
        }
    ]


def test_force_conflicts_transfers_ownership():
    live = update(None, widget(size=3), "kubectl-client-side-apply")
    result = ssa(live, widget(size=5), force=True)
    assert result["spec"] == {"size": 5}
    assert owners(result) == {
        ("kubectl", "Apply"): {"f:spec": {"f:size": {}}},
        ("kubectl-client-side-apply", "Update"): {"f:spec": {}},
    }


def test_applying_the_same_value_shares_ownership_without_conflict():
    live = update(None, widget(size=3), "kubectl-client-side-apply")
    result = ssa(live, widget(size=3))
    assert owners(result)[("kubectl", "Apply")] == {"f:spec": {"f:size": {}}}
    assert owners(result)[("kubectl-client-side-apply", "Update")] == {"f:spec": {".": {}, "f:size": {}}}


def test_fields_the_applier_drops_are_removed_unless_someone_else_owns_them():
    first = ssa(None, widget(size=3, color="red"), manager="a")
    shared = ssa(first, widget(color="red"), manager="b")
    dropped = ssa(shared, widget(), manager="a")
    assert dropped["spec"] == {"color": "red"}
    assert set(owners(dropped)) == {("b", "Apply")}


def test_dropping_the_last_field_removes_the_emptied_parent():
    first = ssa(None, widget(size=3))
    assert "spec" not in ssa(first, {"apiVersion": V, "kind": "Widget", "metadata": {"name": "w1"}})


def test_map_list_items_are_owned_per_key():
    first = ssa(None, widget(items=[{"name": "a", "v": 1}]), manager="a")
    both = ssa(first, widget(items=[{"name": "b", "v": 2}]), manager="b")
    assert both["spec"]["items"] == [{"name": "a", "v": 1}, {"name": "b", "v": 2}]
    without_a = ssa(both, widget(), manager="a")
    assert without_a["spec"]["items"] == [{"name": "b", "v": 2}]
    with pytest.raises(apply.Conflict, match=r'conflict with "b": \.spec\.items\[name="b"\]\.v'):
        ssa(without_a, widget(items=[{"name": "b", "v": 3}]), manager="a")


def test_map_list_merge_keeps_live_order_for_server_only_items():
    live = ssa(None, widget(items=[{"name": "a"}, {"name": "b"}, {"name": "c"}]), manager="other")
    result = ssa(live, widget(items=[{"name": "c", "v": 1}, {"name": "a", "v": 2}]), manager="me")
    assert [item["name"] for item in result["spec"]["items"]] == ["b", "c", "a"]


def test_set_lists_are_owned_per_value():
    result = ssa(ssa(None, widget(tags=["x"]), manager="a"), widget(tags=["y"]), manager="b")
    assert result["spec"]["tags"] == ["x", "y"]
    assert owners(result)[("b", "Apply")] == {"f:spec": {"f:tags": {'v:"y"': {}}}}


def test_atomic_lists_are_replaced_and_owned_whole():
    live = ssa(None, widget(args=["a", "b"]), manager="a")
    with pytest.raises(apply.Conflict, match=r'conflict with "a": \.spec\.args$'):
        ssa(live, widget(args=["c"]), manager="b")


def test_two_conflicts_are_listed_per_manager():
    live = update(None, widget(size=1, color="red"), "kubectl-client-side-apply")
    live = ssa(live, widget(size=1, color="red"), manager="helm")
    with pytest.raises(apply.Conflict) as caught:
        ssa(live, widget(size=2, color="red", items=[]), manager="kubectl")
    assert caught.value.message(V) == (
        'Apply failed with 2 conflicts: conflicts with "helm":\n- .spec.size\n'
        'conflicts with "kubectl-client-side-apply" using example.com/v1:\n- .spec.size'
    )


def test_transferring_ownership_to_an_autoscaler():
    # SSA docs: the applier stops applying replicas after a controller took them over.
    applied = ssa(None, widget(size=3))
    scaled = update(applied, widget(size=5), "hpa-controller", now="2026-01-01T00:02:00Z")
    assert owners(scaled) == {("hpa-controller", "Update"): {"f:spec": {"f:size": {}}}}
    result = ssa(scaled, widget(), now="2026-01-01T00:03:00Z")
    assert result["spec"] == {"size": 5}


def test_record_update_for_kubectl_label():
    live = update(None, widget(size=1), "kubectl-create")
    labelled = {**live, "metadata": {**live["metadata"], "labels": {"tier": "gold"}}}
    fields = apply.record_update(live, labelled, manager="kubectl-label", api_version=V, now="T2")
    assert fields[1] == {
        "manager": "kubectl-label",
        "operation": "Update",
        "apiVersion": V,
        "time": "T2",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}},
    }
    assert fields[0]["manager"] == "kubectl-create"


def test_record_update_moves_changed_fields_and_drops_removed_ones():
    live = update(None, widget(size=1, color="red"), "creator")
    changed = update(live, widget(size=2), "editor", now="2026-01-01T00:05:00Z")
    assert owners(changed) == {("creator", "Update"): {"f:spec": {}}, ("editor", "Update"): {"f:spec": {"f:size": {}}}}


def test_a_write_that_changes_nothing_records_nothing():
    live = update(None, widget(size=1), "creator")
    assert apply.record_update(live, live, manager="other", api_version=V, now="T9") == live["metadata"]["managedFields"]


def test_sent_managed_fields_reset_with_an_empty_entry():
    live = update(None, widget(size=1), "creator")
    reset = {**live, "metadata": {**live["metadata"], "managedFields": [{}]}}
    assert apply.record_update(live, reset, manager="x", api_version=V, now="T") == []


def test_subresource_writers_are_separate_entries():
    live = update(None, widget(size=1), "kopf")
    with_status = {**live, "status": {"phase": "Ready"}}
    fields = apply.record_update(live, with_status, manager="kopf", api_version=V, now="T", subresource="status")
    assert [(entry["manager"], entry.get("subresource")) for entry in fields] == [("kopf", None), ("kopf", "status")]
    live = {**with_status, "metadata": {**with_status["metadata"], "managedFields": fields}}
    with pytest.raises(apply.Conflict, match=re.escape('conflict with "kopf" with subresource "status" using example.com/v1')):
        ssa(live, {**widget(size=1), "status": {"phase": "Failed"}})


def test_a_no_op_apply_keeps_the_entry_time():
    first = ssa(None, widget(size=1), now="T1")
    again = ssa(first, widget(size=1), now="T2")
    assert again == first


def test_invalid_configurations():
    with pytest.raises(apply.InvalidObject, match='omits key field "name"'):
        ssa(None, widget(items=[{"v": 1}]))
    with pytest.raises(apply.InvalidObject, match="duplicate entries"):
        ssa(None, widget(items=[{"name": "a"}, {"name": "a"}]))
    with pytest.raises(apply.InvalidObject, match="managedFields must be nil"):
        ssa(None, {**widget(), "metadata": {"name": "w1", "managedFields": []}})


def test_metadata_of_custom_resources_uses_object_meta_rules():
    result = ssa(None, {**widget(), "metadata": {"name": "w1", "finalizers": ["a"], "labels": {"x": "1"}}})
    assert owners(result)[("kubectl", "Apply")] == {"f:metadata": {"f:finalizers": {'v:"a"': {}}, "f:labels": {"f:x": {}}}}


def test_apply_does_not_mutate_its_inputs():
    live = update(None, widget(size=1, items=[{"name": "a", "v": 1}]), "creator")
    snapshot = repr(live)
    config = widget(items=[{"name": "a", "v": 2}])
    ssa(live, config, force=True)
    assert repr(live) == snapshot and config == widget(items=[{"name": "a", "v": 2}])
    ssa(live, {"apiVersion": V, "kind": "Widget", "spec": {"size": 1}})
    assert repr(live) == snapshot


def test_first_apply_to_an_untracked_object_conflicts_with_before_first_apply():
    untracked = widget(size=1)
    with pytest.raises(apply.Conflict, match=re.escape('conflict with "before-first-apply" using example.com/v1: .spec.size')):
        ssa(untracked, widget(size=2))
    result = ssa(untracked, widget(size=1, color="red"))
    assert owners(result)[("before-first-apply", "Update")] == {"f:spec": {".": {}, "f:size": {}}}


def test_update_managers_are_capped_into_ancient_changes():
    obj = update(None, widget(size=0), "m00", now="2026-01-01T00:00:00Z")
    for step in range(1, 13):
        obj = update(
            obj,
            {**obj, "metadata": {**obj["metadata"], "labels": {**obj["metadata"].get("labels", {}), f"l{step}": "x"}}},
            f"m{step:02d}",
            now=f"2026-01-01T00:00:{step:02d}Z",
        )
    managers = [entry["manager"] for entry in obj["metadata"]["managedFields"]]
    assert len(managers) == apply.MAX_UPDATE_MANAGERS
    assert managers[0] == "ancient-changes" and managers[1:] == [f"m{step:02d}" for step in range(4, 13)]
    ancient = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert set(ancient["f:metadata"]["f:labels"]) == {".", "f:l1", "f:l2", "f:l3"} and "f:spec" in ancient


def test_conflicts_are_grouped_by_manager_name_and_sorted_by_path():
    live = ssa(None, widget(size=1), manager="zeta")
    live = update(live, {**widget(size=1, color="red", args=["x"]), "metadata": live["metadata"]}, "alpha")
    with pytest.raises(apply.Conflict) as caught:
        ssa(live, widget(size=2, color="blue", args=["y"]), manager="me")
    assert caught.value.conflicts == [("alpha", ".spec.args"), ("alpha", ".spec.color"), ("zeta", ".spec.size")]
    assert str(caught.value) == (
        'Apply failed with 3 conflicts: conflicts with "alpha" using example.com/v1:\n'
        '- .spec.args\n- .spec.color\nconflicts with "zeta":\n- .spec.size'
    )


SET_CASES = {  # structured-merge-diff merge/set_test.go TestUpdateSet: (operations, object, owners)
    "apply_twice": (
        [("apply", "default", ["a", "c"]), ("apply", "default", ["a", "b", "c", "d"])],
        ["a", "b", "c", "d"],
        {"default": ["a", "b", "c", "d"]},
    ),
    "apply_update_apply_no_overlap": (
        [
            ("apply", "default", ["a", "c"]),
            ("update", "controller", ["a", "b", "c", "d"]),
            ("apply", "default", ["a", "aprime", "c", "cprime"]),
        ],
        ["a", "aprime", "b", "c", "cprime", "d"],
        {"default": ["a", "aprime", "c", "cprime"], "controller": ["b", "d"]},
    ),
    "apply_update_apply_with_overlap": (
        [("apply", "default", ["a", "c"]), ("update", "controller", ["a", "b", "c", "d"]), ("apply", "default", ["a", "b", "c"])],
        ["a", "b", "c", "d"],
        {"default": ["a", "b", "c"], "controller": ["b", "d"]},
    ),
    "apply_twice_reorder": (
        [("apply", "default", ["a", "b", "c", "d"]), ("apply", "default", ["a", "d", "c", "b"])],
        ["a", "d", "c", "b"],
        {"default": ["a", "b", "c", "d"]},
    ),
    "apply_twice_remove": (
        [("apply", "default", ["a", "b", "c", "d"]), ("apply", "default", ["a", "c"])],
        ["a", "c"],
        {"default": ["a", "c"]},
    ),
}


@pytest.mark.parametrize("name", SET_CASES)
def test_structured_merge_diff_set_cases(name):
    operations, expected_tags, expected_owners = SET_CASES[name]
    obj = None
    for operation, manager, tags in operations:
        if operation == "apply":
            obj = ssa(obj, widget(tags=tags), manager=manager)
        else:
            obj = update(obj, {**widget(tags=tags), "metadata": obj["metadata"]}, manager)
    assert sorted(obj["spec"]["tags"]) == sorted(expected_tags)  # upstream compares sets, not order
    owned = {
        entry["manager"]: sorted(json_value[2:].strip('"') for json_value in entry["fieldsV1"]["f:spec"]["f:tags"])
        for entry in obj["metadata"]["managedFields"]
    }
    assert owned == {manager: sorted(tags) for manager, tags in expected_owners.items()}


def test_reset_fields_are_neither_owned_nor_conflicting():
    live = update(None, widget(size=1), "creator")
    live = {**live, "status": {"phase": "Ready"}}
    live["metadata"]["managedFields"] = apply.record_update(
        {k: v for k, v in live.items() if k != "status"},
        live,
        manager="kopf",
        api_version=V,
        now="T",
        subresource="status",
        reset_fields=("spec",),
    )
    result = ssa(live, {**widget(size=1), "status": {"phase": "Failed"}}, reset_fields=("status",))
    assert owners(result)[("kubectl", "Apply")] == {"f:spec": {"f:size": {}}}
    assert ("kopf", "Update") in owners(result)


def test_update_with_duplicate_list_keys_is_still_recorded():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}]},
    }
    fields = apply.record_update(None, pod, manager="kubectl-create", api_version="v1", now="T")
    assert fields[0]["fieldsV1"]["f:spec"] == {".": {}, "f:containers": {}}


def test_unreadable_managed_fields_entries_are_dropped():
    live = update(None, widget(size=1), "creator")
    live["metadata"]["managedFields"] += [
        {"manager": "broken", "operation": "Update", "apiVersion": V, "fieldsType": "FieldsV1", "fieldsV1": ["x"]},
        {"manager": "odd", "operation": "Patch", "fieldsV1": {"f:spec": {}}},
        "not an entry",
    ]
    changed = {**live, "spec": {"size": 2}}
    fields = apply.record_update(live, changed, manager="editor", api_version=V, now="T5")
    assert [entry["manager"] for entry in fields] == ["creator", "editor"]


def test_entries_of_the_same_manager_identity_are_merged():
    raw = {"manager": "m", "operation": "Update", "apiVersion": V, "time": "T", "fieldsType": "FieldsV1"}
    live = {
        **widget(size=1, color="red"),
        "metadata": {
            "name": "w1",
            "managedFields": [{**raw, "fieldsV1": {"f:spec": {"f:size": {}}}}, {**raw, "fieldsV1": {"f:spec": {"f:color": {}}}}],
        },
    }
    fields = apply.record_update(
        live, {**live, "metadata": {"name": "w1", "labels": {"a": "b"}}}, manager="other", api_version=V, now="T2"
    )
    assert fields[0]["fieldsV1"] == {"f:spec": {"f:color": {}, "f:size": {}}}
