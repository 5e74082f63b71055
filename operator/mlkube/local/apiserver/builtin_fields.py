"""Unknown-field detection for built-in kinds, from the upstream v1.32 OpenAPI definitions.

kube-apiserver decodes built-in objects into Go structs, so a field the type does not have is
dropped (fieldValidation Warn/Ignore) or refused (Strict) - e.g. a Deployment's misspelt
`spec.replica`. This module finds such fields using the strict JSON schemas that the
`kubernetes-validate` package ships (generated from upstream OpenAPI). When that package is not
installed, detection is off and objects are stored as sent. Owns only that walk; must not validate
values (types, enums): that is the built-in registries' job, not emulated here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import pathlib
from typing import Any

SCHEMA_DIR = "kubernetes-json-schema/v1.32.0-local-strict"


@functools.lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / SCHEMA_DIR / "_definitions.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["$defs"]


@functools.cache
def _root(group: str, version: str, kind: str) -> dict[str, Any] | None:
    for definition in _definitions().values():
        for gvk in definition.get("x-kubernetes-group-version-kind") or ():
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return definition
    return None


def available() -> bool:
    return bool(_definitions())


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _definitions().get(schema["$ref"].rpartition("$defs/")[2], {})
    return schema


def _unknown(value: Any, schema: dict[str, Any], path: str, found: list[tuple[str, list]], tokens: list) -> None:
    schema = _resolve(schema)
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            where = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                _unknown(child, properties[key], where, found, tokens + [key])
            elif isinstance(extra, dict):
                _unknown(child, extra, where, found, tokens + [key])
            elif properties is not None and extra is False:
                found.append((where, tokens + [key]))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _unknown(item, schema["items"], f"{path}[{index}]", found, tokens + [index])


def prune_unknown(obj: dict[str, Any], *, group: str, version: str, kind: str) -> tuple[dict[str, Any], list[str]]:
    """`obj` without the fields its built-in type does not have, and their paths (`spec.containers[0].imagee`).

    Returns `obj` itself when nothing is unknown (the common case), a pruned copy otherwise.
    """
    root = _root(group, version, kind)
    if root is None:
        return obj, []
    found: list[tuple[str, list]] = []
    _unknown(obj, root, "", found, [])
    if not found:
        return obj, []
    pruned = json.loads(json.dumps(obj))
    for _, tokens in sorted(found, key=lambda entry: entry[1], reverse=True):
        parent = pruned
        for token in tokens[:-1]:
            parent = parent[token]
        del parent[tokens[-1]]
    return pruned, [where for where, _ in found]
