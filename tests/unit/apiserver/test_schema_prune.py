"""Pruning of unknown fields and defaulting, as kube-apiserver decodes custom resources."""

import copy

from mlkube.local.apiserver import schema

WIDGET = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "default": 3},
                "mode": {"type": "string", "nullable": True, "default": "fast"},
                "note": {"type": "string"},
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}},
                    },
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "config": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "integer"}}}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}},
                },
                "limits": {"type": "object", "properties": {"cpu": {"x-kubernetes-int-or-string": True}}},
                "tuning": {"type": "object", "properties": {"trials": {"type": "integer", "default": 10}}},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def test_unknown_fields_are_dropped_and_reported_with_their_paths():
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}, "bogus": 1},
        "spec": {
            "size": 2,
            "foo": 1,
            "ports": [{"name": "http", "extra": True}],
            "labels": {"any": "thing"},
            "limits": {"cpu": "500m", "gpu": 1},
        },
        "status": {"phase": "Ready", "kopf": {"progress": {}}},
        "extra": "x",
    }
    pruned, dropped = schema.prune(obj, WIDGET)
    assert pruned == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"size": 2, "ports": [{"name": "http"}], "labels": {"any": "thing"}, "limits": {"cpu": "500m"}},
        "status": {"phase": "Ready"},
    }
    assert dropped == ["extra", "metadata.bogus", "spec.foo", "spec.limits.gpu", "spec.ports[0].extra", "status.kopf"]


def test_pruning_never_mutates_its_input():
    obj = {"spec": {"foo": 1, "ports": [{"x": 1}]}}
    before = copy.deepcopy(obj)
    pruned, _ = schema.prune(obj, WIDGET)
    pruned["spec"]["size"] = 9
    assert obj == before


def test_preserve_unknown_fields_keeps_unknowns_but_still_prunes_declared_children():
    obj = {"spec": {"config": {"free": {"deep": [1, {"x": 2}]}, "known": {"a": 1, "b": 2}}}}
    pruned, dropped = schema.prune(obj, WIDGET)
    assert pruned["spec"]["config"] == {"free": {"deep": [1, {"x": 2}]}, "known": {"a": 1}}
    assert dropped == ["spec.config.known.b"]


def test_embedded_resources_keep_type_and_object_meta_but_prune_the_rest():
    obj = {
        "spec": {
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "weird": 1},
                "spec": {"replicas": 2, "unknown": 3},
            }
        }
    }
    pruned, dropped = schema.prune(obj, WIDGET)
    assert pruned["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"replicas": 2}}
    assert dropped == ["spec.template.metadata.weird", "spec.template.spec.unknown"]


def test_a_schema_preserving_everything_at_the_root_keeps_everything():
    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n"}, "spec": {"anything": [1, 2]}}
    assert schema.prune(obj, loose) == (obj, [])


def test_non_nullable_nulls_without_default_are_dropped_silently():
    pruned, dropped = schema.prune({"spec": {"note": None, "mode": None, "size": None}}, WIDGET)
    # note: dropped (no default); mode: nullable, kept; size: has a default, kept for defaulting
    assert pruned == {"spec": {"mode": None, "size": None}}
    assert dropped == []


def test_defaults_apply_only_where_the_parent_exists():
    assert schema.default({"metadata": {"name": "w"}}, WIDGET) == {"metadata": {"name": "w"}}
    assert schema.default({"spec": {}}, WIDGET) == {"spec": {"size": 3, "mode": "fast"}}
    assert schema.default({"spec": {"tuning": {}}}, WIDGET)["spec"]["tuning"] == {"trials": 10}


def test_defaults_fill_list_items_and_non_nullable_nulls_but_keep_nullable_nulls():
    obj = {"spec": {"size": None, "mode": None, "ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}]}}
    defaulted = schema.default(obj, WIDGET)
    assert defaulted["spec"] == {
        "size": 3,
        "mode": None,
        "ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}],
    }


def test_defaulting_copies_on_write_and_returns_the_object_itself_when_nothing_changes():
    complete = {"spec": {"size": 1, "mode": "slow", "ports": [{"name": "a", "protocol": "TCP"}]}}
    assert schema.default(complete, WIDGET) is complete
    partial = {"spec": {"ports": [{"name": "a"}]}, "status": {"phase": "x"}}
    before = copy.deepcopy(partial)
    defaulted = schema.default(partial, WIDGET)
    assert partial == before
    assert defaulted["status"] is partial["status"]


def test_default_values_are_copied_not_shared():
    shared = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]}}}
        },
    }
    first = schema.default({"spec": {}}, shared)
    first["spec"]["tags"].append("b")
    assert schema.default({"spec": {}}, shared)["spec"]["tags"] == ["a"]


