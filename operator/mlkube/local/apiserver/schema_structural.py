"""Why a CRD's `openAPIV3Schema` would be refused by kube-apiserver (apiextensions v1).

Owns the port of upstream's schema checks: structural invariants (`ValidateStructural`: types on
every specified node, items on arrays, no additionalProperties at the root, metadata restricted to
name/generateName, embedded resources, the nested value-validation restrictions), the static
schema checks (`ValidateCustomResourceDefinitionOpenAPISchema`: $ref, uniqueItems,
additionalProperties with properties, list/map types, preserve-unknown-fields: false, the
x-kubernetes-validations fields) and CEL compilation of every rule. Causes carry upstream's field
paths (`...properties[spec].type`) and wording. It must not look at objects.
"""

from __future__ import annotations

import re

from mlkube.local.apiserver import cel, schema_causes, schema_nodes, schema_pruning, schema_values

_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_META = ("apiVersion", "kind", "metadata")
_NESTED_FORBIDDEN = (  # keyword, message of a node under anyOf/allOf/oneOf/not
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
_UNSUPPORTED = (
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
)
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_errors(schema: dict, *, path: str) -> list[schema_causes.Cause]:
    """Every reason `schema` is not an acceptable structural schema, then every CEL rule error."""
    if not isinstance(schema, dict):
        return [schema_causes.required(path, "")]
    structural: list[schema_causes.Cause] = []
    _invariants(schema, "root", path, structural)
    structural.sort(key=lambda c: f"{c.field}: {c.message}")
    static: list[schema_causes.Cause] = []
    rules: list[schema_causes.Cause] = []
    _static(schema, path, static, rules, root=True, uncorrelatable="", in_meta=False, compile_rules=not structural)
    found = structural + static + rules
    if not found:  # upstream checks defaults only on an otherwise valid schema
        _defaults(schema, path, found, root=True)
    return found


def _child(path: str, name: str) -> str:
    return f"{path}.{name}"


def _key(path: str, name: str) -> str:
    return f"{path}[{name}]"


# --- ValidateStructural --------------------------------------------------------------------------


def _invariants(s: dict, level: str, path: str, out: list[schema_causes.Cause]) -> None:
    kind = s.get("type") or ""
    if kind == "array" and "items" not in s:
        out.append(schema_causes.required(_child(path, "items"), "must be specified"))
    if isinstance(s.get("items"), dict):
        _invariants(s["items"], "item", _child(path, "items"), out)
    for name, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            _invariants(sub, "field", _key(_child(path, "properties"), name), out)
    if "additionalProperties" in s:
        if level == "root":
            out.append(schema_causes.forbidden(_child(path, "additionalProperties"), "must not be used at the root"))
        if isinstance(s["additionalProperties"], dict):
            _invariants(s["additionalProperties"], "field", _child(path, "additionalProperties"), out)
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        out.append(
            schema_causes.invalid(
                _child(path, "x-kubernetes-preserve-unknown-fields"), True, "must be false if x-kubernetes-int-or-string is true"
            )
        )
    if int_or_string and embedded:
        out.append(
            schema_causes.invalid(
                _child(path, "x-kubernetes-embedded-resource"), True, "must be false if x-kubernetes-int-or-string is true"
            )
        )
    skip_any_of = s.get("anyOf") == _INT_OR_STRING
    first_all_of = (s.get("allOf") or [None])[0]
    skip_first_all_of = isinstance(first_all_of, dict) and first_all_of.get("anyOf") == _INT_OR_STRING
    _junctors(s, path, out, skip_any_of=skip_any_of, skip_first_all_of=skip_first_all_of)
    if s.get("pattern"):
        problem = regexp_error(s["pattern"])
        if problem:
            out.append(
                schema_causes.invalid(
                    _child(path, "pattern"), s["pattern"], f"must be a valid regular expression, but isn't: {problem}"
                )
            )
    type_path = _child(path, "type")
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        out.append(schema_causes.invalid(type_path, kind, detail) if kind else schema_causes.required(type_path, detail))
    elif not kind and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items", "field": "for specified object fields"}[level]
        out.append(schema_causes.required(type_path, f"must not be empty {where}"))
    if embedded and "additionalProperties" in s:
        out.append(
            schema_causes.forbidden(
                _child(path, "additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set"
            )
        )
    if level == "root" and kind and kind != "object":
        out.append(schema_causes.invalid(type_path, kind, "must be object at the root"))
    _meta_invariants(s, level == "root", embedded, path, out)
    if embedded and not preserve and not s.get("properties"):
        out.append(
            schema_causes.required(
                _child(path, "properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            )
        )


def _meta_invariants(s: dict, root: bool, embedded: bool, path: str, out: list[schema_causes.Cause]) -> None:
    properties = s.get("properties") or {}
    properties_path = _child(path, "properties")
    if root or embedded:
        for name in ("kind", "apiVersion"):
            if name in properties and (properties[name] or {}).get("type") != "string":
                out.append(
                    schema_causes.invalid(
                        _child(_key(properties_path, name), "type"), (properties[name] or {}).get("type") or "", "must be string"
                    )
                )
    metadata = properties.get("metadata")
    if not isinstance(metadata, dict):
        return
    if (root or embedded) and metadata.get("type") != "object":
        out.append(
            schema_causes.invalid(_child(_key(properties_path, "metadata"), "type"), metadata.get("type") or "", "must be object")
        )
    if root:
        rest = {k: v for k, v in metadata.items() if k not in ("type", "default")}
        names = set(rest.pop("properties", None) or {})
        if rest or not names <= {"name", "generateName"}:
            out.append(
                schema_causes.forbidden(
                    _key(properties_path, "metadata"),
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                )
            )


def _junctors(s: dict, path: str, out: list[schema_causes.Cause], *, skip_any_of: bool, skip_first_all_of: bool) -> None:
    for keyword in ("anyOf", "allOf", "oneOf"):
        for index, sub in enumerate(s.get(keyword) or ()):
            if (keyword == "anyOf" and skip_any_of) or (keyword == "allOf" and index == 0 and skip_first_all_of):
                _junctors(sub, f"{path}.{keyword}[{index}]", out, skip_any_of=True, skip_first_all_of=False)
                continue
            _nested(sub, f"{path}.{keyword}[{index}]", s, path, out)
    if isinstance(s.get("not"), dict):
        _nested(s["not"], _child(path, "not"), s, path, out)


def _nested(v: dict, path: str, main: dict, main_path: str, out: list[schema_causes.Cause]) -> None:
    if not isinstance(v, dict):
        return
    _junctors(v, path, out, skip_any_of=False, skip_first_all_of=False)
    if isinstance(v.get("items"), dict):
        _nested(v["items"], _child(path, "items"), main.get("items") or {}, _child(main_path, "items"), out)
    main_properties = main.get("properties") or {}
    for name, sub in (v.get("properties") or {}).items():
        sub_path = _key(_child(path, "properties"), name)
        if name not in main_properties:
            out.append(
                schema_causes.required(_key(_child(main_path, "properties"), name), f"because it is defined in {sub_path}")
            )
        _nested(sub, sub_path, main_properties.get(name) or {}, _key(_child(main_path, "properties"), name), out)
    if v.get("type"):
        out.append(schema_causes.forbidden(_child(path, "type"), "must be empty to be structural"))
    for keyword, message in _NESTED_FORBIDDEN:
        if v.get(keyword) not in (None, False, "", [], {}):
            out.append(schema_causes.forbidden(_child(path, keyword), message))
    if "metadata" in (v.get("properties") or {}):
        out.append(
            schema_causes.forbidden(_key(_child(path, "properties"), "metadata"), "must not be specified in a nested context")
        )


_PERL_ONLY = re.compile(r"\(\?(?:=|!|<=|<!)|\\[1-9]")


def regexp_error(pattern: str) -> str:
    """Why Go's RE2 would refuse `pattern` (in Go's words where possible), "" if it compiles.

    Python's `re` is used for matching; the constructs it has and RE2 lacks (lookaround,
    backreferences) are refused here so that a schema accepted locally is accepted by a cluster.
    """
    perl = _PERL_ONLY.search(pattern)
    if perl:
        return f"error parsing regexp: invalid or unsupported Perl syntax: `{perl.group(0)}`"
    try:
        re.compile(pattern)
    except re.error as error:
        return f"error parsing regexp: {error.msg}: `{pattern}`"
    return ""


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
