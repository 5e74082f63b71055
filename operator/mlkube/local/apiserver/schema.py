"""OpenAPI v3 (CRD `openAPIV3Schema`) processing of custom resources, as kube-apiserver does it.

The core calls these pure functions on every custom-resource write and on CRD create/update:
`structural_errors` (is the schema acceptable), `prune` (drop unknown fields), `default` (apply
`default:` values, also on read) and `validate` (OpenAPI value validation, embedded resources,
list-type uniqueness, then the CEL `x-kubernetes-validations` rules). Messages, reasons and field
paths are upstream's (apiextensions-apiserver and kube-openapi). Schemas are compiled once and
cached (schema_nodes); objects are never mutated: results are new containers.

This module is the public surface: it sequences the steps and owns defaulting and the
whole-object checks (embedded resources, list-type uniqueness, where CEL rules run and which old
value they see). Pruning lives in schema_pruning, per-node value checks in schema_values, schema
checks in schema_structural, rules in cel, wording in schema_causes. It does no I/O and knows
nothing of HTTP, storage or ObjectMeta validation (the core's).
Not implemented: validation ratcheting on update, CEL cost budgets, optionalOldSelf.
"""

from __future__ import annotations

from mlkube.local.apiserver import cel, schema_causes, schema_nodes, schema_pruning, schema_structural, schema_values
from mlkube.local.apiserver.schema_causes import Cause

__all__ = ["Cause", "default", "prune", "structural_errors", "validate"]

_BLOCKING = frozenset(
    {
        schema_causes.NOT_SUPPORTED,
        schema_causes.REQUIRED,
        schema_causes.TOO_LONG,
        schema_causes.TOO_MANY,
        schema_causes.TYPE_INVALID,
    }
)
_RULES_SKIPPED = (
    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
)


def structural_errors(schema: dict, *, path: str = "spec.validation.openAPIV3Schema") -> list[Cause]:
    """Why kube-apiserver would refuse this CRD schema (the causes of its 422), [] when it is fine.

    `path` prefixes every field, e.g. "spec.versions[0].schema.openAPIV3Schema". Includes CEL rules
    that do not compile (checked only when the schema is otherwise structural, as upstream does).
    """
    return schema_structural.structural_errors(schema, path=path)


def prune(obj: dict, schema: dict) -> tuple[dict, list[str]]:
    """A copy of `obj` without the fields `schema` does not declare, and their sorted dotted paths.

    apiVersion, kind and metadata are kept at the root and in embedded resources (metadata reduced to
    ObjectMeta's fields); x-kubernetes-preserve-unknown-fields keeps unknown fields below it. Like
    upstream's decoder it also drops null values of non-nullable fields without a default (those
    are not reported as unknown).
    """
    return schema_pruning.pruned(obj, schema_nodes.compiled(schema), resource=True)


def default(obj: dict, schema: dict) -> dict:
    """`obj` with `default:` values applied where the parent object exists.

    A missing field, or a null in a non-nullable field, gets its default (deep-copied); nulls of
    nullable fields stay. Returns `obj` itself when nothing changes, otherwise new containers along
    the changed paths (the rest is shared).
    """
    return _default(obj, schema_nodes.compiled(schema))


def validate(obj: dict, schema: dict, *, old: dict | None = None) -> list[Cause]:
    """Every violation of `schema` by `obj` (after pruning and defaulting), [] when valid.

    `old` is the stored object on update: transition rules (CEL rules using oldSelf) run only where
    an old value exists. As upstream, CEL rules are skipped with one extra cause when the OpenAPI
    checks found a type, required, enum or size error.
    """
    root = schema_nodes.compiled(schema)
    causes: list[Cause] = []
    schema_values.validate(obj, root, "", causes)
    if root.has_embedded:
        _check_embedded(obj, root, "", causes)
    if root.has_list_types:
        _check_list_types(obj, root, "", causes)
    if root.has_rules:
        if any(c.reason in _BLOCKING for c in causes):
            causes.append(schema_causes.invalid("", None, _RULES_SKIPPED))
        else:
            _check_rules(obj, old, root, "", causes)
    return causes


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- defaulting ------------------------------------------------------------------------------------


def _default(value: object, node: schema_nodes.Node | None) -> object:
    if node is None or not node.has_defaults:
        return value
    if isinstance(value, dict):
        result = value
        for key, sub in node.properties.items():
            if sub.has_default and (key not in value or (value[key] is None and not sub.nullable)):
                result = dict(result) if result is value else result
                result[key] = schema_pruning.copy_json(sub.default)
        for key, item in list(result.items()):
            sub = node.child(key)
            if sub is None:
                continue
            if item is None and sub is node.additional and sub.has_default and not sub.nullable:
                new = schema_pruning.copy_json(sub.default)
            else:
                new = _default(item, sub)
            if new is not item:
                result = dict(result) if result is value else result
                result[key] = new
        return result
    if isinstance(value, list) and node.items is not None:
        items = node.items
        result = [
            schema_pruning.copy_json(items.default)
            if item is None and items.has_default and not items.nullable
            else _default(item, items)
            for item in value
        ]
        return value if all(new is old for new, old in zip(result, value)) else result
    return value


