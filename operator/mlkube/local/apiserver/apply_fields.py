"""Field paths and typed walks for server-side apply (a port of the parts of
sigs.k8s.io/structured-merge-diff that kube-apiserver uses).

Owns: how a position in an object behaves (`Node`: granular or atomic map, list type and
keys, from a CRD schema or from `patch_types` for built-ins); field paths as tuples of
FieldsV1 elements (`f:name`, `k:{"name":"c"}`, `v:"x"`); the field set of an object, the
comparison of two objects (added / modified / removed paths), the merge of an applied
configuration into a live object, removal of paths, and FieldsV1 encoding and decoding.
Must not: know about managers, conflicts or managedFields entries (`apply` owns those).

Values are JSON-shaped. `null` in an applied configuration removes the field and is not
owned (upstream owns it; the stored object is the same).
"""

from __future__ import annotations

import json

from mlkube.local.apiserver import patch_types

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
ABSENT = object()  # a missing value, as opposed to JSON null
MEMBER = "."  # in a tree of paths: the path ending here is itself in the set


class InvalidObject(ValueError):
    """An object SSA cannot type: a list item without its key fields, duplicate keys, ..."""


class Node:
    """How the value at one position behaves: maps granular unless atomic, lists atomic unless
    `set` or `map` (with keys). This base class is the untyped position."""

    def field(self, name: str) -> Node:
        return UNTYPED

    def item(self) -> Node:
        return UNTYPED

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        return "atomic", ()

    def is_atomic_map(self) -> bool:
        return False

    def key_default(self, name: str):
        """The default of key field `name` of this list's items (SMD keys items by defaults)."""
        return ABSENT


UNTYPED = Node()


