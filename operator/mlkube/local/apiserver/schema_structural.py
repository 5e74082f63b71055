"""Why a CRD's `openAPIV3Schema` would be refused by kube-apiserver (apiextensions v1): the entry point.

Owns the order upstream reports schema errors in (structural, then static, then CEL rules, then
defaults only on an otherwise valid schema) and the port of the structural invariants
(`ValidateStructural`: types on every specified node, items on arrays, no additionalProperties at
the root, metadata restricted to name/generateName, embedded resources, the nested
value-validation restrictions), plus the RE2 check of `pattern`. The static keyword checks, CEL
rule compilation and default checks are `schema_keywords`'. Causes carry upstream's field paths
(`...properties[spec].type`) and wording. It must not look at objects.
"""

from __future__ import annotations

import re

from mlkube.local.apiserver import schema_causes, schema_keywords

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
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_errors(schema: dict, *, path: str) -> list[schema_causes.Cause]:
    """Every reason `schema` is not an acceptable structural schema, then every CEL rule error."""
    if not isinstance(schema, dict):
        return [schema_causes.required(path, "")]
    structural: list[schema_causes.Cause] = []
    _invariants(schema, "root", path, structural)
    structural.sort(key=lambda c: f"{c.field}: {c.message}")
    static, rules = schema_keywords.static_errors(schema, path=path, compile_rules=not structural)
    found = structural + static + rules
    if not found:  # upstream checks defaults only on an otherwise valid schema
        found = schema_keywords.default_errors(schema, path=path)
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
