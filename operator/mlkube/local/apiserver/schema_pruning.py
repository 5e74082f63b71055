"""Pruning of unknown fields from a custom resource, as apiextensions-apiserver's decoder does it.

Owns the walk that copies an object keeping only what its compiled schema declares (honouring
x-kubernetes-preserve-unknown-fields, embedded resources and additionalProperties), reduces
`metadata` to ObjectMeta's fields, drops nulls of non-nullable fields without default, and records
the dotted path of everything dropped. It must not default or validate.
"""

from __future__ import annotations

from mlkube.local.apiserver import schema_nodes

# ObjectMeta's fields: anything else under a resource's `metadata` is dropped like upstream's decoder does.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
TYPE_META = ("apiVersion", "kind")


def pruned(value: object, node: schema_nodes.Node | None, *, resource: bool = False) -> tuple[object, list[str]]:
    """A copy of `value` without undeclared fields, and the sorted paths of what was dropped.

    `resource` marks the root of an object (apiVersion, kind and metadata are then kept).
    """
    dropped: list[str] = []
    result = _prune(value, node, "", dropped, resource=resource)
    dropped.sort()
    return result, dropped


def copy_json(value: object) -> object:
    """A deep copy of a decoded JSON value (much cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _drops_null(value: object, node: schema_nodes.Node | None) -> bool:
    return value is None and node is not None and not node.nullable and not node.has_default


def _prune(value: object, node: schema_nodes.Node | None, path: str, dropped: list[str], *, resource: bool = False) -> object:
    if node is not None and node.preserve_unknown:
        return _keep_unknown(value, node, path, dropped, resource=resource)
    if isinstance(value, dict):
        resource = resource or (node is not None and node.embedded)
        pruned = {}
        for key, item in value.items():
            key_path = _child(path, key)
            if resource and key in TYPE_META:
                pruned[key] = copy_json(item)
            elif resource and key == "metadata":
                pruned[key] = _prune_metadata(item, key_path, dropped)
            elif node is not None and (key in node.properties or node.has_additional):
                sub = node.child(key)
                if not _drops_null(item, sub):
                    pruned[key] = _prune(item, sub, key_path, dropped)
            else:
                dropped.append(key_path)
        return pruned
    if isinstance(value, list):
        items = node.items if node is not None else None
        return [_prune(item, items, f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    return value


def _keep_unknown(value: object, node: schema_nodes.Node, path: str, dropped: list[str], *, resource: bool) -> object:
    """x-kubernetes-preserve-unknown-fields: unknown fields stay, declared ones are still pruned."""
    if isinstance(value, dict):
        resource = resource or node.embedded
        kept = {}
        for key, item in value.items():
            key_path = _child(path, key)
            if resource and key == "metadata":
                kept[key] = _prune_metadata(item, key_path, dropped)
            elif resource and key in TYPE_META:
                kept[key] = copy_json(item)
            elif key in node.properties or node.additional is not None:
                sub = node.child(key)
                if not _drops_null(item, sub):
                    kept[key] = _prune(item, sub, key_path, dropped)
            else:
                kept[key] = copy_json(item)
        return kept
    if isinstance(value, list):
        if node.items is None:
            return copy_json(value)
        return [_keep_unknown(item, node.items, f"{path}[{index}]", dropped, resource=False) for index, item in enumerate(value)]
    return value


def _prune_metadata(metadata: object, path: str, dropped: list[str]) -> object:
    if not isinstance(metadata, dict):
        return copy_json(metadata)
    kept = {}
    for key, item in metadata.items():
        if key in OBJECT_META_FIELDS:
            kept[key] = copy_json(item)
        else:
            dropped.append(_child(path, key))
    return kept
