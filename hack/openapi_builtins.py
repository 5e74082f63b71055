"""Generate operator/mlkube/local/apiserver/data/openapi_builtins.json.gz: the upstream OpenAPI schemas
of the built-in kinds the local API server serves, in OpenAPI v3 `components.schemas` form.

Run once per Kubernetes API bump (not at build or run time):

    python hack/openapi_builtins.py DEFINITIONS_JSON operator/mlkube/local/apiserver/data/openapi_builtins.json.gz

DEFINITIONS_JSON is `kubernetes_validate/kubernetes-json-schema/v1.32.0-local/_definitions.json`
from the `kubernetes-validate` package (Apache-2.0), which is upstream's v1.32.0 OpenAPI with
JSON-schema adjustments; this script undoes them: nullable type lists become the plain type, the
added single-value `apiVersion`/`kind` enums are dropped, IntOrString and Quantity get back their
upstream string forms, and `$ref`s point into `#/components/schemas/` (wrapped in `allOf` when the
reference has sibling keywords, as upstream's v3 documents do). Only definitions reachable from
the kinds of the served groups are kept.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

# Served API groups, as definition-name prefixes (io.k8s.api.<group>.<version>.<Kind>).
GROUP_PREFIXES = (
    "io.k8s.api.core.v1.",
    "io.k8s.api.apps.v1.",
    "io.k8s.api.batch.v1.",
    "io.k8s.api.autoscaling.v1.",
    "io.k8s.api.autoscaling.v2.",
    "io.k8s.api.coordination.v1.",
    "io.k8s.api.events.v1.",
    "io.k8s.api.rbac.v1.",
    "io.k8s.api.authorization.v1.",
    "io.k8s.api.authentication.v1.",
    "io.k8s.api.policy.v1.",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.",
    "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.",
)
ALWAYS = ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.Status")
REF = "#/components/schemas/"
UPSTREAM_FORMS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling "
        "and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field "
        "that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number. It provides convenient marshaling/"
        "unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.",
        "type": "string",
    },
}


def convert(node: Any) -> Any:
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            result[key] = kept[0] if len(kept) == 1 else kept
        elif key == "$ref" and isinstance(value, str):
            result[key] = REF + value.rsplit("/", 1)[1]
        else:
            result[key] = convert(value)
    if isinstance(result.get("$ref"), str) and len(result) > 1:
        ref = result.pop("$ref")
        result = {"allOf": [{"$ref": ref}], **result}
    return result


def references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"][len(REF) :])
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def main(source: str, target: str) -> None:
    with open(source) as handle:
        definitions = json.load(handle)["$defs"]
    converted: dict[str, Any] = {}
    for name, schema in definitions.items():
        schema = UPSTREAM_FORMS.get(name) or convert(schema)
        if schema.get("x-kubernetes-group-version-kind"):
            for field in ("apiVersion", "kind"):
                (schema.get("properties") or {}).get(field, {}).pop("enum", None)
        converted[name] = schema
    roots = [n for n, s in converted.items() if n.startswith(GROUP_PREFIXES) and s.get("x-kubernetes-group-version-kind")]
    keep: dict[str, Any] = {}
    pending = [*roots, *ALWAYS]
    while pending:
        name = pending.pop()
        if name not in keep:
            keep[name] = converted[name]
            pending.extend(references(keep[name]))
    document = {
        "source": "kubernetes-validate v1.32.0-local/_definitions.json (upstream Kubernetes v1.32.0 OpenAPI, Apache-2.0)",
        "definitions": dict(sorted(keep.items())),
    }
    with gzip.GzipFile(target, "wb", mtime=0) as handle:
        handle.write(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())


if __name__ == "__main__":
    main(*sys.argv[1:3])
