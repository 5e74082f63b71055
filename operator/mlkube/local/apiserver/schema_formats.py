"""The string formats a CRD schema may declare, checked as kube-apiserver checks them.

Owns the table of formats that apiextensions-apiserver validates (go-openapi `strfmt` names,
normalised by dropping "-", so `date-time` is `datetime`) and one predicate per format. Formats
not in the table are ignored, as upstream strips them from the schema before validating; on
`integer`/`number` only int32/int64 and float/double survive and never fail on their own (upstream
checks no ranges). It must not produce error messages: schema_values words them.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
from collections.abc import Callable

_UUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}"
_UUID_ANY = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_UUID3 = re.compile("(?i)^" + _UUID % ("3", "[0-9a-f]") + "$")
_UUID4 = re.compile("(?i)^" + _UUID % ("4", "[89ab]") + "$")
_UUID5 = re.compile("(?i)^" + _UUID % ("5", "[89ab]") + "$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_TIME = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
_GO_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")
_LONG_DURATION = re.compile(
    r"^(\d+)\s*(ns|nanoseconds?|us|µs|microseconds?|ms|milliseconds?|s|seconds?|sec|m|minutes?|min"
    r"|h|hours?|hr|d|days?|day|w|weeks?|wk)$"
)
_HOSTNAME_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5,19}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{4}\.){2,9}[0-9a-fA-F]{4}$")
_EMAIL = re.compile(r"^(?:[^<>@\s]+@[^<>@\s]+\.?[^<>@\s]*|.*<[^<>@\s]+@[^<>@\s]+>)$")
_URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BYTE = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_RGBCOLOR = re.compile(rf"^rgb\({_BYTE},{_BYTE},{_BYTE}\)$")
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_BSON_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")


def is_datetime(value: str) -> bool:
    """go-openapi `strfmt.IsDateTime`: an RFC 3339 date-time, fractions and offsets allowed."""
    parts = value.lower().split("t")
    if len(value) < 4 or len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _TIME.match(parts[1])
    return bool(match) and match[1] <= "23" and match[2] <= "59" and match[3] <= "59"


def is_date(value: str) -> bool:
    """A full-date as Go's `time.Parse("2006-01-02")` accepts it."""
    match = _DATE.match(value)
    if not match:
        return False
    try:
        datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def is_duration(value: str) -> bool:
    """Go's `time.ParseDuration` syntax, or strfmt's "<n> <unit>" (e.g. "3 days")."""
    return bool(_GO_DURATION.match(value) or _LONG_DURATION.match(value))


def _is_ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _is_hostname(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return 0 < len(value) <= 255 and all(_HOSTNAME_LABEL.match(label) for label in labels)


def _is_uri(value: str) -> bool:
    # Go's url.ParseRequestURI: an absolute URI or an absolute path, no fragment-only or relative forms.
    return bool(value) and " " not in value and (value.startswith("/") or bool(_URI_SCHEME.match(value)))


def _is_byte(value: str) -> bool:
    try:
        base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        number = int(digit) * (2 if position % 2 else 1)
        total += number - 9 if number > 9 else number
    return total % 10 == 0


def _is_creditcard(value: str) -> bool:
    digits = re.sub(r"[^0-9]", "", value)
    return 12 <= len(digits) <= 19 and _luhn(digits)


def _is_isbn10(value: str) -> bool:
    text = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{9}[\dX]", text):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(text))
    return total % 11 == 0


def _is_isbn13(value: str) -> bool:
    text = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{13}", text):
        return False
    return sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(text)) % 10 == 0


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda value: bool(pattern.match(value))


STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": _matches(_BSON_OBJECT_ID),
    "uri": _is_uri,
    "email": _matches(_EMAIL),
    "hostname": _is_hostname,
    "ipv4": _is_ip(4),
    "ipv6": _is_ip(6),
    "cidr": _is_cidr,
    "mac": _matches(_MAC),
    "uuid": _matches(_UUID_ANY),
    "uuid3": _matches(_UUID3),
    "uuid4": _matches(_UUID4),
    "uuid5": _matches(_UUID5),
    "isbn": lambda value: _is_isbn10(value) or _is_isbn13(value),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_creditcard,
    "ssn": _matches(_SSN),
    "hexcolor": _matches(_HEXCOLOR),
    "rgbcolor": _matches(_RGBCOLOR),
    "byte": _is_byte,
    "password": lambda value: True,
    "date": is_date,
    "duration": is_duration,
    "datetime": is_datetime,
    "quantity": _matches(_QUANTITY),
}
NUMERIC_FORMATS = {"integer": ("int32", "int64"), "number": ("float", "double")}


def effective_format(schema_type: str | None, format_name: str | None) -> str:
    """The format upstream keeps after stripping unsupported ones ("" when it is ignored)."""
    if not format_name:
        return ""
    if schema_type in (None, "", "string"):
        return format_name if format_name.replace("-", "") in STRING_FORMATS else ""
    return format_name if format_name in NUMERIC_FORMATS.get(schema_type, ()) else ""


def string_checker(format_name: str) -> Callable[[str], bool] | None:
    """The predicate for a (kept) string format, or None for numeric formats."""
    return STRING_FORMATS.get(format_name.replace("-", ""))
