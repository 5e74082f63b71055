"""CustomResourceDefinitions: validation, the status the API server reports, and the types they serve.

Owns CRD-level rules (name = plural.group, one storage version, structural schemas through
schema.py, printer columns) and the translation of a CRD into `registry.ResourceType`s. Must not
write storage: objects.py calls these functions while committing a CRD.
"""

from __future__ import annotations

import copy
from typing import Any

from mlkube.local.apiserver import errors, jsonpath, metadata, registry, schema

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _invalid(field: str, value: Any, message: str) -> errors.Cause:
    return errors.Cause("FieldValueInvalid", f"Invalid value: {_render(value)}: {message}", field)


def _required(field: str, message: str = "") -> errors.Cause:
    return errors.Cause("FieldValueRequired", "Required value" + (f": {message}" if message else ""), field)


def _render(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


# JSONSchemaProps fields with a fixed Go type: a CRD whose schema gives them another JSON type cannot be
# decoded by kube-apiserver (e.g. JSON Schema 2020's numeric `exclusiveMinimum`, which v1 types as bool).
_BOOL_FIELDS = (
    "exclusiveMinimum",
    "exclusiveMaximum",
    "nullable",
    "uniqueItems",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
)
_NUMBER_FIELDS = ("minimum", "maximum", "multipleOf")
_INT_FIELDS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
_STRING_FIELDS = (
    "type",
    "format",
    "pattern",
    "description",
    "title",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "$ref",
    "id",
    "$schema",
)
_GO_TYPES = {bool: "bool", float: "float64", int: "int64", str: "string"}


def decoding_error(crd: dict[str, Any]) -> str:
    """Why kube-apiserver could not decode this CRD's schemas into JSONSchemaProps ("" when it could)."""
    for version in (crd.get("spec") or {}).get("versions") or []:
        openapi = (version.get("schema") or {}).get("openAPIV3Schema")
        if isinstance(openapi, dict):
            problem = _schema_decoding_error(openapi, "spec.versions.schema.openAPIV3Schema")
            if problem:
                return problem
    return ""


def _schema_decoding_error(node: dict[str, Any], where: str) -> str:
    checks = [(_BOOL_FIELDS, bool), (_NUMBER_FIELDS, float), (_INT_FIELDS, int), (_STRING_FIELDS, str)]
    for fields, expected in checks:
        for field in fields:
            if field not in node:
                continue
            value = node[field]
            ok = (
                isinstance(value, bool)
                if expected is bool
                else isinstance(value, (int, float)) and not isinstance(value, bool)
                if expected is float
                else isinstance(value, int) and not isinstance(value, bool)
                if expected is int
                else isinstance(value, str)
            )
            if not ok:
                found = {bool: "bool", str: "string", list: "array", dict: "object"}.get(type(value), "number")
                return (
                    f"json: cannot unmarshal {found} into Go struct field JSONSchemaProps.{where}.{field} of "
                    f"type {_GO_TYPES[expected]}"
                )
    children: list[tuple[str, Any]] = [(f"{where}.properties.{k}", v) for k, v in (node.get("properties") or {}).items()]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            children.append((f"{where}.{key}", node[key]))
    for key in ("allOf", "anyOf", "oneOf"):
        children += [(f"{where}.{key}", child) for child in node.get(key) or []]
    for child_where, child in children:
        if isinstance(child, dict) and (problem := _schema_decoding_error(child, child_where)):
            return problem
    return ""


def accepted_names(crd: dict[str, Any]) -> dict[str, Any]:
    names = dict(crd["spec"].get("names") or {})
    kind = names.get("kind", "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    return names


def causes(crd: dict[str, Any]) -> list[errors.Cause]:
    """Everything wrong with a CRD, worded as the upstream apiextensions validation words it."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    found: list[errors.Cause] = []
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural, kind = names.get("plural") or "", names.get("kind") or ""
    if not group:
        found.append(_required("spec.group"))
    elif "." not in group:
        found.append(_invalid("spec.group", group, "should be a domain with at least one dot"))
    if not plural:
        found.append(_required("spec.names.plural"))
    if not kind:
        found.append(_required("spec.names.kind"))
    if plural and group and crd["metadata"].get("name") != f"{plural}.{group}":
        found.append(_invalid("metadata.name", crd["metadata"].get("name", ""), 'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        found.append(
            errors.Cause(
                "FieldValueNotSupported",
                f'Unsupported value: {_render(spec.get("scope"))}: supported values: "Cluster", "Namespaced"',
                "spec.scope",
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        found.append(_required("spec.versions", "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        found.append(_invalid("spec.versions", "", "must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        found.extend(_version_causes(version, f"spec.versions[{index}]"))
    return found


def _version_causes(version: dict[str, Any], where: str) -> list[errors.Cause]:
    found: list[errors.Cause] = []
    if not version.get("name"):
        found.append(_required(f"{where}.name"))
    openapi = (version.get("schema") or {}).get("openAPIV3Schema")
    if openapi is None:
        found.append(_required(f"{where}.schema.openAPIV3Schema", "schemas are required"))
    else:
        for cause in schema.structural_errors(openapi, path=f"{where}.schema.openAPIV3Schema"):
            found.append(errors.Cause(cause.reason, cause.message, cause.field))
    for index, column in enumerate(version.get("additionalPrinterColumns") or []):
        field = f"{where}.additionalPrinterColumns[{index}]"
        if not column.get("name"):
            found.append(_required(f"{field}.name"))
        if not column.get("jsonPath"):
            found.append(_required(f"{field}.jsonPath"))
        else:
            try:
                jsonpath.compile_path(column["jsonPath"])
            except ValueError as exc:
                found.append(_invalid(f"{field}.jsonPath", column["jsonPath"], str(exc)))
        if column.get("type") not in ("integer", "number", "string", "boolean", "date"):
            found.append(
                errors.Cause(
                    "FieldValueNotSupported",
                    f"Unsupported value: {_render(column.get('type'))}: supported values: "
                    '"integer", "number", "string", "boolean", "date"',
                    f"{field}.type",
                )
            )
    return found


def _condition(type_: str, reason: str, message: str, old: dict[str, Any], when: str) -> dict[str, Any]:
    previous = {c.get("type"): c for c in (old.get("status") or {}).get("conditions") or []}.get(type_) or {}
    since = previous.get("lastTransitionTime") if previous.get("status") == "True" else None
    return {"type": type_, "status": "True", "lastTransitionTime": since or when, "reason": reason, "message": message}


def with_status(crd: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """The CRD with the status the server maintains: accepted names, Established, stored versions."""
    crd = copy.deepcopy(crd)
    old = old or {}
    when = metadata.format_time(metadata.now())
    stored = list((old.get("status") or {}).get("storedVersions") or [])
    for version in crd["spec"]["versions"]:
        if version.get("storage") and version["name"] not in stored:
            stored.append(version["name"])
    crd["status"] = {
        "acceptedNames": accepted_names(crd),
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", old, when),
            _condition("Established", "InitialNamesAccepted", "the initial names have been accepted", old, when),
        ],
        "storedVersions": stored,
    }
    return crd


def resource_types(crd: dict[str, Any]) -> list[registry.ResourceType]:
    """One ResourceType per served version, in Kubernetes version-priority order."""
    spec = crd["spec"]
    names = accepted_names(crd)
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    types = []
    for version in sorted(spec["versions"], key=lambda v: registry.version_priority(v["name"])):
        if not version.get("served", True):
            continue
        # The scale subresource is not served (no controller reads it locally); status is.
        subresources = ("status",) if "status" in (version.get("subresources") or {}) else ()
        selectable = tuple(
            (".".join(p for p in f["jsonPath"].split(".") if p), f["jsonPath"]) for f in version.get("selectableFields") or []
        )
        types.append(
            registry.ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                singular=names["singular"],
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                custom=True,
                uses_generation=True,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                storage_version=storage,
                selectable_paths=selectable,
                description=((version.get("schema") or {}).get("openAPIV3Schema") or {}).get("description", ""),
            )
        )
    return types
