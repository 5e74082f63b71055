"""Decoding of the protobuf request bodies kubectl 1.32 sends for `kubectl create
namespace|configmap|secret|serviceaccount` (Content-Type application/vnd.kubernetes.protobuf).

Owns: the `k8s\\x00` envelope (`runtime.Unknown`), a minimal protobuf wire reader, and the
field numbers of the four messages (from `k8s.io/api/core/v1/generated.proto` and
`k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`), turned into the JSON shape the
API server stores: `omitempty` scalars dropped, `bytes` as base64, `Time` as RFC 3339.
Must not: encode protobuf responses (every client accepts JSON) or guess at other kinds:
anything else raises `Unsupported` (the core answers 415) and a corrupt body `BadBody` (400).
"""

from __future__ import annotations

import base64
import datetime

MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class Unsupported(Exception):
    """A protobuf body of a kind this server cannot decode."""


class BadBody(ValueError):
    """A body that is not a well-formed Kubernetes protobuf envelope."""


# Message schemas: field number -> (JSON name, how to decode). "string", "bytes", "bool"
# and "int" are omitted when empty/zero, like Go's `omitempty`; "bool?" and "int?" are
# pointer fields and kept even when false/zero; "[...]" marks repeated fields.
_TIME = "time"
_OWNER_REFERENCE = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool?"),
    7: ("blockOwnerDeletion", "bool?"),
}
_OBJECT_META = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    4: ("selfLink", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", _TIME),
    9: ("deletionTimestamp", _TIME),
    10: ("deletionGracePeriodSeconds", "int?"),
    11: ("labels", "map:string"),
    12: ("annotations", "map:string"),
    13: ("ownerReferences", [_OWNER_REFERENCE]),
    14: ("finalizers", ["string"]),
}
_OBJECT_REFERENCE = {
    1: ("kind", "string"),
    2: ("namespace", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("resourceVersion", "string"),
    7: ("fieldPath", "string"),
}
_NAMESPACE_CONDITION = {
    1: ("type", "string"),
    2: ("status", "string"),
    4: ("lastTransitionTime", _TIME),
    5: ("reason", "string"),
    6: ("message", "string"),
}
_KINDS = {
    ("v1", "Namespace"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("finalizers", ["string"])}),
        3: ("status", {1: ("phase", "string"), 2: ("conditions", [_NAMESPACE_CONDITION])}),
    },
    ("v1", "ConfigMap"): {
        1: ("metadata", _OBJECT_META),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool?"),
    },
    ("v1", "Secret"): {
        1: ("metadata", _OBJECT_META),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool?"),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", _OBJECT_META),
        2: ("secrets", [_OBJECT_REFERENCE]),
        3: ("imagePullSecrets", [{1: ("name", "string")}]),
        4: ("automountServiceAccountToken", "bool?"),
    },
}


def decode(body: bytes) -> dict:
    """The JSON-shaped object (apiVersion, kind, metadata, ...) carried by a protobuf body."""
    if not body.startswith(MAGIC):
        raise BadBody("the protobuf body does not start with the k8s\\x00 envelope prefix")
    envelope = _fields(memoryview(body)[len(MAGIC) :], "runtime.Unknown")
    type_meta = _fields(_last(envelope, 1, b""), "TypeMeta")
    api_version = _text(_last(type_meta, 1, b""))
    kind = _text(_last(type_meta, 2, b""))
    encoding = _text(_last(envelope, 3, b""))
    schema = _KINDS.get((api_version, kind))
    if schema is None:
        raise Unsupported(
            f"protobuf request bodies are decoded for v1 Namespace, ConfigMap, Secret and "
            f"ServiceAccount only, not {api_version or '?'} {kind or '?'}; send the object "
            "as JSON (Content-Type: application/json)"
        )
    if encoding:
        raise Unsupported(f"protobuf content encoding {encoding!r} is not supported")
    obj = {"apiVersion": api_version, "kind": kind}
    obj.update(_message(_last(envelope, 2, b""), schema, kind))
    return obj


def _message(data, schema: dict, name: str) -> dict:
    fields = _fields(data, name)
    result = {}
    for number, (json_name, how) in schema.items():
        if number not in fields:
            continue
        values = fields[number]
        where = f"{name}.{json_name}"
        if isinstance(how, list):
            result[json_name] = [_scalar_or_message(value, how[0], where) for value in values]
        elif isinstance(how, str) and how.startswith("map:"):
            result[json_name] = dict(_map_entry(value, how[4:], where) for value in values)
        else:
            value = _scalar_or_message(values[-1], how, where)
            if value is not _OMIT:
                result[json_name] = value
    return result


_OMIT = object()


def _scalar_or_message(value, how, where: str):
    if isinstance(how, dict):
        return _message(_expect_bytes(value, where), how, where)
    if how == _TIME:
        return _time(_expect_bytes(value, where), where)
    if how in ("string", "bytes"):
        data = _expect_bytes(value, where)
        decoded = _text(data, where) if how == "string" else base64.b64encode(data).decode("ascii")
        return decoded if decoded else _OMIT
    if not isinstance(value, int):
        raise BadBody(f"{where}: expected a varint")
    if how in ("bool", "bool?"):
        return bool(value) if (value or how == "bool?") else _OMIT
    number = value - (1 << 64) if value >= 1 << 63 else value  # int64 two's complement
    return number if (number or how == "int?") else _OMIT


def _map_entry(value, value_kind: str, where: str) -> tuple[str, str]:
    entry = _fields(_expect_bytes(value, where), where)
    key = _text(_last(entry, 1, b""), where)
    raw = _expect_bytes(_last(entry, 2, b""), where)
    return key, (_text(raw, where) if value_kind == "string" else base64.b64encode(raw).decode("ascii"))


def _time(data, where: str):
    fields = _fields(data, where)
    seconds = _last(fields, 1, 0)
    if not isinstance(seconds, int):
        raise BadBody(f"{where}: expected seconds as a varint")
    if seconds == 0:
        return _OMIT  # Go's zero metav1.Time, rendered as null
    seconds = seconds - (1 << 64) if seconds >= 1 << 63 else seconds
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- protobuf wire format ---------------------------------------------------------------


def _fields(data, name: str) -> dict[int, list]:
    """Field number -> values in order: ints for varint/fixed fields, memoryviews for bytes."""
    data = memoryview(data)
    fields: dict[int, list] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position, name)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise BadBody(f"{name}: field number 0 at byte {position}")
        if wire_type == _VARINT:
            value, position = _varint(data, position, name)
        elif wire_type == _LENGTH:
            length, position = _varint(data, position, name)
            if position + length > len(data):
                raise BadBody(f"{name}: field {number} runs past the end of the message")
            value, position = data[position : position + length], position + length
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if position + size > len(data):
                raise BadBody(f"{name}: field {number} runs past the end of the message")
            value, position = int.from_bytes(data[position : position + size], "little"), position + size
        else:
            raise BadBody(f"{name}: unsupported wire type {wire_type} for field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def _varint(data, position: int, name: str) -> tuple[int, int]:
    result, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            break
    raise BadBody(f"{name}: truncated or overlong varint")


def _last(fields: dict[int, list], number: int, default):
    values = fields.get(number)
    return values[-1] if values else default


def _expect_bytes(value, where: str):
    if not isinstance(value, (bytes, memoryview)):
        raise BadBody(f"{where}: expected a length-delimited field")
    return value


def _text(data, where: str = "TypeMeta") -> str:
    try:
        return bytes(_expect_bytes(data, where)).decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadBody(f"{where}: not valid UTF-8") from error
