"""x-kubernetes-validations: CEL rules evaluated on writes with kube-apiserver's wording."""

import pytest

from mlkube.local.apiserver import cel, schema
from mlkube.local.apiserver.schema import Cause


def _widget(rules: list[dict], **properties) -> dict:
    spec = {"type": "object", "properties": properties or {"size": {"type": "integer"}}, "x-kubernetes-validations": rules}
    return {"type": "object", "properties": {"spec": spec}}


def test_a_failed_rule_reports_its_message_on_the_schema_node():
    crd = _widget([{"rule": "self.size <= 100", "message": "size too big"}])
    assert schema.validate({"spec": {"size": 101}}, crd) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": size too big', "spec")
    ]
    assert schema.validate({"spec": {"size": 100}}, crd) == []


def test_a_rule_without_message_reports_the_rule():
    crd = _widget([{"rule": "self.size % 2 == 0"}])
    assert schema.validate({"spec": {"size": 3}}, crd) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": failed rule: self.size % 2 == 0', "spec")
    ]


def test_message_expression_field_path_and_reason():
    crd = _widget(
        [
            {
                "rule": "self.size > 0",
                "messageExpression": "'size must be positive, got ' + string(self.size)",
                "fieldPath": ".size",
                "reason": "FieldValueForbidden",
            }
        ]
    )
    assert schema.validate({"spec": {"size": -2}}, crd) == [
        Cause("FieldValueForbidden", "Forbidden: size must be positive, got -2", "spec.size")
    ]


def test_a_failing_message_expression_falls_back_to_the_message():
    crd = _widget([{"rule": "self.size > 0", "message": "positive", "messageExpression": "self.missing + 'x'"}])
    assert schema.validate({"spec": {"size": 0}}, crd)[0].message == 'Invalid value: "object": positive'


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("FieldValueRequired", "Required value: need it"),
        ("FieldValueDuplicate", 'Duplicate value: "object"'),
        ("FieldValueInvalid", 'Invalid value: "object": need it'),
    ],
)
def test_reasons_follow_upstream_field_errors(reason, message):
    crd = _widget([{"rule": "false", "message": "need it", "reason": reason}])
    assert schema.validate({"spec": {}}, crd) == [Cause(reason, message, "spec")]


def test_rules_on_nested_nodes_see_their_own_value_as_self():
    crd = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= 0", "message": "negative"}]},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "x-kubernetes-validations": [{"rule": "self.name.startsWith('x')"}],
                        },
                    },
                    "env": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''"}]},
                    },
                },
            }
        },
    }
    found = schema.validate({"spec": {"replicas": -1, "items": [{"name": "xa"}, {"name": "b"}], "env": {"A": ""}}}, crd)
    assert found == [
        Cause("FieldValueInvalid", 'Invalid value: "integer": negative', "spec.replicas"),
        Cause("FieldValueInvalid", "Invalid value: \"object\": failed rule: self.name.startsWith('x')", "spec.items[1]"),
        Cause("FieldValueInvalid", "Invalid value: \"string\": failed rule: self != ''", "spec.env[A]"),
    ]


def test_transition_rules_run_only_on_update_with_an_old_value():
    crd = _widget([{"rule": "self.size >= oldSelf.size", "message": "size may not shrink"}])
    assert schema.validate({"spec": {"size": 1}}, crd) == []
    assert schema.validate({"spec": {"size": 1}}, crd, old={"spec": {"size": 2}}) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": size may not shrink', "spec")
    ]
    assert schema.validate({"spec": {"size": 3}}, crd, old={"spec": {"size": 2}}) == []
    assert schema.validate({"spec": {"size": 1}}, crd, old={"metadata": {}}) == []  # spec is new: no oldSelf


def test_transition_rules_correlate_list_type_map_items_by_key():
    crd = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                            "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}],
                        },
                    }
                },
            }
        },
    }
    old = {"spec": {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}}
    new = {"spec": {"ports": [{"name": "b", "port": 3}, {"name": "a", "port": 1}, {"name": "c", "port": 9}]}}
    assert schema.validate(new, crd, old=old) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": port is immutable', "spec.ports[0]")
    ]


