"""CustomResourceDefinitions generated from the API models.

Pydantic's JSON Schema is turned into a *structural* OpenAPI v3 schema as apiextensions.k8s.io/v1
requires: ``$ref`` inlined, a ``type`` on every node, ``anyOf [T, null]`` as ``nullable``,
``int | str`` as ``x-kubernetes-int-or-string``, free-form values as
``x-kubernetes-preserve-unknown-fields``, titles dropped, docstrings kept as descriptions.
The files in ``crds/`` are this module's output and are never edited by hand.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import yaml

from mlkube.api import base, kinds

_KEEP = {
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "nullable",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON Schema node (with its ``$defs``) to a structural schema node."""
    node = dict(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k in ("description", "default")}}
        return structural(merged, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        return structural({**inner, **node}, defs)
    if "anyOf" in node:
        variants = node.pop("anyOf")
        nullable = any(v.get("type") == "null" for v in variants)
        variants = [v for v in variants if v.get("type") != "null"]
        types = {v.get("type") for v in variants}
        if len(variants) == 1:
            out = structural({**variants[0], **node}, defs)
        elif types == {"integer", "string"}:
            out = _finish({**node, "x-kubernetes-int-or-string": True})
        else:
            # A value of several shapes (e.g. a number or a string): kept as written.
            out = _finish({**node, "x-kubernetes-preserve-unknown-fields": True})
        if nullable:
            out["nullable"] = True
        return out
    if "const" in node:
        node["enum"] = [node.pop("const")]
    kind = node.get("type")
    if kind == "object":
        props = node.pop("properties", None)
        extra = node.pop("additionalProperties", None)
        required = node.pop("required", None)
        out = _finish(node)
        if props is not None:
            out["properties"] = {name: structural(sub, defs) for name, sub in props.items()}
            if required:
                out["required"] = sorted(required)
        elif isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    if kind == "array":
        items = node.pop("items", {})
        out = _finish(node)
        out["items"] = structural(items, defs) if items else {"x-kubernetes-preserve-unknown-fields": True}
        return out
    if kind is None:
        return _finish({**node, "x-kubernetes-preserve-unknown-fields": True})
    return _finish(node)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k in _KEEP}
    # JSON Schema 2020 (pydantic) has numeric exclusive bounds; OpenAPI v3.0 (Kubernetes) has
    # the bound in minimum/maximum and a boolean flag.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), (int, float)) and not isinstance(out[exclusive], bool):
            out[bound] = out[exclusive]
            out[exclusive] = True
    # Defaults are documented, not applied by the API server: stored objects stay exactly as the
    # user wrote them (no GitOps drift), and a TrainingJob field left unset can still take the
    # project's template value. The operator applies the defaults when it parses a spec.
    default = out.pop("default", None)
    if "description" in out:
        out["description"] = " ".join(out["description"].split())
        if default not in (None, [], {}):
            out["description"] += f" Default: {json.dumps(default)}."
    return out


def schema_of(model: type[base.ApiModel]) -> dict[str, Any]:
    """The structural schema of one spec or status model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def crd(kind: kinds.Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec_schema = schema_of(kind.spec)
    status_schema = schema_of(kind.status)
    spec_schema["description"] = kind.spec.__doc__.strip()
    status_schema["description"] = kind.status.__doc__.strip()
    root = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "mlkube"}},
        "spec": {
            "group": base.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["mlkube"],
            },
            "versions": [
                {
                    "name": base.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.crd() for c in kind.columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def file_name(kind: kinds.Kind) -> str:
    return f"{base.GROUP}_{kind.plural}.yaml"


def render(kind: kinds.Kind) -> str:
    """The YAML text of one CRD file."""
    header = "# Generated by `mlkube crds` from operator/mlkube/api. Do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120)


def kustomization() -> str:
    files = "".join(f"  - {file_name(k)}\n" for k in kinds.ALL)
    return (
        "# Generated by `mlkube crds`. Do not edit.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + files
    )


def expected_files() -> dict[str, str]:
    """Every file ``mlkube crds`` writes, by name."""
    files = {file_name(k): render(k) for k in kinds.ALL}
    files["kustomization.yaml"] = kustomization()
    return files


def write(directory: pathlib.Path) -> list[pathlib.Path]:
    """Write the CRDs into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def differences(directory: pathlib.Path) -> list[str]:
    """Names of files in ``directory`` that are missing or differ from a fresh generation."""
    stale = []
    for name, text in expected_files().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale
