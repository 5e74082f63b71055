"""The static checks of a CRD's `openAPIV3Schema` and of its defaults, as kube-apiserver runs them (apiextensions v1).

Owns the port of `ValidateCustomResourceDefinitionOpenAPISchema` ($ref, uniqueItems,
additionalProperties with properties, list/map types, preserve-unknown-fields: false, the
x-kubernetes-validations fields), CEL compilation of every rule, and `ValidateDefaults` (each
default pruned and valid against its node). Causes carry upstream's field paths and wording.
Must not: check structural invariants or decide the reporting order (`schema_structural` does),
or look at objects.
"""

from __future__ import annotations

import re

from mlkube.local.apiserver import cel, schema_causes, schema_nodes, schema_pruning, schema_values

_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_META = ("apiVersion", "kind", "metadata")
_UNSUPPORTED = (
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
)


def static_errors(schema: dict, *, path: str, compile_rules: bool) -> tuple[list[schema_causes.Cause], list[schema_causes.Cause]]:
    """The static-check causes of the root `schema`, then the CEL compilation causes (rules are
    compiled only when `compile_rules` and the node and everything below it are otherwise valid)."""
    static: list[schema_causes.Cause] = []
    rules: list[schema_causes.Cause] = []
    _static(schema, path, static, rules, root=True, uncorrelatable="", in_meta=False, compile_rules=compile_rules)
    return static, rules


def default_errors(schema: dict, *, path: str) -> list[schema_causes.Cause]:
    """Why a `default` anywhere below the root `schema` would be refused (outside resource metadata)."""
    found: list[schema_causes.Cause] = []
    _defaults(schema, path, found, root=True)
    return found


def _child(path: str, name: str) -> str:
    return f"{path}.{name}"


def _key(path: str, name: str) -> str:
    return f"{path}[{name}]"


# --- ValidateCustomResourceDefinitionOpenAPISchema -----------------------------------------------


