"""OpenAPI v3 (the index with content hashes and one document per group/version) and v2.

Owns what kubectl reads from `/openapi/v3`: PATCH operations carrying
`x-kubernetes-group-version-kind` and the `fieldValidation`/`dryRun`/`fieldManager`/`force`
parameters (so kubectl validates server-side), and the component schemas `kubectl explain`
prints: CRD schemas as written; built-ins the upstream v1.32 schemas of data/openapi_builtins.json.gz
(made by hack/openapi_builtins.py) with every definition they reference, or a lean schema for a
kind missing there. `/openapi/v2` is the same definitions as one Swagger 2.0 JSON document
(definitions only, no paths). Must not touch storage.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import pathlib
from typing import Any

from mlkube.local.apiserver import registry

BUILTINS_PATH = pathlib.Path(__file__).with_name("data") / "openapi_builtins.json.gz"

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF_PREFIX = "#/components/schemas/"

_BUILTIN_PREFIX = {
    "": "io.k8s.api.core",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}


@functools.cache
def upstream_definitions() -> dict[str, Any]:
    """Upstream schemas by definition name (io.k8s.api.apps.v1.Deployment ...), refs into #/components/schemas/."""
    with gzip.open(BUILTINS_PATH, "rt") as handle:
        return json.load(handle)["definitions"]


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
OBJECT_META_SCHEMA: dict[str, Any] = {
    "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
    "type": "object",
    "properties": {
        "name": _string("Name must be unique within a namespace."),
        "generateName": _string(
            "GenerateName is an optional prefix, used by the server, to generate a unique name "
            "ONLY IF the Name field has not been provided."
        ),
        "namespace": _string("Namespace defines the space within which each name must be unique."),
        "uid": _string("UID is the unique in time and space value for this object."),
        "resourceVersion": _string("An opaque value that represents the internal version of this object."),
        "generation": {
            "type": "integer",
            "format": "int64",
            "description": "A sequence number representing a specific generation of the desired state.",
        },
        "creationTimestamp": _string(
            "CreationTimestamp is a timestamp representing the server time when this object was created.", format="date-time"
        ),
        "deletionTimestamp": _string(
            "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted.", format="date-time"
        ),
        "deletionGracePeriodSeconds": {
            "type": "integer",
            "format": "int64",
            "description": "Number of seconds allowed for this object to gracefully "
            "terminate before it will be removed from the system.",
        },
        "labels": {
            **_STRING_MAP,
            "description": "Map of string keys and values that can be used to organize and "
            "categorize (scope and select) objects.",
        },
        "annotations": {
            **_STRING_MAP,
            "description": "Annotations is an unstructured key value map stored with a "
            "resource that may be set by external tools.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string", "default": ""},
            "x-kubernetes-list-type": "set",
            "description": "Must be empty before the object is deleted from the registry.",
        },
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "description": "List of objects depended by this object.",
            "items": {
                "type": "object",
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": _string("API version of the referent."),
                    "kind": _string("Kind of the referent."),
                    "name": _string("Name of the referent."),
                    "uid": _string("UID of the referent."),
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "managedFields": {
            "type": "array",
            "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}

_API_VERSION = _string("APIVersion defines the versioned schema of this representation of an object.")
_KIND = _string("Kind is a string value representing the REST resource this object represents.")
_OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_BUILTIN_FIELDS: dict[str, dict[str, Any]] = {
    "ConfigMap": {
        "data": {**_STRING_MAP, "description": "Data contains the configuration data."},
        "binaryData": {**_STRING_MAP, "description": "BinaryData contains the binary data."},
        "immutable": {
            "type": "boolean",
            "description": "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated.",
        },
    },
    "Secret": {
        "data": {**_STRING_MAP, "description": "Data contains the secret data (base64)."},
        "stringData": {**_STRING_MAP, "description": "stringData allows specifying non-binary secret data in string form."},
        "type": _string("Used to facilitate programmatic handling of secret data."),
        "immutable": {
            "type": "boolean",
            "description": "Immutable, if set to true, ensures that data stored in the Secret cannot be updated.",
        },
    },
}


def schema_name(rtype: registry.ResourceType) -> str:
    if rtype.custom:
        reversed_group = ".".join(reversed(rtype.group.split(".")))
        return f"{reversed_group}.{rtype.version}.{rtype.kind}"
    prefix = _BUILTIN_PREFIX.get(rtype.group, "io.k8s.api." + rtype.group.split(".")[0])
    return f"{prefix}.{rtype.version}.{rtype.kind}"


def _gvk(rtype: registry.ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}


def _kind_schema(rtype: registry.ResourceType) -> dict[str, Any]:
    upstream = None if rtype.custom else upstream_definitions().get(schema_name(rtype))
    if upstream is not None:
        return copy.deepcopy(upstream)
    if rtype.custom and rtype.schema:
        body = copy.deepcopy(rtype.schema)
    else:
        body = {
            "type": "object",
            "description": rtype.description or f"{rtype.kind} ({rtype.api_version}).",
            "properties": copy.deepcopy(_BUILTIN_FIELDS.get(rtype.kind, {"spec": _OPEN_OBJECT, "status": _OPEN_OBJECT})),
        }
        if rtype.kind not in _BUILTIN_FIELDS:
            body["x-kubernetes-preserve-unknown-fields"] = True
    properties = body.setdefault("properties", {})
    properties["apiVersion"] = _API_VERSION
    properties["kind"] = _KIND
    properties["metadata"] = {
        "allOf": [{"$ref": _REF_PREFIX + OBJECT_META}],
        "default": {},
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
        "contributors/devel/sig-architecture/api-conventions.md#metadata",
    }
    body["x-kubernetes-group-version-kind"] = [_gvk(rtype)]
    return body


def _parameter(name: str, description: str, location: str = "query", kind: str = "string") -> dict[str, Any]:
    parameter = {"name": name, "in": location, "description": description, "schema": {"type": kind}}
    if location == "path":
        parameter["required"] = True
    return parameter


_WRITE_PARAMETERS = [
    _parameter("dryRun", "When present, indicates that modifications should not be persisted."),
    _parameter("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
    _parameter(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request "
        "containing unknown or duplicate fields: Ignore, Warn (default) or Strict.",
    ),
]
_FORCE = _parameter("force", 'Force is going to "force" Apply requests.', kind="boolean")


def _operation(
    rtype: registry.ResourceType, action: str, ref: str, *, body: list[str] | None = None, parameters: list[dict] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{action}{rtype.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype),
        "parameters": parameters or [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}},
    }
    if body:
        schema = {"$ref": ref} if body == ["application/json"] else {"type": "object"}
        operation["requestBody"] = {"content": {media: {"schema": schema} for media in body}, "required": True}
    return operation


def _paths(rtype: registry.ResourceType) -> dict[str, Any]:
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    scope = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else f"{base}/{rtype.plural}"
    ref = _REF_PREFIX + schema_name(rtype)
    # Strategic merge patch is deliberately not advertised: kubectl then computes it from its built-in types.
    patch_types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    item = {
        "get": _operation(rtype, "get", ref),
        "put": _operation(rtype, "put", ref, body=["application/json"], parameters=_WRITE_PARAMETERS),
        "patch": _operation(rtype, "patch", ref, body=patch_types, parameters=_WRITE_PARAMETERS + [_FORCE]),
        "delete": _operation(rtype, "delete", ref, parameters=_WRITE_PARAMETERS[:1]),
        "parameters": [_parameter("name", f"name of the {rtype.kind}", "path")],
    }
    collection = {
        "get": _operation(rtype, "list", ref),
        "post": _operation(rtype, "post", ref, body=["application/json"], parameters=_WRITE_PARAMETERS),
    }
    if rtype.namespaced:
        namespace = _parameter("namespace", "object name and auth scope", "path")
        item["parameters"].append(namespace)
        collection["parameters"] = [namespace]
    paths = {scope: collection, f"{scope}/{{name}}": item}
    for sub in rtype.subresources:
        if sub in ("status", "scale"):
            paths[f"{scope}/{{name}}/{sub}"] = {
                "get": _operation(rtype, "get", ref),
                "put": _operation(rtype, "put", ref, body=["application/json"], parameters=_WRITE_PARAMETERS),
                "patch": _operation(rtype, "patch", ref, body=patch_types, parameters=_WRITE_PARAMETERS + [_FORCE]),
                "parameters": item["parameters"],
            }
    if rtype.namespaced:
        paths[f"{base}/{rtype.plural}"] = {"get": _operation(rtype, "list", ref)}
    return paths


def group_version_document(types: registry.Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = types.resources(group, version)
    if not resources:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {OBJECT_META: upstream_definitions().get(OBJECT_META, OBJECT_META_SCHEMA)}
    for rtype in resources:
        paths.update(_paths(rtype))
        schemas[schema_name(rtype)] = _kind_schema(rtype)
    _add_referenced(schemas)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _add_referenced(schemas: dict[str, Any]) -> None:
    """Add every upstream definition the schemas reference, transitively."""
    pending = [ref for schema in schemas.values() for ref in _references(schema)]
    definitions = upstream_definitions()
    while pending:
        name = pending.pop()
        if name not in schemas and name in definitions:
            schemas[name] = definitions[name]
            pending.extend(_references(definitions[name]))


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"][len(_REF_PREFIX) :]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def swagger_v2(types: registry.Registry) -> dict[str, Any]:
    """One Swagger 2.0 document with the definitions of every served kind (refs into #/definitions/)."""
    definitions: dict[str, Any] = {}
    for group, versions in types.group_versions().items():
        for version in versions:
            document = group_version_document(types, group, version)
            if document is not None:
                definitions.update(document["components"]["schemas"])
    text = json.dumps(definitions, sort_keys=True).replace('"' + _REF_PREFIX, '"#/definitions/')
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}, "definitions": json.loads(text)}


class Documents:
    """Serialised GV documents and their hashes, rebuilt when the registry changes."""

    def __init__(self, types: registry.Registry) -> None:
        self._types = types
        self._revision = -1
        self._documents: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._v2_revision = -1
        self._v2 = b""

    def _refresh(self) -> None:
        if self._revision == self._types.revision:
            return
        documents = {}
        for group, versions in self._types.group_versions().items():
            for version in versions:
                document = group_version_document(self._types, group, version)
                if document is not None:
                    path = f"apis/{group}/{version}" if group else f"api/{version}"
                    documents[path] = json.dumps(document, separators=(",", ":")).encode()
        self._documents = documents
        self._hashes = {path: hashlib.sha512(body).hexdigest().upper() for path, body in documents.items()}
        self._revision = self._types.revision

    def index(self) -> dict[str, Any]:
        self._refresh()
        return {
            "paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"} for path, digest in self._hashes.items()}
        }

    def document(self, path: str) -> bytes | None:
        self._refresh()
        return self._documents.get(path)

    def v2(self) -> bytes:
        if self._v2_revision != self._types.revision:
            self._v2 = json.dumps(swagger_v2(self._types), separators=(",", ":")).encode()
            self._v2_revision = self._types.revision
        return self._v2
