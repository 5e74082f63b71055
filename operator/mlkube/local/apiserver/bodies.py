"""The checks and rewrites of a write's object body that need no store: identity, fields, schema, stored form.

Owns JSON deep copies, the 400s for bodies kube-apiserver could not decode or that name another
apiVersion/kind/namespace/name than the request, the resourceVersion a PUT of a custom resource
needs, unknown-field handling by fieldValidation (Strict 400, Warn warnings, Ignore silence), CRD
schema defaulting and validation of custom resources, the status subresource rule (the main
endpoint keeps status, /status changes only status) and the stored form (ObjectMeta `omitempty`,
the storage version, what generation and no-op detection compare). Every function is pure.
Must not read or write the store, set server-owned metadata (uid, timestamps, generation,
managedFields) or decide conflicts; `objects` does.
"""

from __future__ import annotations

import json
from typing import Any

from mlkube.local.apiserver import builtin_fields, crds, errors, registry, schema

_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


def clone(obj: Any) -> Any:
    """A deep copy of JSON data (faster than copy.deepcopy for these shapes)."""
    return json.loads(json.dumps(obj))


def is_crd(rtype: registry.ResourceType) -> bool:
    """True for the CustomResourceDefinition resource itself."""
    return (rtype.group, rtype.plural) == _CRDS


def checked_body(rtype: registry.ResourceType, namespace: str, body: Any, *, name: str = "") -> dict:
    """A copy of the request `body` with apiVersion, kind, metadata (and, given `name`, metadata.name)
    filled in; 400 when it is not an object of `rtype` in `namespace` named `name`."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a {rtype.kind} object")
    obj = clone(body)
    api_version, kind = obj.setdefault("apiVersion", rtype.api_version), obj.setdefault("kind", rtype.kind)
    if api_version != rtype.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
        )
    if kind != rtype.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if name and meta.get("name", name) != name:
        raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    if name:
        meta["name"] = name
    check_decodable(rtype, obj)
    return obj


def check_resource_version(rtype: registry.ResourceType, obj: dict[str, Any]) -> None:
    """422 for a PUT of a custom resource without metadata.resourceVersion (upstream requires one)."""
    if rtype.custom and not obj["metadata"].get("resourceVersion"):
        raise errors.invalid(
            rtype.kind,
            rtype.group,
            obj["metadata"]["name"],
            [
                errors.Cause(
                    "FieldValueInvalid", "Invalid value: 0x0: must be specified for an update", "metadata.resourceVersion"
                )
            ],
        )


def check_decodable(rtype: registry.ResourceType, obj: dict[str, Any]) -> None:
    """400 for bodies kube-apiserver could not even decode into its Go types (CRD schemas)."""
    if is_crd(rtype) and (problem := crds.decoding_error(obj)):
        raise errors.bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {problem}')


def schema_pass(
    rtype: registry.ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *, field_validation: str
) -> tuple[dict[str, Any], list[str], list[errors.Cause]]:
    """Drop unknown fields (`field_validation` decides: 400, warnings or silence); for custom resources
    also default and validate against the CRD schema. Returns the object, warnings and causes."""
    if rtype.custom and rtype.schema:
        pruned, dropped = schema.prune(obj, rtype.schema)
    elif not rtype.custom and not is_crd(rtype):
        pruned, dropped = builtin_fields.prune_unknown(obj, group=rtype.group, version=rtype.version, kind=rtype.kind)
    else:
        return obj, [], []
    warnings: list[str] = []
    if dropped and field_validation == "Strict":
        unknown = ", ".join(f'unknown field "{path}"' for path in dropped)
        raise errors.bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: strict decoding error: {unknown}'
        )
    if dropped and field_validation != "Ignore":
        warnings = [f'unknown field "{path}"' for path in dropped]
    if not rtype.custom:
        return pruned, warnings, []
    defaulted = schema.default(pruned, rtype.schema)
    causes = [errors.Cause(c.reason, c.message, c.field) for c in schema.validate(defaulted, rtype.schema, old=old)]
    return defaulted, warnings, causes


def split_status(rtype: registry.ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str) -> dict[str, Any]:
    """The status subresource rule: the main endpoint keeps status, /status changes only status."""
    if subresource in ("status", "finalize"):
        result = clone(old)
        result["apiVersion"] = new.get("apiVersion", old["apiVersion"])
        if new["metadata"].get("managedFields") is not None:
            result["metadata"]["managedFields"] = new["metadata"]["managedFields"]
        if subresource == "status":
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
        return result
    if rtype.has_status:
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    return new


def generation_fields(rtype: registry.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What a generation counts: everything outside metadata, except status when it is a subresource."""
    ignored = ("metadata", "apiVersion", "kind", "status") if rtype.has_status else ("metadata", "apiVersion", "kind")
    return {k: v for k, v in obj.items() if k not in ignored}


def compact_metadata(obj: dict[str, Any]) -> None:
    """ObjectMeta's `omitempty`: empty maps and lists are not stored (so `{"x": null}` on no annotations is a no-op)."""
    meta = obj["metadata"]
    for field in ("labels", "annotations", "finalizers", "ownerReferences", "managedFields"):
        if field in meta and not meta[field]:
            del meta[field]


def without_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without what every write changes (resourceVersion, managedFields): equal means a no-op."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


def to_storage(rtype: registry.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` (changed in place) at the storage version of its custom resource."""
    if rtype.custom and rtype.version != rtype.storage_version:
        obj["apiVersion"] = rtype.storage_api_version
    return obj