class SchemaNode(Node):
    """A position described by an OpenAPI v3 (CRD structural) schema."""

    def __init__(self, schema: dict | None):
        self.schema = schema or {}

    def field(self, name: str) -> Node:
        properties = self.schema.get("properties") or {}
        if name in properties:
            return SchemaNode(properties[name])
        extra = self.schema.get("additionalProperties")
        return SchemaNode(extra) if isinstance(extra, dict) else UNTYPED

    def item(self) -> Node:
        return SchemaNode(self.schema.get("items"))

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        return (self.schema.get("x-kubernetes-list-type", "atomic"), tuple(self.schema.get("x-kubernetes-list-map-keys", ())))

    def is_atomic_map(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"

    def key_default(self, name: str):
        item_properties = (self.schema.get("items") or {}).get("properties") or {}
        return (item_properties.get(name) or {}).get("default", ABSENT)


class CustomResourceRoot(SchemaNode):
    """The root of a custom resource: its schema, with ObjectMeta's behaviour for metadata."""

    def field(self, name: str) -> Node:
        return BuiltinNode(OBJECT_META) if name == "metadata" else super().field(name)


class BuiltinNode(Node):
    """A position in a built-in kind: `type_name` is the struct (or list element) type and
    `meta` the field's `patch_types` entry."""

    def __init__(self, type_name: str | None, meta: dict | None = None):
        self.type_name = type_name
        self.meta = meta or {}

    def field(self, name: str) -> Node:
        meta = patch_types.field(self.type_name, name)
        return BuiltinNode(meta.get("type"), meta) if meta else UNTYPED

    def item(self) -> Node:
        return BuiltinNode(self.type_name)

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        return self.meta.get("listType", "atomic"), tuple(self.meta.get("listMapKeys", ()))

    def is_atomic_map(self) -> bool:
        return self.meta.get("mapType") == "atomic" or patch_types.is_atomic(self.type_name)

    def key_default(self, name: str):
        # Every built-in list keyed by protocol (container, service, endpoint ports) defaults it to TCP.
        return "TCP" if name == "protocol" else ABSENT


def root_node(api_version: str, kind: str, schema: dict | None) -> Node:
    """The typing of a whole object: a CRD schema when given, else the built-in kind's table."""
    if schema is not None:
        return CustomResourceRoot(schema)
    type_name = patch_types.root_type(api_version, kind)
    return BuiltinNode(type_name) if type_name else CustomResourceRoot({})


# --- path elements ----------------------------------------------------------------------


def _canonical(value) -> str:
    """Compact JSON with sorted keys; scalars (nearly every key and value) take a fast path."""
    if isinstance(value, str):
        return _encode_string(value)
    if value is True or value is False or value is None:
        return "true" if value else ("false" if value is False else "null")
    if type(value) is int:
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


_encode_string = json.encoder.encode_basestring


def item_element(item, node: Node) -> str:
    """The path element of a list item: `k:{...}` in map lists, `v:...` in set lists."""
    list_type, keys = node.list_type()
    if list_type == "set":
        return "v:" + _canonical(item)
    if not isinstance(item, dict):
        raise InvalidObject(f"associative list with keys has an element that is not a map: {_canonical(item)}")
    key = {}
    for name in keys:
        value = item.get(name, ABSENT)
        if value is ABSENT:
            value = node.key_default(name)
        if value is ABSENT:
            raise InvalidObject(
                f'associative list with keys has an element that omits key field "{name}" (and doesn\'t have default value)'
            )
        key[name] = value
    return "k:{" + ",".join(_encode_string(name) + ":" + _canonical(key[name]) for name in sorted(key)) + "}"


def path_string(path: tuple[str, ...]) -> str:
    """Upstream `fieldpath.Path.String()`: `.spec.containers[name="c"].image`, `[="x"]`."""
    parts = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            parts.append("[" + ",".join(f"{name}={_canonical(value)}" for name, value in json.loads(text).items()) + "]")
        elif kind == "v:":
            parts.append(f"[={text}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


_ELEMENT_RANK = {"f:": 0, "k:": 1, "v:": 2, "i:": 3}


def path_sort_key(path: tuple[str, ...]):
    """Upstream path order: field names before keys before values before indexes."""
    return tuple((_ELEMENT_RANK.get(element[:2], 4), element[2:]) for element in path)


# --- walks ------------------------------------------------------------------------------


def _granular_list(value, node: Node) -> bool:
    return isinstance(value, list) and node.list_type()[0] in ("set", "map")


def _indexed(items: list, node: Node) -> dict:
    indexed = {}
    for item in items:
        element = item_element(item, node)
        if element in indexed:
            raise InvalidObject(f"duplicate entries for key {path_string((element,))}")
        indexed[element] = item
    return indexed


def field_set(value, node: Node, path: tuple = ()) -> set:
    """Upstream `ToFieldSet`: leaves, atomic values and the items of set and map lists."""
    paths: set = set()
    _collect(value, node, path, paths)
    return paths


def _collect(value, node: Node, path: tuple, paths: set) -> None:
    if isinstance(value, dict) and not node.is_atomic_map():
        for key, item in value.items():
            if item is not None:
                _collect(item, node.field(key), path + ("f:" + key,), paths)
    elif _granular_list(value, node):
        for element, item in _indexed(value, node).items():
            _collect(item, node.item(), path + (element,), paths)
            paths.add(path + (element,))
    else:
        paths.add(path)


def compare(old, new, node: Node) -> tuple[set, set, set]:
    """Upstream `TypedValue.Compare`: (added, modified, removed) paths from `old` to `new`."""
    added, modified, removed = set(), set(), set()
    _compare(old, new, node, (), (added, modified, removed))
    return added, modified, removed


def _compare(old, new, node: Node, path: tuple, result: tuple[set, set, set]) -> None:
    if old is not ABSENT and new is not ABSENT and _same(old, new):
        return  # most of an object is unchanged by a write: skip those subtrees whole
    added, modified, removed = result
    shape = _container_shape(old, new, node)
    if shape is None:
        if old is ABSENT:
            added.add(path)
        elif new is ABSENT:
            removed.add(path)
        else:
            modified.add(path)
        return
    if shape == "map":
        old_map, new_map = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
        for key in old_map.keys() | new_map.keys():
            _compare(old_map.get(key, ABSENT), new_map.get(key, ABSENT), node.field(key), path + ("f:" + key,), result)
    else:
        old_items = _indexed(old, node) if isinstance(old, list) else {}
        new_items = _indexed(new, node) if isinstance(new, list) else {}
        for element in old_items.keys() | new_items.keys():
            _compare(old_items.get(element, ABSENT), new_items.get(element, ABSENT), node.item(), path + (element,), result)
    if old is ABSENT:
        added.add(path)
    elif new is ABSENT:
        removed.add(path)


def _same(old, new) -> bool:
    """JSON equality; Python's == alone would equate true with 1."""
    if old is new:
        return True
    if type(old) is not type(new) or old != new:
        return False
    return not isinstance(old, (dict, list)) or _canonical(old) == _canonical(new)


def _container_shape(old, new, node: Node) -> str | None:
    """ "map" or "list" when the two values are compared member by member, None for a leaf
    (scalars, atomic values, differing shapes, and empty-or-absent pairs)."""
    present = [value for value in (old, new) if value is not ABSENT]
    if all(isinstance(value, dict) for value in present) and not node.is_atomic_map():
        return "map" if any(present) else None
    if all(_granular_list(value, node) for value in present):
        return "list" if any(present) else None
    return None


def merge(live, config, node: Node):
    """Upstream `TypedValue.Merge`: `config` wins, maps and set/map lists merge member-wise."""
    if isinstance(live, dict) and isinstance(config, dict) and not node.is_atomic_map():
        merged = dict(live)
        for key, value in config.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value, node.field(key))
            else:
                merged[key] = _without_nulls(value)
        return merged
    if _granular_list(live, node) and _granular_list(config, node):
        return _merge_list(live, config, node)
    return _without_nulls(config)


def _merge_list(live: list, config: list, node: Node) -> list:
    """Upstream `mergingWalker.visitListItems`: keep live order, config items where shared."""
    live_elements = [item_element(item, node) for item in live]
    config_items = _indexed(config, node)
    config_elements = list(config_items)
    live_items = {}
    for element, item in zip(live_elements, live):
        live_items.setdefault(element, item)
    shared = iter([element for element in config_elements if element in live_items])
    next_shared = next(shared, None)
    merged, done = [], set()
    left = right = 0

    def take(element):
        if element in live_items:
            return merge(live_items[element], config_items[element], node.item())
        return _without_nulls(config_items[element])

    while left < len(live_elements) or right < len(config_elements):
        if left < len(live_elements) and right < len(config_elements):
            element = live_elements[left]
            if element == config_elements[right]:
                done.add(element)
                merged.append(take(element))
                left, right = left + 1, right + 1
                next_shared = next(shared, None)
                continue
            if element in config_items and next_shared is not None and next_shared != element:
                left += 1
                continue
        if left < len(live_elements):
            element = live_elements[left]
            if element not in config_items:
                merged.append(live[left])
                left += 1
                continue
            if element in done:
                left += 1
                continue
        if right >= len(config_elements):
            left += 1  # a duplicate live item whose key the config already merged
            continue
        element = config_elements[right]
        done.add(element)
        merged.append(take(element))
        right += 1
        if element == next_shared:
            next_shared = next(shared, None)
    return merged


def _without_nulls(value):
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def remove_paths(value, doomed: dict, kept: dict, node: Node):
    """`value` without the members of tree `doomed` (whole subtrees go). A map or list left
    empty by the removal goes too unless tree `kept` says someone owns it (upstream removes
    struct fields the applier owned through their children)."""
    if isinstance(value, dict) and not node.is_atomic_map():
        result = {}
        for key, item in value.items():
            element = "f:" + key
            kept_item = _remove_child(item, element, doomed, kept, node.field(key))
            if kept_item is not ABSENT:
                result[key] = kept_item
        return result
    if _granular_list(value, node):
        result = []
        for item in value:
            kept_item = _remove_child(item, item_element(item, node), doomed, kept, node.item())
            if kept_item is not ABSENT:
                result.append(kept_item)
        return result
    return value


def _remove_child(item, element: str, doomed: dict, kept: dict, node: Node):
    subtree = doomed.get(element)
    if subtree is None:
        return item
    if MEMBER in subtree:
        return ABSENT
    kept_subtree = kept.get(element, {})
    pruned = remove_paths(item, subtree, kept_subtree, node)
    if item and not pruned and MEMBER not in kept_subtree:
        return ABSENT
    return pruned


# --- sets as trees and FieldsV1 -----------------------------------------------------------


def tree(paths) -> dict:
    """Nested dicts keyed by path element; `MEMBER` marks a path that is in the set."""
    root: dict = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node[MEMBER] = {}
    return root


def encode_fields(paths) -> dict:
    """FieldsV1: a member with children carries `".": {}`, a member leaf is `{}`."""
    return _encode(tree(paths))


def _encode(node: dict) -> dict:
    children = sorted((element for element in node if element != MEMBER), key=lambda element: path_sort_key((element,)))
    encoded = {MEMBER: {}} if MEMBER in node and children else {}
    for element in children:
        encoded[element] = _encode(node[element])
    return encoded


def fields_contain(fields_v1: dict, path: tuple) -> bool:
    """Whether a FieldsV1 document has `path` as a member, without decoding all of it."""
    node = fields_v1
    for element in path:
        node = node.get(element) if isinstance(node, dict) else None
        if node is None:
            return False
    return isinstance(node, dict) and (MEMBER in node or (not node and path != ()))


def decode_fields(fields_v1: dict, prefix: tuple = ()) -> set:
    """The set of paths in a FieldsV1 document."""
    if not isinstance(fields_v1, dict):
        raise InvalidObject(f"fieldsV1 must be an object, not {_canonical(fields_v1)}")
    paths = set()
    for element, child in fields_v1.items():
        if not isinstance(child, dict):
            raise InvalidObject(f"fieldsV1 entry {element!r} must be an object, not {_canonical(child)}")
        if element == MEMBER:
            paths.add(prefix)
        elif child:
            paths |= decode_fields(child, prefix + (element,))
        else:
            paths.add(prefix + (element,))
    return paths