def test_number_fields_are_doubles_in_cel_even_when_json_has_an_integer():
    crd = _widget([{"rule": "(has(self.test) ? self.test : 0.2) + 0.5 < 1.0"}], test={"type": "number"})
    assert schema.validate({"spec": {"test": 0}}, crd) == []
    assert len(schema.validate({"spec": {"test": 1}}, crd)) == 1


def test_date_time_strings_are_timestamps_and_escaped_names_are_reachable():
    crd = _widget(
        [{"rule": "self.start < self.end"}, {"rule": "self.max__dash__surge == 1"}],
        start={"type": "string", "format": "date-time"},
        end={"type": "string", "format": "date-time"},
        **{"max-surge": {"type": "integer"}},
    )
    ok = {"spec": {"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:00:01Z", "max-surge": 1}}
    assert schema.validate(ok, crd) == []
    assert len(schema.validate({"spec": {**ok["spec"], "start": "2026-01-01T00:00:00Z"}}, crd)) == 1


def test_macros_strings_and_kubernetes_list_functions():
    crd = _widget(
        [
            {"rule": "self.tags.all(t, t.matches('^[a-z]+$')) && self.tags.exists_one(t, t == 'a')"},
            {"rule": "self.tags.map(t, t.upperAscii()).filter(t, t == 'B').size() == 1"},
            {"rule": "self.nums.isSorted() && self.nums.indexOf(2) == 1 && 'a,b'.split(',').size() == 2"},
            {"rule": "isURL(self.endpoint) && url(self.endpoint).getHost() == 'svc:8080'"},
        ],
        tags={"type": "array", "items": {"type": "string"}},
        nums={"type": "array", "items": {"type": "integer"}},
        endpoint={"type": "string"},
    )
    assert schema.validate({"spec": {"tags": ["a", "b"], "nums": [1, 2, 3], "endpoint": "http://svc:8080/x"}}, crd) == []
    assert len(schema.validate({"spec": {"tags": ["a", "a", "b"], "nums": [2, 1], "endpoint": "http://svc:8080/x"}}, crd)) == 2


def test_runtime_errors_are_reported_like_upstream():
    crd = _widget([{"rule": "self.missing > 1"}, {"rule": "self.size / 0 == 1"}])
    assert schema.validate({"spec": {"size": 1}}, crd) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": no such key: missing evaluating rule: self.missing > 1', "spec"),
        Cause("FieldValueInvalid", 'Invalid value: "object": division by zero evaluating rule: self.size / 0 == 1', "spec"),
    ]


def test_rules_are_skipped_when_the_object_already_has_blocking_errors():
    crd = _widget([{"rule": "self.size <= 100", "message": "size too big"}])
    assert schema.validate({"spec": {"size": "x"}}, crd) == [
        Cause(
            "FieldValueTypeInvalid", 'Invalid value: "string": spec.size in body must be of type integer: "string"', "spec.size"
        ),
        Cause(
            "FieldValueInvalid",
            'Invalid value: "null": some validation rules were not checked because the object was invalid; '
            "correct the existing errors to complete validation",
            "<nil>",
        ),
    ]


def test_rules_compile_once_per_text():
    cel.compile_expression.cache_clear()
    for _ in range(3):
        schema.validate({"spec": {"size": 1}}, _widget([{"rule": "self.size < 7"}]))
    assert cel.compile_expression.cache_info().misses == 1


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("self.size +", "compilation failed: ERROR: <input>:1:12: Syntax error"),
        ("ip(self.size) > 1", "compilation failed: ERROR: <input>: undeclared reference to 'ip'"),
        ("other.size > 1", "compilation failed: ERROR: <input>: undeclared reference to 'other'"),
    ],
)
def test_rules_that_do_not_compile(rule, error):
    assert cel.compile_expression(rule).error.startswith(error)
    assert cel.compile_expression("self.items.all(x, x > 0) && oldSelf == self").uses_old_self


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("size", "size"),
        ("max-surge", "max__dash__surge"),
        ("a.b", "a__dot__b"),
        ("x/y", "x__slash__y"),
        ("namespace", "__namespace__"),
        ("a__b", "a__underscores__b"),
        ("9lives", None),
        ("bad key", None),
    ],
)
def test_property_names_are_escaped_as_upstream(name, escaped):
    assert cel.escape(name) == escaped


