"""patch_types.TYPES must equal a fresh extraction from the Kubernetes v1.32 OpenAPI
definitions (shipped by kubernetes-validate), so the table stays upstream's data."""

import json
import pathlib

import kubernetes_validate
import pytest

from mlkube.local.apiserver import patch_types

DEFINITIONS = (pathlib.Path(kubernetes_validate.__file__).parent
               / "kubernetes-json-schema" / "v1.32.0-local" / "_definitions.json")


def _reference(schema: dict) -> str | None:
    target = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
    return target.rsplit("/", 1)[-1] if target else None


def extract(definitions: dict, roots) -> dict:
    """Types reachable from `roots` that carry patch or list metadata, in patch_types' shape."""
    found: dict = {}

    def visit(name: str):
        if name in found:
            return found[name]
        found[name] = None  # recursion guard (JSONSchemaProps-like cycles)
        fields = {}
        for field_name, prop in definitions[name].get("properties", {}).items():
            entry = {}
            child = _reference(prop) or (_reference(prop["items"]) if "items" in prop else None)
            if child and visit(child) is not None:
                entry["type"] = child
            for extension, key in (("x-kubernetes-patch-strategy", "patchStrategy"),
                                   ("x-kubernetes-patch-merge-key", "patchMergeKey")):
                if extension in prop:
                    entry[key] = prop[extension]
            if prop.get("x-kubernetes-list-type") in ("set", "map"):
                entry["listType"] = prop["x-kubernetes-list-type"]
                if "x-kubernetes-list-map-keys" in prop:
                    entry["listMapKeys"] = prop["x-kubernetes-list-map-keys"]
            if prop.get("x-kubernetes-map-type") == "atomic" and not child:
                entry["mapType"] = "atomic"
            if entry:
                fields[field_name] = entry
        if definitions[name].get("x-kubernetes-map-type") == "atomic":
            fields[patch_types.ATOMIC] = True
        found[name] = fields or None
        return found[name]

    for root in roots:
        visit(root)
    return {name: fields for name, fields in found.items() if fields is not None}


@pytest.mark.skipif(not DEFINITIONS.exists(), reason="kubernetes-validate without v1.32 definitions")
def test_table_matches_the_upstream_definitions():
    definitions = json.loads(DEFINITIONS.read_text())["$defs"]
    assert patch_types.TYPES == extract(definitions, patch_types.ROOT_TYPES.values())


def test_lookups():
    pod_spec = "io.k8s.api.core.v1.PodSpec"
    assert patch_types.field(pod_spec, "containers")["patchMergeKey"] == "name"
    assert patch_types.field(pod_spec, "volumes")["patchStrategy"] == "merge,retainKeys"
    assert patch_types.field(pod_spec, "hostname") == {}
    assert patch_types.field(None, "anything") == {}
    assert patch_types.is_atomic("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
    assert not patch_types.is_atomic(pod_spec)
    assert patch_types.root_type("batch/v1", "Job") == "io.k8s.api.batch.v1.Job"
