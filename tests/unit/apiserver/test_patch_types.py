"""patch_types.TYPES must equal a fresh extraction from the Kubernetes v1.32 OpenAPI
definitions (shipped by kubernetes-validate), so the table stays upstream's data."""

import json
import pathlib

import kubernetes_validate
import pytest

from mlkube.local.apiserver import patch_types

DEFINITIONS = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.32.0-local" / "_definitions.json"


def _reference(schema: dict) -> str | None:
    target = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
    return target.rsplit("/", 1)[-1] if target else None


def _child(prop: dict) -> tuple[str | None, str | None]:
    """(type name, wrapper): a struct or list element type, or the value type of a map."""
    if _reference(prop):
        return _reference(prop), None
    if isinstance(prop.get("items"), dict) and _reference(prop["items"]):
        return _reference(prop["items"]), None
    if isinstance(prop.get("additionalProperties"), dict) and _reference(prop["additionalProperties"]):
        return _reference(prop["additionalProperties"]), "map[{}]"
    return None, None


def _own_entry(prop: dict) -> dict:
    entry = {}
    for extension, key in (("x-kubernetes-patch-strategy", "patchStrategy"), ("x-kubernetes-patch-merge-key", "patchMergeKey")):
        if extension in prop:
            entry[key] = prop[extension]
    if prop.get("x-kubernetes-list-type") in ("set", "map"):
        entry["listType"] = prop["x-kubernetes-list-type"]
        if "x-kubernetes-list-map-keys" in prop:
            entry["listMapKeys"] = prop["x-kubernetes-list-map-keys"]
    if prop.get("x-kubernetes-map-type") == "atomic" and not _child(prop)[0]:
        entry["mapType"] = "atomic"
    return entry


def extract(definitions: dict, roots) -> dict:
    """Types reachable from `roots` that carry patch or list metadata (directly or below them),
    in patch_types' shape. Map-valued fields of such types are typed `map[<value type>]`."""
    reachable, pending = set(), list(roots)
    while pending:
        name = pending.pop()
        if name not in reachable:
            reachable.add(name)
            pending += [child for prop in definitions[name].get("properties", {}).values() if (child := _child(prop)[0])]
    interesting = {
        name
        for name in reachable
        if definitions[name].get("x-kubernetes-map-type") == "atomic"
        or any(_own_entry(prop) for prop in definitions[name].get("properties", {}).values())
    }
    while True:  # a type is kept when anything below it is, cycles included
        grown = {
            name
            for name in reachable - interesting
            if any(_child(prop)[0] in interesting for prop in definitions[name].get("properties", {}).values())
        }
        if not grown:
            break
        interesting |= grown
    table = {}
    for name in interesting:
        fields = {}
        for field_name, prop in definitions[name].get("properties", {}).items():
            entry = _own_entry(prop)
            child, wrapper = _child(prop)
            if child in interesting:
                entry["type"] = wrapper.format(child) if wrapper else child
            if entry:
                fields[field_name] = entry
        if definitions[name].get("x-kubernetes-map-type") == "atomic":
            fields[patch_types.ATOMIC] = True
        table[name] = fields
    return table


@pytest.mark.skipif(not DEFINITIONS.exists(), reason="kubernetes-validate without v1.32 definitions")
def test_table_matches_the_upstream_definitions():
    definitions = json.loads(DEFINITIONS.read_text())["$defs"]
    assert extract(definitions, patch_types.ROOT_TYPES.values()) == patch_types.TYPES


def test_lookups():
    pod_spec = "io.k8s.api.core.v1.PodSpec"
    assert patch_types.field(pod_spec, "containers")["patchMergeKey"] == "name"
    assert patch_types.field(pod_spec, "volumes")["patchStrategy"] == "merge,retainKeys"
    assert patch_types.field(pod_spec, "hostname") == {}
    assert patch_types.field(None, "anything") == {}
    assert patch_types.is_atomic("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
    assert not patch_types.is_atomic(pod_spec)
    assert patch_types.root_type("batch/v1", "Job") == "io.k8s.api.batch.v1.Job"
    schema_props = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
    properties = patch_types.field(schema_props, "properties")["type"]
    assert patch_types.field(properties, "any-property-name") == {"type": schema_props}
    assert patch_types.field(schema_props, "x-kubernetes-validations")["patchMergeKey"] == "rule"


def test_every_built_in_kind_the_server_serves_has_metadata():
    served = [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("v1", "Pod"),
        ("v1", "Event"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("coordination.k8s.io/v1", "Lease"),
        ("events.k8s.io/v1", "Event"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "Node"),
        ("v1", "ReplicationController"),
        ("apps/v1", "DaemonSet"),
        ("apiregistration.k8s.io/v1", "APIService"),
    ]
    assert [kind for kind in served if patch_types.root_type(*kind) is None] == []
