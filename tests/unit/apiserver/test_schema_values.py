"""OpenAPI value validation of custom resources: kube-apiserver's exact reasons, messages and fields."""

import pytest

from mlkube.local.apiserver import schema, schema_causes
from mlkube.local.apiserver.schema import Cause


def _spec(**properties) -> dict:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}}


def _errors(properties: dict, spec: dict) -> list[tuple[str, str, str]]:
    return [(c.reason, c.field, c.message) for c in schema.validate({"spec": spec}, _spec(**properties))]


@pytest.mark.parametrize(
    ("prop", "value", "expected"),
    [
        (
            {"type": "integer", "minimum": 1},
            0,
            ("FieldValueInvalid", "spec.x", "Invalid value: 0: spec.x in body should be greater than or equal to 1"),
        ),
        (
            {"type": "integer", "minimum": 1, "exclusiveMinimum": True},
            1,
            ("FieldValueInvalid", "spec.x", "Invalid value: 1: spec.x in body should be greater than 1"),
        ),
        (
            {"type": "integer", "maximum": 10},
            11,
            ("FieldValueInvalid", "spec.x", "Invalid value: 11: spec.x in body should be less than or equal to 10"),
        ),
        (
            {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
            1.5,
            ("FieldValueInvalid", "spec.x", "Invalid value: 1.5: spec.x in body should be less than 1.5"),
        ),
        (
            {"type": "number", "minimum": 0.5},
            0.25,
            ("FieldValueInvalid", "spec.x", "Invalid value: 0.25: spec.x in body should be greater than or equal to 0.5"),
        ),
        (
            {"type": "integer", "multipleOf": 3},
            7,
            ("FieldValueInvalid", "spec.x", "Invalid value: 7: spec.x in body should be a multiple of 3"),
        ),
        (
            {"type": "string", "minLength": 3},
            "ab",
            ("FieldValueInvalid", "spec.x", 'Invalid value: "ab": spec.x in body should be at least 3 chars long'),
        ),
        ({"type": "string", "maxLength": 3}, "abcd", ("FieldValueTooLong", "spec.x", "Too long: may not be more than 3 bytes")),
        (
            {"type": "string", "pattern": "^[a-z]+$"},
            "A1",
            ("FieldValueInvalid", "spec.x", "Invalid value: \"A1\": spec.x in body should match '^[a-z]+$'"),
        ),
        (
            {"type": "string", "enum": ["red", "blue"]},
            "green",
            ("FieldValueNotSupported", "spec.x", 'Unsupported value: "green": supported values: "red", "blue"'),
        ),
        (
            {"type": "integer", "enum": [1, 2]},
            3,
            ("FieldValueNotSupported", "spec.x", 'Unsupported value: 3: supported values: "1", "2"'),
        ),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 2},
            ["a"],
            ("FieldValueInvalid", "spec.x", "Invalid value: 1: spec.x in body should have at least 2 items"),
        ),
        (
            {"type": "array", "items": {"type": "string"}, "maxItems": 1},
            ["a", "b", "c"],
            ("FieldValueTooMany", "spec.x", "Too many: 3: must have at most 1 item"),
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
            {"a": "1", "b": "2"},
            ("FieldValueTooMany", "spec.x", "Too many: 2: must have at most 1 item"),
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2},
            {"a": "1"},
            ("FieldValueInvalid", "spec.x", "Invalid value: 1: spec.x in body should have at least 2 properties"),
        ),
        (
            {"type": "string", "format": "date-time"},
            "yesterday",
            (
                "FieldValueTypeInvalid",
                "spec.x",
                'Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday"',
            ),
        ),
        (
            {"type": "string", "format": "date"},
            "2024-02-30",
            ("FieldValueTypeInvalid", "spec.x", 'Invalid value: "2024-02-30": spec.x in body must be of type date: "2024-02-30"'),
        ),
        (
            {"type": "string", "format": "byte"},
            "not base64!",
            (
                "FieldValueTypeInvalid",
                "spec.x",
                'Invalid value: "not base64!": spec.x in body must be of type byte: "not base64!"',
            ),
        ),
        (
            {"type": "string", "format": "uuid"},
            "nope",
            ("FieldValueTypeInvalid", "spec.x", 'Invalid value: "nope": spec.x in body must be of type uuid: "nope"'),
        ),
        (
            {"type": "string", "format": "ipv4"},
            "1.2.3",
            ("FieldValueTypeInvalid", "spec.x", 'Invalid value: "1.2.3": spec.x in body must be of type ipv4: "1.2.3"'),
        ),
        (
            {"type": "string", "format": "duration"},
            "5 parsecs",
            (
                "FieldValueTypeInvalid",
                "spec.x",
                'Invalid value: "5 parsecs": spec.x in body must be of type duration: "5 parsecs"',
            ),
        ),
    ],
)
def test_each_keyword_fails_with_the_upstream_message(prop, value, expected):
    assert _errors({"x": prop}, {"x": value}) == [expected]