def _static(
    s: dict,
    path: str,
    out: list[schema_causes.Cause],
    rules_out: list[schema_causes.Cause],
    *,
    root: bool,
    uncorrelatable: str,
    in_meta: bool,
    compile_rules: bool,
    defaults_forbidden: str = "",
) -> None:
    before = len(out)
    kind = s.get("type") or ""
    if kind and kind not in _TYPES:
        out.append(schema_causes.not_supported(_child(path, "type"), kind, _TYPES))
    if "default" in s and defaults_forbidden:
        out.append(schema_causes.forbidden(_child(path, "default"), f"must not be set {defaults_forbidden}"))
    for keyword, message in _UNSUPPORTED:
        if keyword in s:
            out.append(schema_causes.forbidden(_child(path, keyword), message))
    if kind == "null":
        out.append(schema_causes.forbidden(_child(path, "type"), "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list):
        out.append(schema_causes.forbidden(_child(path, "items"), "items must be a schema object and not an array"))
    if in_meta and s.get("x-kubernetes-embedded-resource"):
        out.append(
            schema_causes.forbidden(_child(path, "x-kubernetes-embedded-resource"), "must not be used inside of resource meta")
        )
    if s.get("uniqueItems"):
        out.append(
            schema_causes.forbidden(
                _child(path, "uniqueItems"), "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            )
        )
    additional = s.get("additionalProperties")
    if additional is not None and s.get("properties") and (additional is False or isinstance(additional, dict)):
        out.append(
            schema_causes.forbidden(
                _child(path, "additionalProperties"), "additionalProperties and properties are mutual exclusive"
            )
        )
    atomic_map = s.get("x-kubernetes-map-type") == "atomic"
    if isinstance(additional, dict):
        _static(
            additional,
            _child(path, "additionalProperties"),
            out,
            rules_out,
            root=False,
            uncorrelatable=uncorrelatable or (path if atomic_map else ""),
            in_meta=in_meta,
            compile_rules=compile_rules,
            defaults_forbidden="inside additionalProperties applying to object metadata" if in_meta else defaults_forbidden,
        )
    for name, sub in (s.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        meta = (root or bool(s.get("x-kubernetes-embedded-resource"))) and name in _META
        _static(
            sub,
            _key(_child(path, "properties"), name),
            out,
            rules_out,
            root=False,
            uncorrelatable=uncorrelatable or (path if atomic_map else ""),
            in_meta=in_meta or meta,
            compile_rules=compile_rules,
            defaults_forbidden=f"in top-level {name}" if root and name in _META else defaults_forbidden,
        )
    if isinstance(s.get("items"), dict):
        list_is_map = s.get("x-kubernetes-list-type") == "map"
        _static(
            s["items"],
            _child(path, "items"),
            out,
            rules_out,
            root=False,
            uncorrelatable=uncorrelatable or ("" if list_is_map else path),
            in_meta=in_meta,
            compile_rules=compile_rules,
            defaults_forbidden=defaults_forbidden,
        )
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        out.append(
            schema_causes.invalid(_child(path, "x-kubernetes-preserve-unknown-fields"), False, "must be true or undefined")
        )
    _list_and_map_types(s, kind, path, out)
    if "x-kubernetes-validations" in s:
        resource = root or bool(s.get("x-kubernetes-embedded-resource"))
        _validation_rules(s, path, out, rules_out, uncorrelatable, compile_rules, before, resource=resource)


def _list_and_map_types(s: dict, kind: str, path: str, out: list[schema_causes.Cause]) -> None:
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and kind != "object":
        detail = "must be object if x-kubernetes-map-type is specified"
        out.append(
            schema_causes.invalid(_child(path, "type"), kind, detail)
            if kind
            else schema_causes.required(_child(path, "type"), detail)
        )
    if map_type is not None and map_type not in ("atomic", "granular"):
        out.append(schema_causes.not_supported(_child(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]))
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None and kind != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        out.append(
            schema_causes.invalid(_child(path, "type"), kind, detail)
            if kind
            else schema_causes.required(_child(path, "type"), detail)
        )
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        out.append(schema_causes.not_supported(_child(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"]))
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys and list_type is None:
        out.append(
            schema_causes.required(
                _child(path, "x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"
            )
        )
    elif keys and list_type != "map":
        out.append(
            schema_causes.invalid(
                _child(path, "x-kubernetes-list-type"), list_type, "must be map if x-kubernetes-list-map-keys is non-empty"
            )
        )
    items = s.get("items") if isinstance(s.get("items"), dict) else None
    if list_type == "map":
        if not keys:
            out.append(
                schema_causes.required(
                    _child(path, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"
                )
            )
        if items is None:
            out.append(schema_causes.required(_child(path, "items"), "must have a schema if x-kubernetes-list-type is map"))
        elif items.get("type") != "object":
            out.append(
                schema_causes.invalid(
                    _child(_child(path, "items"), "type"),
                    items.get("type") or "",
                    "must be object if parent array's x-kubernetes-list-type is map",
                )
            )
        else:
            item_properties = items.get("properties") or {}
            for key in keys:
                if key not in item_properties:
                    out.append(
                        schema_causes.invalid(
                            _child(path, "x-kubernetes-list-map-keys"), keys, "entries must all be names of item properties"
                        )
                    )
                elif item_properties[key].get("type") in ("array", "object"):
                    out.append(
                        schema_causes.invalid(
                            _child(_key(_child(_child(path, "items"), "properties"), key), "type"),
                            "object",
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )
                    )
            if len(set(keys)) != len(keys):
                out.append(
                    schema_causes.invalid(_child(path, "x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries")
                )
    if list_type in ("set", "map") and items is not None:
        if items.get("nullable"):
            out.append(
                schema_causes.forbidden(
                    _child(_child(path, "items"), "nullable"), f"cannot be nullable when x-kubernetes-list-type is {list_type}"
                )
            )
        if list_type == "map":
            required = set(items.get("required") or ())
            for key in keys:
                prop = (items.get("properties") or {}).get(key)
                if prop is None:
                    continue
                key_path = _key(_child(_child(path, "items"), "properties"), key)
                if key not in required and "default" not in prop:
                    out.append(
                        schema_causes.required(
                            _child(key_path, "default"),
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        )
                    )
                if prop.get("nullable"):
                    out.append(
                        schema_causes.forbidden(
                            _child(key_path, "nullable"),
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                        )
                    )


def _validation_rules(
    s: dict,
    path: str,
    out: list[schema_causes.Cause],
    rules_out: list[schema_causes.Cause],
    uncorrelatable: str,
    compile_rules: bool,
    errors_before: int,
    *,
    resource: bool,
) -> None:
    node = schema_nodes.Node({k: v for k, v in s.items() if k != "x-kubernetes-validations"})
    entries = [e if isinstance(e, dict) else {} for e in s.get("x-kubernetes-validations") or ()]
    for index, entry in enumerate(entries):
        entry_path = f"{path}.x-kubernetes-validations[{index}]"
        rule, message = str(entry.get("rule") or ""), entry.get("message")
        message_expression, field_path = entry.get("messageExpression"), entry.get("fieldPath")
        if not rule.strip():
            out.append(schema_causes.required(_child(entry_path, "rule"), "rule is not specified"))
        elif message and not message.strip():
            out.append(schema_causes.invalid(_child(entry_path, "message"), message, "message must be non-empty if specified"))
        elif message and re.search(r"[\n\r]", message.strip()):
            out.append(schema_causes.invalid(_child(entry_path, "message"), message, "message must not contain line breaks"))
        elif re.search(r"[\n\r]", rule.strip()) and not (message or "").strip():
            out.append(
                schema_causes.required(_child(entry_path, "message"), "message must be specified if rule contains line breaks")
            )
        if message_expression is not None and message_expression != "" and not message_expression.strip():
            out.append(
                schema_causes.required(
                    _child(entry_path, "messageExpression"), "messageExpression must be non-empty if specified"
                )
            )
        if entry.get("reason") is not None and entry["reason"] not in cel.REASONS:
            out.append(schema_causes.not_supported(_child(entry_path, "reason"), entry["reason"], sorted(cel.REASONS)))
        if field_path:
            if not field_path.strip():
                out.append(
                    schema_causes.invalid(_child(entry_path, "fieldPath"), field_path, "fieldPath must be non-empty if specified")
                )
            elif "\n" in field_path:
                out.append(
                    schema_causes.invalid(_child(entry_path, "fieldPath"), field_path, "fieldPath must not contain line breaks")
                )
            elif schema_nodes.normalize_field_path(field_path, node) is None:
                out.append(schema_causes.invalid(_child(entry_path, "fieldPath"), field_path, "fieldPath must be a valid path"))
    # Upstream compiles the rules only when this node and everything below it is otherwise valid.
    if compile_rules and len(out) == errors_before:
        _compile_rules(entries, node, path, rules_out, uncorrelatable, resource=resource)


def _compile_rules(
    entries: list[dict],
    node: schema_nodes.Node,
    path: str,
    out: list[schema_causes.Cause],
    uncorrelatable: str,
    *,
    resource: bool,
) -> None:
    for index, entry in enumerate(entries):
        entry_path = f"{path}.x-kubernetes-validations[{index}]"
        rule, message_expression = str(entry.get("rule") or ""), entry.get("messageExpression")
        if not rule.strip():
            continue
        compiled = cel.compile_expression(rule)
        error = compiled.error or cel.undefined_field(rule, node, resource=resource)
        if error:
            out.append(schema_causes.invalid(_child(entry_path, "rule"), _GoRule(entry), error))
        elif compiled.uses_old_self and uncorrelatable:
            out.append(
                schema_causes.invalid(
                    _child(entry_path, "rule"),
                    rule,
                    f"oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable}",
                )
            )
        if message_expression and message_expression.strip():
            compiled_message = cel.compile_expression(message_expression)
            error = compiled_message.error or cel.undefined_field(message_expression, node, resource=resource)
            if error:
                out.append(schema_causes.invalid(_child(entry_path, "messageExpression"), _GoRule(entry), error))


# --- ValidateDefaults -----------------------------------------------------------------------------


def _defaults(s: dict, path: str, out: list[schema_causes.Cause], *, root: bool = False) -> None:
    """Each `default` must be pruned already and valid against its own node (outside metadata)."""
    if s.get("default") is not None and not root:
        node = schema_nodes.Node(s)
        default_path = _child(path, "default")
        pruned, _ = schema_pruning.pruned(s["default"], node, resource=node.embedded)
        if pruned != s["default"]:
            out.append(schema_causes.invalid(default_path, s["default"], "must not have unknown fields"))
        found: list[schema_causes.Cause] = []
        schema_values.validate(s["default"], node, "", found)
        for cause in found:
            field = default_path if cause.field == schema_causes.NO_FIELD else f"{default_path}.{cause.field}"
            out.append(schema_causes.Cause(cause.reason, cause.message.replace(":  in body", ": in body"), field))
    for name, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict) and not (root and name in _META):
            _defaults(sub, _key(_child(path, "properties"), name), out)
    if isinstance(s.get("additionalProperties"), dict):
        _defaults(s["additionalProperties"], _child(path, "additionalProperties"), out)
    if isinstance(s.get("items"), dict):
        _defaults(s["items"], _child(path, "items"), out)


class _GoRule:
    """A rule rendered as Go's `%#v` of apiextensions.ValidationRule, as upstream prints it."""

    def __init__(self, entry: dict) -> None:
        self.entry = entry

    def __repr__(self) -> str:
        e = self.entry
        reason = (
            "(*apiextensions.FieldValueErrorReason)(nil)"
            if e.get("reason") is None
            else f"&{schema_causes.go_quote(e['reason'])}"
        )
        return (
            "apiextensions.ValidationRule{"
            f"Rule:{schema_causes.go_quote(e.get('rule') or '')}, Message:{schema_causes.go_quote(e.get('message') or '')}, "
            f"MessageExpression:{schema_causes.go_quote(e.get('messageExpression') or '')}, Reason:{reason}, "
            f"FieldPath:{schema_causes.go_quote(e.get('fieldPath') or '')}, OptionalOldSelf:(*bool)(nil)}}"
        )