def test_defaults_inside_a_defaulted_object_are_applied_too():
    nested = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "outer": {"type": "object", "default": {}, "properties": {"inner": {"type": "integer", "default": 7}}}
                },
            }
        },
    }
    assert schema.default({"spec": {}}, nested) == {"spec": {"outer": {"inner": 7}}}


def test_prune_default_validate_pipeline_accepts_a_typical_object():
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"ports": [{"name": "http"}], "unknown": 1},
    }
    pruned, _ = schema.prune(obj, WIDGET)
    defaulted = schema.default(pruned, WIDGET)
    assert schema.validate(defaulted, WIDGET) == []
    assert defaulted["spec"]["size"] == 3


def _random_value(node: dict, rng, depth: int = 0):
    """A value roughly shaped like `node`, with unknown keys, nulls and wrong types mixed in."""
    if depth and rng.random() < 0.05:
        return rng.choice([None, "x", 7, 1.5, True, [], {}])
    kind = node.get("type") or ("object" if "properties" in node else "")
    if kind == "object" or (not kind and node.get("x-kubernetes-preserve-unknown-fields")):
        value = {}
        if depth < 6:
            for name, sub in (node.get("properties") or {}).items():
                if rng.random() < 0.6:
                    value[name] = _random_value(sub, rng, depth + 1)
            if isinstance(node.get("additionalProperties"), dict):
                value[f"k{rng.randint(0, 3)}"] = _random_value(node["additionalProperties"], rng, depth + 1)
        if rng.random() < 0.3:
            value[f"unknown{rng.randint(0, 9)}"] = {"nested": [1, {"deep": None}]}
        return value
    if kind == "array":
        return [_random_value(node.get("items") or {}, rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "integer":
        return rng.randint(-5, 500)
    if kind == "number":
        return rng.choice([rng.random(), rng.randint(0, 3)])
    if kind == "boolean":
        return rng.random() < 0.5
    if node.get("enum"):
        return rng.choice(node["enum"] + ["not-in-enum"])
    return rng.choice(["", "abc", "2025-01-01T00:00:00Z", "a-b.c", "500m"])


def test_pruning_and_defaulting_are_idempotent_on_random_objects_of_the_real_crds():
    import pathlib
    import random

    import yaml

    root = pathlib.Path(__file__).parents[3]
    paths = sorted((root / "crds").glob("mlkube.io_*.yaml")) + sorted((root / "operator/mlkube/local/crds").glob("*.yaml"))
    rng = random.Random(20261124)
    for path in paths:
        crd_schema = yaml.safe_load(path.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for _ in range(40):
            obj = _random_value(crd_schema, rng)
            obj.update(apiVersion="x/v1", kind="X", metadata={"name": "n", "junk": 1})
            pruned, _ = schema.prune(obj, crd_schema)
            assert schema.prune(pruned, crd_schema) == (pruned, [])
            defaulted = schema.default(pruned, crd_schema)
            assert schema.default(defaulted, crd_schema) == defaulted
            assert all(isinstance(c, schema.Cause) for c in schema.validate(defaulted, crd_schema, old=defaulted))


def test_a_null_default_is_no_default():
    null_default = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"note": {"type": "string", "default": None}}}},
    }
    assert schema.default({"spec": {}}, null_default) == {"spec": {}}
    assert schema.prune({"spec": {"note": None}}, null_default) == ({"spec": {}}, [])
