"""A CRD `openAPIV3Schema` compiled once into a tree of `Node`s that pruning, defaulting and
validation walk on every write.

Owns the compilation (patterns compiled, formats resolved, CEL rules compiled, per-subtree flags so
walks skip what holds nothing of interest) and the cache from schema dicts to compiled trees. It
must not validate objects or word errors. Schemas are treated as immutable once compiled.
"""

from __future__ import annotations

import json
import re
import threading

from mlkube.local.apiserver import cel, schema_formats

_BY_ID: dict[int, tuple[dict, Node]] = {}
_BY_CONTENT: dict[str, Node] = {}
_CACHE_LIMIT = 256
_LOCK = threading.Lock()


class Node:
    """One schema node. Absent keywords are None (or empty), so walks test cheaply."""

    __slots__ = (
        "additional",
        "additional_allowed",
        "all_of",
        "any_of",
        "cel_convert",
        "default",
        "embedded",
        "enum",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "format_check",
        "has_additional",
        "has_default",
        "has_defaults",
        "has_embedded",
        "has_list_types",
        "has_rules",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "map_type",
        "max_items",
        "max_length",
        "max_properties",
        "maximum",
        "min_items",
        "min_length",
        "min_properties",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_text",
        "preserve_unknown",
        "properties",
        "required",
        "rules",
        "type",
        "types",
    )

    def __init__(self, schema: dict, *, nested: bool = False) -> None:
        self.type = schema.get("type") or ""
        self.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
        self.types = ("integer", "string") if self.int_or_string else (self.type,) if self.type else ()
        self.nullable = bool(schema.get("nullable"))
        self.format = schema_formats.effective_format(self.type, schema.get("format"))
        self.format_check = schema_formats.string_checker(self.format) if self.format else None
        self.properties = {name: Node(sub) for name, sub in (schema.get("properties") or {}).items() if isinstance(sub, dict)}
        additional = schema.get("additionalProperties")
        self.additional = Node(additional) if isinstance(additional, dict) else None
        self.has_additional = additional is not None
        self.additional_allowed = additional is not False
        self.items = Node(schema["items"]) if isinstance(schema.get("items"), dict) else None
        self.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        self.embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        self.has_default = schema.get("default") is not None  # `default: null` is no default upstream
        self.default = schema.get("default")
        self.enum = schema.get("enum")
        self.minimum = schema.get("minimum")
        self.maximum = schema.get("maximum")
        self.exclusive_minimum = bool(schema.get("exclusiveMinimum"))
        self.exclusive_maximum = bool(schema.get("exclusiveMaximum"))
        self.multiple_of = schema.get("multipleOf")
        self.min_length = schema.get("minLength")
        self.max_length = schema.get("maxLength")
        self.pattern_text = schema.get("pattern") or ""
        self.pattern = _compile_pattern(self.pattern_text)
        self.min_items = schema.get("minItems")
        self.max_items = schema.get("maxItems")
        self.min_properties = schema.get("minProperties")
        self.max_properties = schema.get("maxProperties")
        self.required = tuple(schema.get("required") or ())
        self.list_type = schema.get("x-kubernetes-list-type") or ""
        self.list_map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        self.map_type = schema.get("x-kubernetes-map-type") or ""
        self.any_of = tuple(Node(sub, nested=True) for sub in schema.get("anyOf") or () if isinstance(sub, dict))
        self.all_of = tuple(Node(sub, nested=True) for sub in schema.get("allOf") or () if isinstance(sub, dict))
        self.one_of = tuple(Node(sub, nested=True) for sub in schema.get("oneOf") or () if isinstance(sub, dict))
        self.not_ = Node(schema["not"], nested=True) if isinstance(schema.get("not"), dict) else None
        entries = () if nested else [e for e in schema.get("x-kubernetes-validations") or () if isinstance(e, dict)]
        self.rules = tuple(
            cel.compile_rule(entry, field_path=normalize_field_path(entry.get("fieldPath") or "", self) or "")
            for entry in entries
        )
        children = self.children()
        self.has_rules = bool(self.rules) or any(child.has_rules for child in children)
        self.has_defaults = any(child.has_default or child.has_defaults for child in children)
        self.has_list_types = self.list_type in ("set", "map") or any(child.has_list_types for child in children)
        self.has_embedded = any(child.embedded or child.has_embedded for child in children)
        self.cel_convert = (
            self.type == "number"
            or self.format.replace("-", "") in ("datetime", "duration", "byte")
            or any(cel.escape(name) != name for name in self.properties)
            or any(child.cel_convert for child in children)
        )

    def children(self) -> list[Node]:
        """The nodes on the structural spine below this one (properties, additionalProperties, items)."""
        found = list(self.properties.values())
        if self.additional is not None:
            found.append(self.additional)
        if self.items is not None:
            found.append(self.items)
        return found

    def child(self, key: str) -> Node | None:
        """The schema of a map entry: the named property, else additionalProperties."""
        return self.properties.get(key) or self.additional


def compiled(schema: dict) -> Node:
    """The compiled root node of `schema`, cached by identity and then by content."""
    hit = _BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = json.dumps(schema, sort_keys=True, default=str)
    node = _BY_CONTENT.get(key)
    if node is None:
        node = Node(schema)
    with _LOCK:
        if len(_BY_ID) >= _CACHE_LIMIT:
            _BY_ID.clear()
        if len(_BY_CONTENT) >= _CACHE_LIMIT:
            _BY_CONTENT.clear()
        _BY_ID[id(schema)] = (schema, node)  # holding `schema` keeps its id from being reused
        _BY_CONTENT[key] = node
    return node


def _compile_pattern(text: str) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error:
        return None  # reported by structural_errors; upstream could not have stored such a CRD


_FIELD_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")


def normalize_field_path(path: str, node: Node) -> str | None:
    """A rule's `fieldPath` (".a.b", ".m['k']") as a field path under `node` ("a.b", "m[k]").

    None when it does not refer to a field of the schema (upstream rejects such a CRD).
    """
    if not path:
        return ""
    parts: list[str] = []
    position = 0
    while position < len(path):
        match = _FIELD_PATH_TOKEN.match(path, position)
        if match is None:
            return None
        name = match[1] if match[1] is not None else re.sub(r"\\(.)", r"\1", match[2])
        if node.properties:
            node = node.properties.get(name)
            if node is None:
                return None
            parts.append(("." if parts else "") + name)
        elif node.additional is not None:
            node = node.additional
            parts.append(f"[{name}]")
        else:
            return None
        position = match.end()
    return "".join(parts)
