"""Decoding of the protobuf request bodies kubectl 1.32 sends for built-in kinds
(`kubectl create deployment|job|cronjob|service|namespace|configmap|secret|...`, `kubectl run`,
`kubectl auth can-i`; Content-Type application/vnd.kubernetes.protobuf).

Owns: the `k8s\\x00` envelope (`runtime.Unknown`), a minimal protobuf wire reader, and a generic
message decoder driven by data/protobuf_messages.json, a table generated once by
hack/protobuf_table.py from upstream `generated.proto` field numbers and the Go struct tags of
k8s.io/api and k8s.io/apimachinery. The result has the JSON shape the API server stores:
zero scalars dropped where Go's `omitempty` drops them (kept for pointers), `bytes` as base64,
`Time` as RFC 3339, `MicroTime` with microseconds, `Quantity`/`IntOrString` as their JSON scalars.
Must not: encode protobuf responses (every client accepts JSON) or guess at kinds missing from
the table: those raise `Unsupported` (the core answers 415) and a corrupt body `BadBody` (400).
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import pathlib
import struct

MAGIC = b"k8s\x00"
TABLE_PATH = pathlib.Path(__file__).with_name("data") / "protobuf_messages.json"

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class Unsupported(Exception):
    """A protobuf body of a kind this server cannot decode."""


class BadBody(ValueError):
    """A body that is not a well-formed Kubernetes protobuf envelope."""


@functools.cache
def _table() -> dict:
    with TABLE_PATH.open() as handle:
        return json.load(handle)


def kinds() -> list[str]:
    """The `apiVersion/kind` pairs (as "apps/v1/Deployment", "v1/Pod") whose bodies are decoded."""
    return list(_table()["kinds"])


def decode(body: bytes) -> dict:
    """The JSON-shaped object (apiVersion, kind, metadata, ...) carried by a protobuf body."""
    if not body.startswith(MAGIC):
        raise BadBody("the protobuf body does not start with the k8s\\x00 envelope prefix")
    envelope = _fields(memoryview(body)[len(MAGIC) :], "runtime.Unknown")
    type_meta = _fields(_last(envelope, 1, b""), "TypeMeta")
    api_version = _text(_last(type_meta, 1, b""))
    kind = _text(_last(type_meta, 2, b""))
    encoding = _text(_last(envelope, 3, b""))
    message = _table()["kinds"].get(f"{api_version}/{kind}")
    if message is None:
        raise Unsupported(
            f"protobuf request bodies are decoded for the built-in kinds this server serves, "
            f"not {api_version or '?'} {kind or '?'}; send the object as JSON (Content-Type: application/json)"
        )
    if encoding:
        raise Unsupported(f"protobuf content encoding {encoding!r} is not supported")
    obj = {"apiVersion": api_version, "kind": kind}
    obj.update(_message(_last(envelope, 2, b""), message, kind))
    return obj


_NUMERIC = {"int32", "int64", "bool", "double", "float"}


def _message(data, message: str, where: str) -> dict:
    schema = _table()["messages"][message]
    fields = _fields(data, where)
    result = {}
    for number, values in fields.items():
        field = schema.get(str(number))
        if field is None:
            continue  # a newer client's field: upstream ignores unknown protobuf fields too
        json_name, type_name, mode, keep_zero = field
        path = f"{where}.{json_name}"
        if mode == "r":
            result[json_name] = [item for value in values for item in _repeated(value, type_name, path)]
        elif mode == "m":
            result[json_name] = dict(_map_entry(value, type_name, path) for value in values)
        else:
            value = _value(values[-1], type_name, path)
            if value is not _OMIT and (keep_zero or value not in ("", 0, False) or isinstance(value, (dict, list))):
                result[json_name] = value
    return result


_OMIT = object()


def _repeated(value, type_name: str, where: str) -> list:
    if type_name in _NUMERIC and not isinstance(value, int):
        return [_scalar(number, type_name, where) for number in _packed(value, type_name, where)]
    decoded = _value(value, type_name, where)
    return [] if decoded is _OMIT else [decoded]


def _value(value, type_name: str, where: str):
    if type_name in ("string", "bytes"):
        data = _expect_bytes(value, where)
        return _text(data, where) if type_name == "string" else base64.b64encode(data).decode("ascii")
    if type_name in _NUMERIC:
        return _scalar(value, type_name, where)
    special = _table()["special"].get(type_name)
    data = _expect_bytes(value, where)
    if special is None:
        if type_name not in _table()["messages"]:
            raise BadBody(f"{where}: no decoding known for {type_name}")
        return _message(data, type_name, where)
    return _special(special, _fields(data, where), where)


def _scalar(value, type_name: str, where: str):
    if not isinstance(value, int):
        raise BadBody(f"{where}: expected a number")
    if type_name == "bool":
        return bool(value)
    if type_name == "double":
        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    if type_name == "float":
        return struct.unpack("<f", value.to_bytes(4, "little"))[0]
    return _signed(value)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value  # int64/int32 two's complement varints


def _special(how: str, fields: dict[int, list], where: str):
    if how in ("time", "microtime"):
        seconds, nanos = _signed(_int(fields, 1, where)), _signed(_int(fields, 2, where))
        if seconds == 0 and nanos == 0:
            return _OMIT  # Go's zero metav1.Time, rendered as null
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        if how == "time":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    if how == "duration":
        return _go_duration(_signed(_int(fields, 1, where)))
    if how == "quantity":
        return _text(_last(fields, 1, b""), where)
    if how == "intorstring":
        if _int(fields, 1, where) == 1:
            return _text(_last(fields, 3, b""), where)
        return _signed(_int(fields, 2, where))
    if how == "stringlist":
        return [_text(item, where) for item in fields.get(1, [])]
    if how == "raw":
        raw = bytes(_expect_bytes(_last(fields, 1, b""), where))
        if not raw:
            return _OMIT
        try:
            return json.loads(raw)
        except ValueError as error:
            raise Unsupported(f"{where}: embedded raw objects are read as JSON only") from error
    raise BadBody(f"{where}: no decoding known for {how}")


def _int(fields: dict[int, list], number: int, where: str) -> int:
    value = _last(fields, number, 0)
    if not isinstance(value, int):
        raise BadBody(f"{where}: expected field {number} as a varint")
    return value


def _go_duration(nanoseconds: int) -> str:
    """Go's time.Duration.String(): 1h2m3.5s, 150ms, 0s."""
    if nanoseconds == 0:
        return "0s"
    sign, nanoseconds = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if nanoseconds < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanoseconds >= size:
                return sign + _trim(nanoseconds / size) + unit
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _trim(rest / 1_000_000_000) + "s"
    if hours:
        text = f"{hours}h{minutes}m" + text
    elif minutes:
        text = f"{minutes}m" + text
    return sign + text


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


def _map_entry(value, value_type: str, where: str) -> tuple[str, object]:
    entry = _fields(_expect_bytes(value, where), where)
    key = _text(_last(entry, 1, b""), where)
    raw = _last(entry, 2, b"" if value_type not in _NUMERIC else 0)
    decoded = _value(raw, value_type, f"{where}[{key}]")
    return key, (None if decoded is _OMIT else decoded)


def _packed(data, type_name: str, where: str) -> list[int]:
    data = _expect_bytes(data, where)
    numbers, position = [], 0
    while position < len(data):
        if type_name == "double" or type_name == "float":
            size = 8 if type_name == "double" else 4
            numbers.append(int.from_bytes(data[position : position + size], "little"))
            position += size
        else:
            number, position = _varint(data, position, where)
            numbers.append(number)
    return numbers


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