# --- whole-object checks ---------------------------------------------------------------------------


def _walk(value: object, node: schema_nodes.Node, path: str, wanted):
    """(key or index, child value, child node, field path) of each child whose node is `wanted`.

    Field paths follow upstream's `field.Path`: properties as ".name", map entries as "[key]".
    """
    if isinstance(value, dict):
        for key, item in value.items():
            sub = node.properties.get(key)
            key_path = _child(path, key) if sub is not None else f"{path}[{key}]"
            sub = sub or node.additional
            if sub is not None and wanted(sub):
                yield key, item, sub, key_path
    elif isinstance(value, list) and node.items is not None and wanted(node.items):
        for index, item in enumerate(value):
            yield index, item, node.items, f"{path}[{index}]"


def _has_embedded(node: schema_nodes.Node) -> bool:
    return node.embedded or node.has_embedded


def _has_list_types(node: schema_nodes.Node) -> bool:
    return node.has_list_types


def _has_rules(node: schema_nodes.Node) -> bool:
    return node.has_rules


def _check_embedded(value: object, node: schema_nodes.Node, path: str, out: list[Cause]) -> None:
    for _, item, sub, item_path in _walk(value, node, path, _has_embedded):
        if sub.embedded and isinstance(item, dict):
            for key in schema_pruning.TYPE_META:
                field = _child(item_path, key)
                if key not in item:
                    out.append(schema_causes.required(field, "must not be empty"))
                elif not isinstance(item[key], str):
                    out.append(schema_causes.invalid(field, item[key], "must be a string"))
                elif not item[key]:
                    out.append(schema_causes.invalid(field, item[key], "must not be empty"))
        _check_embedded(item, sub, item_path, out)


def _check_list_types(value: object, node: schema_nodes.Node, path: str, out: list[Cause]) -> None:
    if isinstance(value, list) and node.list_type == "set":
        for index in _second_occurrences(value, _set_key):
            out.append(schema_causes.duplicate(f"{path}[{index}]", value[index]))
    elif isinstance(value, list) and node.list_type == "map":
        _check_list_map(value, node, path, out)
    for _, item, sub, item_path in _walk(value, node, path, _has_list_types):
        _check_list_types(item, sub, item_path, out)


def _set_key(item: object) -> object:
    if isinstance(item, (dict, list)):
        return ("compound", schema_causes.go_sharp(item))
    return (schema_values.json_type(item) if item is not None else "null", item)


def _second_occurrences(items: list, key_of) -> list[int]:
    """Indexes of the second occurrence of each repeated key (upstream reports only those)."""
    seen: dict[object, int] = {}
    repeated = []
    for index, item in enumerate(items):
        key = key_of(item)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            repeated.append(index)
    return repeated


def _check_list_map(value: list, node: schema_nodes.Node, path: str, out: list[Cause]) -> None:
    for index, item in enumerate(value):
        if item is not None and not isinstance(item, dict):
            out.append(schema_causes.invalid(f"{path}[{index}]", item, "must be an object for an array of list-type map"))
            return
    keys = node.list_map_keys
    item_schema = node.items.properties if node.items is not None else {}

    def identity(item: dict | None) -> dict:
        found = {}
        for key in keys:
            if item is not None and key in item:
                found[key] = item[key]
            elif key in item_schema and item_schema[key].has_default:
                found[key] = item_schema[key].default
        return found

    for index in _second_occurrences(value, lambda item: _set_key(identity(item))):
        found = identity(value[index])
        if len(keys) == 1:
            found = {keys[0]: (value[index] or {}).get(keys[0])}
        out.append(schema_causes.duplicate(f"{path}[{index}]", found))


def _check_rules(value: object, old: object, node: schema_nodes.Node, path: str, out: list[Cause]) -> None:
    if value is None:
        return
    if node.rules:
        self_value = cel.convert(value, node) if node.cel_convert else value
        has_old = old is not None
        old_value = cel.convert(old, node) if has_old and node.cel_convert else old
        out.extend(cel.check(node.rules, self_value, old_value, has_old=has_old, field=path, type_name=node.type))
    old_of = _old_values(value, old, node)
    for selector, item, sub, item_path in _walk(value, node, path, _has_rules):
        _check_rules(item, old_of(selector, item), sub, item_path, out)


def _old_values(value: object, old: object, node: schema_nodes.Node):
    """How a child finds its old value: by key in (non-atomic) maps, by the keys in list-type maps.

    Elsewhere (atomic maps, other lists) children have no old value, so their transition rules
    do not run, as upstream.
    """
    if isinstance(value, dict) and isinstance(old, dict) and node.map_type != "atomic":
        return lambda key, item: old.get(key)
    if isinstance(value, list) and isinstance(old, list) and node.list_type == "map":
        keys = node.list_map_keys
        by_identity = {tuple(_set_key(o.get(k)) for k in keys): o for o in old if isinstance(o, dict)}
        return lambda index, item: by_identity.get(tuple(_set_key(item.get(k)) for k in keys)) if isinstance(item, dict) else None
    return lambda selector, item: None
