"""Field paths, FieldsV1, and the typed compare/merge walks behind server-side apply."""

import pytest

from mlkube.local.apiserver import apply_fields as fields

DEPLOYMENT = fields.root_node("apps/v1", "Deployment", None)
POD_SPEC_PATH = ("f:spec", "f:template", "f:spec")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("f:spec", "f:size"), ".spec.size"),
        (("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"), '.spec.containers[name="c"].image'),
        (("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'), '.ports[containerPort=80,protocol="TCP"]'),
        (("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]'),
        (("f:args", "i:0"), ".args[0]"),
    ],
)
def test_path_strings_follow_upstream(path, text):
    assert fields.path_string(path) == text


def test_fields_v1_round_trip_with_member_markers():
    document = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}},
    }
    paths = fields.decode_fields(document)
    assert ("f:metadata", "f:labels") in paths and ("f:metadata", "f:labels", "f:app") in paths
    assert ("f:spec",) not in paths
    assert fields.encode_fields(paths) == document


def test_fields_v1_orders_field_names_before_keys_and_values():
    encoded = fields.encode_fields({("f:x", 'v:"b"'), ("f:x", "f:a"), ("f:x", 'k:{"n":1}')})
    assert list(encoded["f:x"]) == ["f:a", 'k:{"n":1}', 'v:"b"']


def test_decode_rejects_non_objects():
    with pytest.raises(fields.InvalidObject):
        fields.decode_fields({"f:a": []})


def test_item_keys_use_defaults():
    ports = DEPLOYMENT.field("spec").field("template").field("spec").field("containers").item().field("ports")
    assert fields.item_element({"containerPort": 80}, ports) == 'k:{"containerPort":80,"protocol":"TCP"}'
    schema_list = fields.SchemaNode(
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "zone"],
            "items": {"properties": {"zone": {"type": "string", "default": "a"}}},
        }
    )
    assert fields.item_element({"name": "n"}, schema_list) == 'k:{"name":"n","zone":"a"}'


def test_compare_reports_added_containers_modified_leaves_and_removed_subtrees():
    old = {"spec": {"size": 1, "gone": {"a": 1}}}
    new = {"spec": {"size": 2, "labels": {"x": "1"}}}
    added, modified, removed = fields.compare(old, new, fields.UNTYPED)
    assert added == {("f:spec", "f:labels"), ("f:spec", "f:labels", "f:x")}
    assert modified == {("f:spec", "f:size")}
    assert removed == {("f:spec", "f:gone"), ("f:spec", "f:gone", "f:a")}


def test_compare_distinguishes_true_from_one_and_empty_from_absent():
    assert fields.compare({"a": 1}, {"a": True}, fields.UNTYPED)[1] == {("f:a",)}
    assert fields.compare({}, {"a": {}}, fields.UNTYPED)[0] == {("f:a",)}
    assert fields.compare({"a": {"b": [1]}}, {"a": {"b": [1]}}, fields.UNTYPED) == (set(), set(), set())


def test_compare_walks_map_lists_by_key_not_position():
    containers = [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]
    old = {"spec": {"template": {"spec": {"containers": containers}}}}
    new = {"spec": {"template": {"spec": {"containers": [containers[1], dict(containers[0], image="3")]}}}}
    added, modified, removed = fields.compare(old, new, DEPLOYMENT)
    assert (added, removed) == (set(), set())
    assert modified == {POD_SPEC_PATH + ("f:containers", 'k:{"name":"a"}', "f:image")}


def test_atomic_structs_are_single_leaves():
    owned = fields.field_set({"spec": {"selector": {"matchLabels": {"app": "x"}}}}, DEPLOYMENT)
    assert owned == {("f:spec", "f:selector")}
    merged = fields.merge(
        {"spec": {"selector": {"matchLabels": {"a": "1"}}}}, {"spec": {"selector": {"matchLabels": {"b": "2"}}}}, DEPLOYMENT
    )
    assert merged == {"spec": {"selector": {"matchLabels": {"b": "2"}}}}


def test_merge_unions_granular_maps_and_sets_and_drops_nulls():
    live = {"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]}, "spec": {"replicas": 1}}
    config = {"metadata": {"labels": {"b": "2"}, "finalizers": ["y", "x"]}, "spec": {"replicas": None}}
    assert fields.merge(live, config, DEPLOYMENT) == {
        "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["y", "x"]},
        "spec": {},
    }


def test_remove_paths_drops_emptied_parents_unless_owned():
    value = {"spec": {"a": 1, "nested": {"b": 2}}}
    doomed = fields.tree({("f:spec", "f:nested", "f:b")})
    assert fields.remove_paths(value, doomed, {}, fields.UNTYPED) == {"spec": {"a": 1}}
    kept = fields.tree({("f:spec", "f:nested")})
    assert fields.remove_paths(value, doomed, kept, fields.UNTYPED) == {"spec": {"a": 1, "nested": {}}}


def test_duplicate_keys_are_invalid():
    containers = DEPLOYMENT.field("spec").field("template").field("spec").field("containers")
    with pytest.raises(fields.InvalidObject, match=r'duplicate entries for key \[name="a"\]'):
        fields.field_set([{"name": "a"}, {"name": "a"}], containers)
