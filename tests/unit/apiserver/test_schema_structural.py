"""structural_errors: why kube-apiserver would refuse a CRD schema, with its fields and wording."""

import pytest

from mlkube.local.apiserver import schema

ROOT = "spec.versions[0].schema.openAPIV3Schema"


def _errors(openapi: dict) -> list[tuple[str, str, str]]:
    return [(c.reason, c.field, c.message) for c in schema.structural_errors(openapi, path=ROOT)]


def _with_spec(spec: dict) -> dict:
    return {"type": "object", "properties": {"spec": spec}}


def test_a_good_schema_has_no_errors_and_the_default_path_is_v1beta1_style():
    good = _with_spec(
        {"type": "object", "properties": {"size": {"type": "integer"}}, "x-kubernetes-validations": [{"rule": "self.size > 0"}]}
    )
    assert schema.structural_errors(good) == []
    bad = _with_spec({"properties": {}})
    assert schema.structural_errors(bad)[0].field == "spec.validation.openAPIV3Schema.properties[spec].type"


@pytest.mark.parametrize(
    ("openapi", "expected"),
    [
        (
            _with_spec({"properties": {"size": {"type": "integer"}}}),
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].type",
                "Required value: must not be empty for specified object fields",
            ),
        ),
        (
            _with_spec({"type": "array"}),
            ("FieldValueRequired", f"{ROOT}.properties[spec].items", "Required value: must be specified"),
        ),
        (
            _with_spec({"type": "array", "items": {}}),
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].items.type",
                "Required value: must not be empty for specified array items",
            ),
        ),
        ({"properties": {}}, ("FieldValueRequired", f"{ROOT}.type", "Required value: must not be empty at the root")),
        ({"type": "string"}, ("FieldValueInvalid", f"{ROOT}.type", 'Invalid value: "string": must be object at the root')),
        (
            {"type": "object", "additionalProperties": {"type": "string"}},
            ("FieldValueForbidden", f"{ROOT}.additionalProperties", "Forbidden: must not be used at the root"),
        ),
        (
            {"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
            (
                "FieldValueForbidden",
                f"{ROOT}.properties[metadata]",
                "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            ),
        ),
        (
            _with_spec({"type": "object", "x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}),
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].x-kubernetes-preserve-unknown-fields",
                "Invalid value: true: must be false if x-kubernetes-int-or-string is true",
            ),
        ),
        (
            _with_spec({"type": "string", "x-kubernetes-embedded-resource": True}),
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].type",
                'Invalid value: "string": must be object if x-kubernetes-embedded-resource is true',
            ),
        ),
        (
            _with_spec({"type": "object", "x-kubernetes-embedded-resource": True}),
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].properties",
                "Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ),
        ),
        (
            _with_spec({"type": "string", "pattern": "(unclosed"}),
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].pattern",
                'Invalid value: "(unclosed": must be a valid regular expression, but isn\'t: '
                "error parsing regexp: missing ), unterminated subpattern: `(unclosed`",
            ),
        ),
        (
            _with_spec({"type": "string", "pattern": "^(?!x)"}),
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].pattern",
                'Invalid value: "^(?!x)": must be a valid regular expression, but isn\'t: '
                "error parsing regexp: invalid or unsupported Perl syntax: `(?!`",
            ),
        ),
        (
            _with_spec({"type": "object", "anyOf": [{"type": "object", "properties": {"a": {}}}]}),
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].properties[a]",
                f"Required value: because it is defined in {ROOT}.properties[spec].anyOf[0].properties[a]",
            ),
        ),
    ],
)
def test_structural_invariants(openapi, expected):
    assert expected in _errors(openapi)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"type": "object", "$ref": "#/definitions/x"},
            ("FieldValueForbidden", f"{ROOT}.properties[spec].$ref", "Forbidden: $ref is not supported"),
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            (
                "FieldValueForbidden",
                f"{ROOT}.properties[spec].additionalProperties",
                "Forbidden: additionalProperties and properties are mutual exclusive",
            ),
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            (
                "FieldValueForbidden",
                f"{ROOT}.properties[spec].uniqueItems",
                "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ),
        ),
        (
            {"type": "object", "x-kubernetes-preserve-unknown-fields": False},
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].x-kubernetes-preserve-unknown-fields",
                "Invalid value: false: must be true or undefined",
            ),
        ),
        (
            {"type": "tuple"},
            (
                "FieldValueNotSupported",
                f"{ROOT}.properties[spec].type",
                'Unsupported value: "tuple": supported values: "array", "boolean", "integer", "number", "object", "string"',
            ),
        ),
        (
            {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"},
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].x-kubernetes-list-map-keys",
                "Required value: must not be empty if x-kubernetes-list-type is map",
            ),
        ),
        (
            {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"},
            (
                "FieldValueNotSupported",
                f"{ROOT}.properties[spec].x-kubernetes-list-type",
                'Unsupported value: "bag": supported values: "atomic", "set", "map"',
            ),
        ),
        (
            {"type": "string", "x-kubernetes-list-type": "set"},
            (
                "FieldValueInvalid",
                f"{ROOT}.properties[spec].type",
                'Invalid value: "string": must be array if x-kubernetes-list-type is specified',
            ),
        ),
        (
            {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            (
                "FieldValueRequired",
                f"{ROOT}.properties[spec].items.properties[name].default",
                "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ),
        ),
    ],
)
def test_static_schema_checks(spec, expected):
    assert expected in _errors(_with_spec(spec))


def test_defaults_are_forbidden_in_metadata():
    openapi = {"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}
    assert (
        "FieldValueForbidden",
        f"{ROOT}.properties[metadata].default",
        "Forbidden: must not be set in top-level metadata",
    ) in _errors(openapi)


def test_rules_that_do_not_compile_are_reported_on_the_rule():
    spec = {
        "type": "object",
        "properties": {"size": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.size >"}, {"rule": "ip(self.size) > 1"}],
    }
    found = _errors(_with_spec(spec))
    assert [f[1] for f in found] == [
        f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule",
        f"{ROOT}.properties[spec].x-kubernetes-validations[1].rule",
    ]
    assert found[0][2].startswith('Invalid value: apiextensions.ValidationRule{Rule:"self.size >", ')
    assert "compilation failed: ERROR: <input>:1:12: Syntax error" in found[0][2]
    assert found[1][2].endswith("compilation failed: ERROR: <input>: undeclared reference to 'ip' (in container '')")


def test_rule_fields_are_checked_before_compilation():
    spec = {
        "type": "object",
        "properties": {"size": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": ""},
            {"rule": "self.size > 0", "message": " "},
            {"rule": "self.size > 0", "reason": "Nope"},
            {"rule": "self.size > 0", "fieldPath": ".nope"},
            {"rule": "self.size >"},
        ],
    }
    assert [(r, f.rsplit(".", 1)[1]) for r, f, _ in _errors(_with_spec(spec))] == [
        ("FieldValueRequired", "rule"),
        ("FieldValueInvalid", "message"),
        ("FieldValueNotSupported", "reason"),
        ("FieldValueInvalid", "fieldPath"),
    ]  # and the broken rule is not compiled while the node has other errors, as upstream


def test_transition_rules_are_refused_where_old_values_cannot_be_correlated():
    spec = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}
        },
    }
    assert _errors(_with_spec(spec)) == [
        (
            "FieldValueInvalid",
            f"{ROOT}.properties[spec].properties[tags].items.x-kubernetes-validations[0].rule",
            f'Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema within {ROOT}.properties[spec].properties[tags]',
        )
    ]
    keyed = {
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                    "x-kubernetes-validations": [{"rule": "self == oldSelf"}],
                },
            }
        },
    }
    assert _errors(_with_spec(keyed)) == []


