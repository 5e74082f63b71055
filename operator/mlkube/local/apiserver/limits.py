"""Limits on what clients send and what is stored, with kube-apiserver's and etcd's numbers.

Owns the numbers (3 MiB request body, 1.5 MiB stored object, nesting depth, the YAML alias
budget) and the checks that need neither HTTP nor storage: the nesting depth of a decoded body,
and YAML loading that measures what aliases would expand to before building anything, so a
"billion laughs" body of a few hundred bytes is refused in microseconds. Must not read requests
or touch storage: callers turn `Exceeded` into their error response.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes
MAX_OBJECT_BYTES = 3 * 1024 * 1024 // 2  # etcd's default --max-request-bytes (1.5 MiB)
# Python recurses over objects (schemas, patches, pruning, apply): a cap well below where that
# overflows the interpreter's recursion limit (measured: custom resources fail near 500 levels,
# CRDs near 600; everything passes at 300) turns a 500 into a 400 naming the limit. Real objects
# stay far below it: the deepest CRD in this repository nests 20 levels, KServe's about 30.
MAX_DEPTH = 200
# Nodes that aliases may add to a YAML document by expansion. Kubernetes clients send JSON or
# alias-free YAML; go-yaml refuses "excessive aliasing" for the same reason.
YAML_ALIAS_BUDGET = 10_000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml also caps nesting at 1000 levels


class Exceeded(ValueError):
    """A body over one of the limits; the message names the limit and what to do."""


def check_depth(value: Any, *, limit: int = MAX_DEPTH) -> None:
    """Raise Exceeded when `value` nests dicts/lists more than `limit` levels deep (iterative: any depth is safe)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        if children is None:
            continue
        if depth > limit:
            raise Exceeded(
                f"the body nests objects and arrays more than {limit} levels deep, the limit of this server; "
                "flatten the data or store it outside the object"
            )
        stack.extend((child, depth + 1) for child in children)


def load_yaml(raw: bytes | str, *, alias_budget: int = YAML_ALIAS_BUDGET) -> Any:
    """yaml.safe_load of one document, refusing (Exceeded) aliases that would add more than `alias_budget` nodes."""
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        added = expanded_size(node) - _distinct(node)
        if added > alias_budget:
            raise Exceeded(
                f"the YAML body uses aliases (*name) that expand it by {added} nodes; the limit is {alias_budget}: "
                "write the repeated parts out, or send JSON"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def expanded_size(root: yaml.Node, *, cap: int = 10**12) -> int:
    """How many nodes `root` has once every alias is written out (at most `cap`); Exceeded on a cycle.

    Composed YAML shares one node object per anchor, so this walks each node once and sums the
    memoised sizes of its children: linear in the document, whatever it expands to.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(cap, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in open_nodes:
            raise Exceeded("the YAML body refers to itself through an alias (*name inside &name); it has no finite form")
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise Exceeded("the YAML body refers to itself through an alias (*name inside &name); it has no finite form")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _distinct(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(_children(node))
    return len(seen)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