@pytest.mark.parametrize(
    ("prop", "value", "message"),
    [
        ({"type": "integer"}, "3", 'Invalid value: "string": spec.x in body must be of type integer: "string"'),
        ({"type": "integer"}, True, 'Invalid value: "boolean": spec.x in body must be of type integer: "boolean"'),
        ({"type": "integer"}, 1.5, 'Invalid value: "number": spec.x in body must be of type integer: "number"'),
        ({"type": "string"}, {"a": 1}, 'Invalid value: "object": spec.x in body must be of type string: "object"'),
        ({"type": "object"}, [1], 'Invalid value: "array": spec.x in body must be of type object: "array"'),
        ({"type": "boolean"}, 0, 'Invalid value: "integer": spec.x in body must be of type boolean: "integer"'),
        ({"type": "string"}, None, 'Invalid value: "null": spec.x in body must be of type string: "null"'),
        (
            {"type": "integer", "x-kubernetes-int-or-string": True},
            False,
            'Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean"',
        ),
    ],
)
def test_type_mismatches_are_type_invalid(prop, value, message):
    assert _errors({"x": prop}, {"x": value}) == [("FieldValueTypeInvalid", "spec.x", message)]


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ({"type": "integer"}, 2.0),  # JSON 2.0 decodes as a float; upstream accepts an integral one
        ({"type": "number"}, 2),
        ({"type": "integer", "format": "int32"}, 7),
        ({"type": "number", "format": "float"}, 0.5),
        ({"x-kubernetes-int-or-string": True}, "50%"),
        ({"x-kubernetes-int-or-string": True}, 3),
        ({"type": "string", "nullable": True}, None),
        ({"type": "string", "format": "date-time"}, "2025-01-02T03:04:05.123+02:00"),
        ({"type": "string", "format": "duration"}, "1h30m"),
        ({"type": "string", "format": "quantity"}, "500Mi"),
        ({"type": "string", "format": "not-a-format"}, "anything"),  # unknown formats are ignored
        ({"type": "integer", "minimum": 0.5}, 0),  # upstream compares an int64 with int64(0.5)
    ],
)
def test_valid_values_pass(prop, value):
    assert _errors({"x": prop}, {"x": value}) == []