def test_rules_are_not_compiled_when_the_schema_is_not_structural():
    spec = {"properties": {"size": {"type": "integer"}}, "x-kubernetes-validations": [{"rule": "self.size >"}]}
    assert [f[1] for f in _errors(_with_spec(spec))] == [f"{ROOT}.properties[spec].type"]


def test_int_or_string_patterns_are_structural():
    quantity = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    assert _errors(_with_spec({"type": "object", "properties": {"cpu": quantity}})) == []
    typed_any_of = {"type": "object", "anyOf": [{"type": "string"}]}
    assert _errors(_with_spec(typed_any_of)) == [
        ("FieldValueForbidden", f"{ROOT}.properties[spec].anyOf[0].type", "Forbidden: must be empty to be structural")
    ]


def test_defaults_must_be_valid_and_pruned():
    spec = {
        "type": "object",
        "properties": {
            "size": {"type": "integer", "minimum": 1, "default": 0},
            "mode": {"type": "string", "enum": ["a"], "default": "a"},
            "config": {"type": "object", "properties": {"x": {"type": "string"}}, "default": {"x": "ok", "y": 1}},
            "ports": {"type": "array", "items": {"type": "object", "properties": {"p": {"type": "integer", "default": "80"}}}},
        },
    }
    assert _errors(_with_spec(spec)) == [
        (
            "FieldValueInvalid",
            f"{ROOT}.properties[spec].properties[size].default",
            "Invalid value: 0: in body should be greater than or equal to 1",
        ),
        (
            "FieldValueInvalid",
            f"{ROOT}.properties[spec].properties[config].default",
            'Invalid value: map[string]interface {}{"x":"ok", "y":1}: must not have unknown fields',
        ),
        (
            "FieldValueTypeInvalid",
            f"{ROOT}.properties[spec].properties[ports].items.properties[p].default",
            'Invalid value: "string": in body must be of type integer: "string"',
        ),
    ]


def test_rules_naming_undeclared_fields_are_refused_like_cel_go_type_checking():
    spec = {
        "type": "object",
        "properties": {
            "size": {"type": "integer"},
            "max-surge": {"type": "integer"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "x-kubernetes-validations": [
            {"rule": "self.sise > 0"},
            {"rule": "self.max__dash__surge >= 0 && self.env.ANY != '' && string(self.size) != 'self.nope'"},
            {"rule": "self.size > 0", "messageExpression": "'bad ' + string(self.sizes)"},
        ],
    }
    found = _errors(_with_spec(spec))
    assert [(f[1].rsplit(".", 1)[1], f[2].rsplit(": ", 1)[1]) for f in found] == [
        ("rule", "undefined field 'sise'"),
        ("messageExpression", "undefined field 'sizes'"),
    ]
    assert "compilation failed: ERROR: <input>:1:5: undefined field 'sise'" in found[0][2]
    root_rule = {
        "type": "object",
        "properties": {"spec": {"type": "object"}},
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('a') && self.kind == 'W'"}],
    }
    assert _errors(root_rule) == []
