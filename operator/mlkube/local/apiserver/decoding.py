"""Decoding what clients send: resource paths, bodies by Content-Type, and query options.

Owns the URL grammar of resource endpoints, body decoding (JSON, YAML, patch types, the
protobuf envelope through protobuf.py) under the limits of limits.py (413 over 3 MiB, 400 for
bodies nested too deep or YAML aliases over budget, large YAML parsed off the event loop) and
the parsing of write, delete, list and watch options into plain values, with upstream's error
wording. Must not touch storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from typing import Any

import yaml
from aiohttp import web

from mlkube.local.apiserver import errors, jsonpath, limits, objects, patch_requests, protobuf, registry, selectors

JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (patch_requests.MERGE, patch_requests.JSON_PATCH, patch_requests.STRATEGIC, patch_requests.APPLY)
BODY_TYPES = ["application/json", "application/yaml", PROTOBUF]
YAML_ON_LOOP_BYTES = 64 * 1024  # larger YAML bodies are parsed in a worker thread (pure Python construction)


@dataclasses.dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    rtype: registry.ResourceType
    namespace: str  # "" for cluster-scoped types and all-namespace collections
    name: str = ""  # "" for a collection
    subresource: str = ""


def resolve(types: registry.Registry, group: str, version: str, segments: list[str]) -> Target:
    """Map the path segments after `/api/v1` or `/apis/g/v` to a Target; 404 when nothing is there."""
    namespace = ""
    if (
        len(segments) >= 3
        and segments[0] == "namespaces"
        and not (group == "" and len(segments) == 3 and segments[2] in ("status", "finalize"))
    ):
        namespace, segments = segments[1], segments[2:]
    if not segments or len(segments) > 3 or not all(segments):
        raise errors.path_not_found()
    rtype = types.lookup(group, version, segments[0])
    if rtype is None or (namespace and not rtype.namespaced):
        raise errors.path_not_found()
    name = segments[1] if len(segments) > 1 else ""
    subresource = segments[2] if len(segments) > 2 else ""
    if subresource and subresource not in rtype.subresources:
        raise errors.path_not_found()
    if rtype.namespaced and name and not namespace:
        raise errors.path_not_found()
    return Target(rtype, namespace, name, subresource)


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


async def read(request: web.Request) -> bytes:
    """The raw body; 413 (Status naming the limit) over limits.MAX_REQUEST_BYTES, before reading when the length is declared.

    The application's client_max_size enforces the same limit on bodies without a Content-Length.
    """
    declared = request.content_length
    if declared is not None and declared > limits.MAX_REQUEST_BYTES:
        raise errors.request_too_large(limits.MAX_REQUEST_BYTES, declared)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise errors.request_too_large(limits.MAX_REQUEST_BYTES) from exc


async def body(request: web.Request, *, patch: bool = False) -> tuple[str, Any]:
    """(media type, decoded body) of a write; 415 for formats the server does not read, 400 over the depth/alias limits."""
    content_type = media_type(request)
    raw = await read(request)
    if patch:
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, list(PATCH_TYPES))
        if content_type == patch_requests.APPLY:
            return content_type, _patch_shape(content_type, await _yaml_off_loop(raw))
        return content_type, _patch_shape(content_type, _json(raw))
    if content_type in JSON_TYPES:
        return "application/json", _json(raw)
    if content_type in YAML_TYPES:
        return content_type, await _yaml_off_loop(raw)
    if content_type == PROTOBUF:
        try:
            decoded = protobuf.decode(raw)
        except protobuf.Unsupported as exc:
            raise errors.unsupported_media_type(
                content_type, ["application/json", "application/yaml"], prefix=f"{exc}: "
            ) from exc
        except (protobuf.BadBody, RecursionError) as exc:
            raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from exc
        return content_type, _within_depth(decoded)
    raise errors.unsupported_media_type(content_type, BODY_TYPES)


async def _yaml_off_loop(raw: bytes) -> Any:
    """YAML construction is pure Python: a large body would hold the event loop for a second or more."""
    if len(raw) <= YAML_ON_LOOP_BYTES:
        return _yaml(raw)
    return await asyncio.to_thread(_yaml, raw)


def _patch_shape(content_type: str, decoded: Any) -> Any:
    if content_type == patch_requests.JSON_PATCH and not isinstance(decoded, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if content_type in (patch_requests.MERGE, patch_requests.STRATEGIC) and not isinstance(decoded, dict):
        raise errors.bad_request("json: cannot unmarshal the patch: it must be a JSON object")
    return decoded


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        decoded = json.loads(raw)
    except RecursionError as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {_too_deep()}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
    return _within_depth(decoded)


def _yaml(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        decoded = limits.load_yaml(raw)
    except limits.Exceeded as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from exc
    except RecursionError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {_too_deep()}") from exc
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from exc
    return _within_depth(decoded)


def _within_depth(decoded: Any) -> Any:
    try:
        limits.check_depth(decoded)
    except limits.Exceeded as exc:
        raise errors.bad_request(f"the request body could not be decoded: {exc}") from exc
    return decoded


def _too_deep() -> str:
    return f"the body nests objects and arrays more than {limits.MAX_DEPTH} levels deep, the limit of this server"


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def write_options(request: web.Request) -> objects.WriteOptions:
    query = request.query
    dry_run = query.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    validation = query.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Strict", "Warn"'
        )
    manager = query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0][:128]
    return objects.WriteOptions(
        dry_run=bool(dry_run), field_manager=manager, field_validation=validation, force=flag(query.get("force"))
    )


@dataclasses.dataclass(frozen=True)
class DeleteOptions:
    propagation: str = ""
    preconditions: dict[str, Any] | None = None
    dry_run: bool = False


def delete_options(request: web.Request, payload: Any) -> DeleteOptions:
    payload = payload if isinstance(payload, dict) else {}
    query = request.query
    propagation = payload.get("propagationPolicy") or query.get("propagationPolicy") or ""
    orphan = payload.get("orphanDependents", query.get("orphanDependents"))
    if not propagation and orphan is not None:
        propagation = "Orphan" if orphan in (True, "true") else "Background"
    if propagation and propagation not in ("Background", "Foreground", "Orphan"):
        raise errors.bad_request(
            f'propagationPolicy: Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan"'
        )
    dry_run = bool(payload.get("dryRun")) or bool(query.getall("dryRun", []))
    return DeleteOptions(propagation=propagation, preconditions=payload.get("preconditions"), dry_run=dry_run)


def selector(request: web.Request, rtype: registry.ResourceType) -> selectors.Selector:
    paths = {field: (lambda obj, p=path: jsonpath.first(obj, p)) for field, path in rtype.selectable_paths}
    return selectors.Selector(
        labels=selectors.parse_labels(request.query.get("labelSelector")),
        fields=selectors.parse_fields(request.query.get("fieldSelector"), rtype.field_selectors),
        jsonpaths=paths or None,
    )


def list_options_causes(request: web.Request, *, watch: bool) -> None:
    """Upstream `ValidateListOptions`/watch option rules for sendInitialEvents and resourceVersionMatch."""
    query = request.query
    send_initial = query.get("sendInitialEvents")
    match = query.get("resourceVersionMatch", "")
    causes = []
    if send_initial is not None and not watch:
        causes.append(
            errors.Cause("FieldValueForbidden", "Forbidden: sendInitialEvents is forbidden for list", "sendInitialEvents")
        )
    elif watch and flag(send_initial) and match != "NotOlderThan":
        causes.append(
            errors.Cause(
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                "resourceVersionMatch",
            )
        )
    elif watch and match and send_initial is None:
        causes.append(
            errors.Cause(
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                "resourceVersionMatch",
            )
        )
    if match and match not in ("NotOlderThan", "Exact"):
        causes.append(
            errors.Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"',
                "resourceVersionMatch",
            )
        )
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)


def number(request: web.Request, name: str, *, kind: type = int) -> Any:
    """A numeric query parameter (None when absent); 400 naming the parameter when it is not a number."""
    value = request.query.get(name, "")
    if value == "":
        return None
    try:
        parsed = kind(value)
    except ValueError as exc:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be a non-negative number') from exc
    # float() accepts "nan" and "inf": a watch with timeoutSeconds=nan would never end.
    if not math.isfinite(parsed) or parsed < 0:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be a finite non-negative number')
    return parsed


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "").replace(" ", "")
