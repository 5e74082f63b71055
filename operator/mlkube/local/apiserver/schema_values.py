"""OpenAPI value validation of a custom resource, as kube-openapi's SchemaValidator does it.

Owns the per-node checks in upstream's order (type, anyOf/oneOf/allOf/not, string length and
pattern, format, number bounds, array items and sizes, enum, object properties and required) and
their translation into field errors (apiextensions `kubeOpenAPIResultToFieldErrors`), message for
message. It must not prune, default, or run CEL rules: schema.py sequences those.
"""

from __future__ import annotations

import json
import math

from mlkube.local.apiserver import schema_causes, schema_nodes

_IN = "in body"


def validate(value: object, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    """Append to `out` every OpenAPI violation of `value` (at field `path`) against `node`."""
    if value is None:
        _check_null(node, path, out)
        _check_enum(value, node, path, out)
        return
    _check_type(value, node, path, out)
    if node.any_of or node.one_of or node.all_of or node.not_ is not None:
        _check_junctors(value, node, path, out)
    if isinstance(value, str):
        _check_string(value, node, path, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, node, path, out)
    elif isinstance(value, list):
        _check_array(value, node, path, out)
    if node.enum is not None:
        _check_enum(value, node, path, out)
    if isinstance(value, dict):
        _check_object(value, node, path, out)


def json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_null(node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    if node.types and not node.nullable:
        out.append(_type_error(path, ",".join(node.types), "null"))


def _check_type(value: object, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    if not node.types and not node.format:
        return
    actual = json_type(value)
    # JSON decodes 1.0 as a float64; upstream still accepts it where an integer is expected.
    float_int = actual == "number" and float(value).is_integer() and "integer" in node.types
    int_float = actual == "integer" and "number" in node.types
    compatible = actual in node.types or float_int or int_float
    if node.format and actual not in ("string", "array") and not compatible:
        data_format = {"integer": "int64", "number": "float64"}.get(actual, "")
        if data_format != node.format:
            out.append(_type_error(path, node.format, data_format))
            return
    if node.format and actual in ("string", "array") and not ({"number", "integer"} & set(node.types)):
        return
    if not compatible:
        out.append(_type_error(path, ",".join(node.types), actual))


def _type_error(path: str, expected: str, actual: str) -> schema_causes.Cause:
    return schema_causes.type_invalid(path, actual, f"{path} {_IN} must be of type {expected}: {schema_causes.go_quote(actual)}")


def _check_junctors(value: object, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    # The quantifier errors are not field errors upstream, so they carry no field ("<nil>").
    if node.any_of:
        results = [_errors_of(value, sub, path) for sub in node.any_of]
        if all(results):
            out.append(_junctor_error(f"{_go_path(path)} must validate at least one schema (anyOf)"))
            out.extend(min(results, key=len))
    if node.one_of:
        results = [_errors_of(value, sub, path) for sub in node.one_of]
        valid = sum(1 for errors in results if not errors)
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(_junctor_error(f"{_go_path(path)} must validate one and only one schema (oneOf). {found}"))
            if valid == 0:
                out.extend(min(results, key=len))
    if node.all_of:
        results = [_errors_of(value, sub, path) for sub in node.all_of]
        for errors in results:
            out.extend(errors)
        failed = sum(1 for errors in results if errors)
        if failed:
            suffix = ". None validated" if failed == len(results) else ""
            out.append(_junctor_error(f"{_go_path(path)} must validate all the schemas (allOf){suffix}"))
    if node.not_ is not None and not _errors_of(value, node.not_, path):
        out.append(_junctor_error(f"{_go_path(path)} must not validate the schema (not)"))


def _errors_of(value: object, node: schema_nodes.Node, path: str) -> list[schema_causes.Cause]:
    found: list[schema_causes.Cause] = []
    validate(value, node, path, found)
    return found


def _junctor_error(detail: str) -> schema_causes.Cause:
    return schema_causes.invalid("", "", detail)


def _go_path(path: str) -> str:
    return schema_causes.go_quote(path)


def _check_string(value: str, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    length = len(value)
    if node.max_length is not None and length > node.max_length:
        out.append(schema_causes.too_long(path, node.max_length))
    elif node.min_length is not None and length < node.min_length:
        out.append(schema_causes.invalid(path, value, f"{path} {_IN} should be at least {node.min_length} chars long"))
    elif node.pattern is not None and not node.pattern.search(value):
        out.append(schema_causes.invalid(path, value, f"{path} {_IN} should match '{node.pattern_text}'"))
    if node.format_check is not None and not node.format_check(value):
        out.append(
            schema_causes.type_invalid(
                path, value, f"{path} {_IN} must be of type {node.format}: {schema_causes.go_quote(value)}"
            )
        )


def _check_number(value: int | float, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    # Upstream compares an int64 value with the bound truncated to int64, a float64 with the float.
    is_int = isinstance(value, int)

    def bound(limit: int | float) -> int | float:
        return int(limit) if is_int else float(limit)

    if node.multiple_of is not None:
        factor = bound(node.multiple_of)
        if factor and not _is_multiple(value, factor):
            out.append(schema_causes.invalid(path, value, f"{path} {_IN} should be a multiple of {_number(factor)}"))
    if node.maximum is not None:
        limit = bound(node.maximum)
        if value > limit or (node.exclusive_maximum and value == limit):
            word = "less than" if node.exclusive_maximum else "less than or equal to"
            out.append(schema_causes.invalid(path, value, f"{path} {_IN} should be {word} {_number(limit)}"))
    if node.minimum is not None:
        limit = bound(node.minimum)
        if value < limit or (node.exclusive_minimum and value == limit):
            word = "greater than" if node.exclusive_minimum else "greater than or equal to"
            out.append(schema_causes.invalid(path, value, f"{path} {_IN} should be {word} {_number(limit)}"))


def _is_multiple(value: int | float, factor: int | float) -> bool:
    if isinstance(value, int) and isinstance(factor, int):
        return value % factor == 0
    quotient = value / factor if factor >= 1 else (1 / factor) * value
    return math.isfinite(quotient) and float(quotient).is_integer()


def _number(value: int | float) -> str:
    return schema_causes.go_scalar(value)


def _check_array(value: list, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    if node.items is not None:
        for index, item in enumerate(value):
            validate(item, node.items, f"{path}[{index}]", out)
    size = len(value)
    if node.min_items is not None and size < node.min_items:
        out.append(schema_causes.invalid(path, size, f"{path} {_IN} should have at least {node.min_items} items"))
    if node.max_items is not None and size > node.max_items:
        out.append(schema_causes.too_many(path, size, node.max_items))


def _check_enum(value: object, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    if not node.enum or any(json_equal(value, allowed) for allowed in node.enum if value is not None):
        return
    supported = [v if isinstance(v, str) else _go_json(v) for v in node.enum]
    out.append(schema_causes.not_supported(path, value, supported))


def _go_json(value: object) -> str:
    """Go's json.Marshal of a decoded value: sorted keys, integral floats without ".0"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def json_equal(left: object, right: object) -> bool:
    """Equality of decoded JSON values where a bool never equals a number (unlike Python's ==)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_object(value: dict, node: schema_nodes.Node, path: str, out: list[schema_causes.Cause]) -> None:
    count = len(value)
    if node.min_properties is not None and count < node.min_properties:
        out.append(schema_causes.invalid(path, count, f"{path} {_IN} should have at least {node.min_properties} properties"))
        return
    if node.max_properties is not None and count > node.max_properties:
        out.append(schema_causes.too_many(path, count, node.max_properties))
        return
    properties = node.properties
    if not node.additional_allowed:
        for key in value:
            if key not in properties:
                out.append(schema_causes.invalid(path, key, f"{_child(path, key)} {_IN} is a forbidden property"))
    elif node.additional is not None:
        for key, item in value.items():
            if key not in properties:
                validate(item, node.additional, _child(path, key), out)
    for key, sub in properties.items():
        if key in value:
            validate(value[key], sub, _child(path, key), out)
    for key in node.required:
        if key not in value:
            out.append(schema_causes.required(_child(path, key)))