def test_field_paths_into_maps_use_upstream_key_notation():
    crd = _widget(
        [{"rule": "self.env['a.b'] != ''", "message": "a.b must be set", "fieldPath": ".env['a.b']"}],
        env={"type": "object", "additionalProperties": {"type": "string"}},
    )
    assert schema.validate({"spec": {"env": {"a.b": ""}}}, crd) == [
        Cause("FieldValueInvalid", 'Invalid value: "object": a.b must be set', "spec.env[a.b]")
    ]


def test_a_message_expression_that_is_not_a_string_falls_back_to_the_rule():
    crd = _widget([{"rule": "self.size > 0", "messageExpression": "self.size"}])
    assert schema.validate({"spec": {"size": 0}}, crd)[0].message == 'Invalid value: "object": failed rule: self.size > 0'


def test_transition_rules_on_map_values_correlate_by_key_unless_the_map_is_atomic():
    rule = [{"rule": "self == oldSelf", "message": "immutable"}]
    granular = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "env": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": rule}}
                },
            }
        },
    }
    old = {"spec": {"env": {"A": "1"}}}
    assert schema.validate({"spec": {"env": {"A": "2", "B": "3"}}}, granular, old=old) == [
        Cause("FieldValueInvalid", 'Invalid value: "string": immutable', "spec.env[A]")
    ]
    atomic = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "properties": {"name": {"type": "string", "x-kubernetes-validations": rule}},
            }
        },
    }
    assert schema.validate({"spec": {"name": "b"}}, atomic, old={"spec": {"name": "a"}}) == []


def test_null_values_are_not_given_to_rules():
    crd = _widget(
        [{"rule": "self.size > 0"}],
        size={"type": "integer", "nullable": True, "x-kubernetes-validations": [{"rule": "self > 0"}]},
    )
    assert schema.validate({"spec": {"size": None}}, crd) == [
        Cause(
            "FieldValueInvalid",
            "Invalid value: \"object\": 'no such overload': call arguments did not match a supported "
            "operator, function or macro signature for rule: self.size > 0",
            "spec",
        )
    ]


def test_field_paths_of_root_and_map_rules_join_like_field_path_child():
    root = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
        "x-kubernetes-validations": [{"rule": "self.spec.size > 0", "fieldPath": ".spec.size"}],
    }
    assert [c.field for c in schema.validate({"spec": {"size": 0}}, root)] == ["spec.size"]
    env = _widget(
        [],
        env={
            "type": "object",
            "additionalProperties": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "self.A != ''", "fieldPath": "['A']"}],
        },
    )
    assert [c.field for c in schema.validate({"spec": {"env": {"A": ""}}}, env)] == ["spec.env[A]"]


@pytest.mark.parametrize(
    "rule",
    [
        "quantity('1Gi') == quantity('1024Mi')",
        "quantity(self.memory).isGreaterThan(quantity('256Mi')) && quantity('100m').isLessThan(quantity('1'))",
        "isQuantity(self.memory) && !isQuantity('1 Gi') && quantity('1.5').asApproximateFloat() == 1.5",
        "quantity('2k').asInteger() == 2000 && quantity('500m').isInteger() == false && quantity('-1').sign() == -1",
        "quantity('1Gi').add(quantity('1Gi')) == quantity('2Gi') && quantity('1').sub(1).compareTo(quantity('0')) == 0",
    ],
)
def test_the_kubernetes_quantity_library(rule):
    crd = _widget([{"rule": rule}], memory={"type": "string"})
    assert schema.validate({"spec": {"memory": "1Gi"}}, crd) == []


def test_a_quantity_rule_that_fails_reports_the_rule():
    crd = _widget(
        [{"rule": "quantity(self.memory).isLessThan(quantity('1Gi'))", "message": "memory must be below 1Gi"}],
        memory={"type": "string"},
    )
    assert [c.message for c in schema.validate({"spec": {"memory": "2Gi"}}, crd)] == [
        'Invalid value: "object": memory must be below 1Gi'
    ]