def test_required_fields_are_reported_at_their_own_path():
    properties = {
        "s": {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    }
    assert _errors(properties, {"s": {"b": "x"}}) == [("FieldValueRequired", "spec.s.a", "Required value")]
    top = {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}
    assert schema.validate({"metadata": {"name": "w"}}, top) == [Cause("FieldValueRequired", "Required value", "spec")]


def test_array_items_and_map_values_carry_indexes_and_keys_in_the_field():
    properties = {
        "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 2}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    assert _errors(properties, {"items": [{"name": "ok"}, {"name": "too long"}], "labels": {"a": 1}}) == [
        ("FieldValueTooLong", "spec.items[1].name", "Too long: may not be more than 2 bytes"),
        (
            "FieldValueTypeInvalid",
            "spec.labels.a",
            'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        ),
    ]


def test_string_checks_stop_at_the_first_failure_but_format_is_separate():
    prop = {"type": "string", "maxLength": 3, "pattern": "^[0-9]+$", "format": "ipv4"}
    assert [c[0] for c in _errors({"x": prop}, {"x": "abcdef"})] == ["FieldValueTooLong", "FieldValueTypeInvalid"]


def test_all_errors_are_aggregated():
    properties = {"a": {"type": "integer", "minimum": 1}, "b": {"type": "string", "enum": ["x"]}}
    assert [c[1] for c in _errors(properties, {"a": 0, "b": "y"})] == ["spec.a", "spec.b"]


def test_enum_does_not_confuse_booleans_with_numbers():
    assert _errors({"x": {"enum": [1, "a"], "x-kubernetes-preserve-unknown-fields": True}}, {"x": True}) == [
        ("FieldValueNotSupported", "spec.x", 'Unsupported value: true: supported values: "1", "a"')
    ]


def test_additional_properties_false_forbids_undeclared_keys():
    prop = {"type": "object", "additionalProperties": False}
    assert _errors({"x": prop}, {"x": {"k": 1}}) == [
        ("FieldValueInvalid", "spec.x", 'Invalid value: "k": spec.x.k in body is a forbidden property')
    ]


def test_list_type_set_reports_the_second_occurrence_of_each_duplicate():
    prop = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    assert _errors({"x": prop}, {"x": ["a", "b", "a", "a", "b"]}) == [
        ("FieldValueDuplicate", "spec.x[2]", 'Duplicate value: "a"'),
        ("FieldValueDuplicate", "spec.x[4]", 'Duplicate value: "b"'),
    ]
    numbers = {"type": "array", "x-kubernetes-list-type": "set", "items": {"x-kubernetes-int-or-string": True}}
    assert _errors({"x": numbers}, {"x": [1, "1", 1]}) == [("FieldValueDuplicate", "spec.x[2]", "Duplicate value: 1")]


def test_list_type_map_reports_duplicate_keys_as_go_maps():
    prop = {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name", "port"],
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "port": {"type": "integer", "default": 80}},
        },
    }
    value = [{"name": "a"}, {"name": "a", "port": 80}, {"name": "a", "port": 81}]
    assert _errors({"x": prop}, {"x": value}) == [
        ("FieldValueDuplicate", "spec.x[1]", 'Duplicate value: map[string]interface {}{"name":"a", "port":80}')
    ]


def test_embedded_resources_need_api_version_and_kind():
    prop = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}
    assert _errors({"x": prop}, {"x": {"kind": 5, "spec": {}}}) == [
        ("FieldValueRequired", "spec.x.apiVersion", "Required value: must not be empty"),
        ("FieldValueInvalid", "spec.x.kind", "Invalid value: 5: must be a string"),
    ]


def test_any_of_failures_are_worded_like_kube_openapi():
    prop = {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}
    found = _errors({"x": prop}, {"x": "c"})
    assert found[0] == ("FieldValueInvalid", "<nil>", 'Invalid value: "": "spec.x" must validate at least one schema (anyOf)')
    assert found[1][:2] == ("FieldValueInvalid", "spec.x")


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (0, "0"),
        (1.0, "1"),
        (1.5, "1.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (True, "true"),
        (None, '"null"'),
        ('a"b', '"a\\"b"'),
        ({"b": [1, None], "a": "x"}, 'map[string]interface {}{"a":"x", "b":[]interface {}{1, interface {}(nil)}}'),
    ],
)
def test_bad_values_are_printed_like_go_prints_them(value, rendered):
    assert schema_causes.go_value(value) == rendered


def test_non_string_enum_values_are_listed_as_json():
    prop = {"enum": [2.0, {"b": 1, "a": True}, None], "x-kubernetes-preserve-unknown-fields": True}
    assert _errors({"x": prop}, {"x": 3})[0][2] == (
        'Unsupported value: 3: supported values: "2", "{\\"a\\":true,\\"b\\":1}", "null"'
    )
