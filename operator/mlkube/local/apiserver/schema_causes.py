"""Field errors worded exactly as kube-apiserver words them (apimachinery's `field` package).

Owns the `Cause` record (one entry of `Status.details.causes`), one constructor per upstream
`field.*` error type, and the rendering of bad values the way Go's `fmt` prints them (`%v` for
numbers and booleans, `%q` for strings, `%#v` for maps and lists), so that messages match the real
server byte for byte. It must not know about schemas or CEL: callers pass the path and the detail.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math

INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
INTERNAL = "InternalError"

# The human prefix of each reason (`ErrorType.String()` upstream).
_TITLES = {
    INVALID: "Invalid value",
    TYPE_INVALID: "Invalid value",
    REQUIRED: "Required value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    DUPLICATE: "Duplicate value",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    INTERNAL: "Internal error",
}
# Upstream prints no value for these types, whatever value the error carries.
_VALUELESS = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL})

# `field.NewPath(nil).String()`: the field of an error that belongs to no particular field.
NO_FIELD = "<nil>"


@dataclasses.dataclass(frozen=True)
class Cause:
    """One entry of Status.details.causes."""

    reason: str
    message: str
    field: str


def cause(reason: str, field: str, value: object = None, detail: str = "") -> Cause:
    """A cause whose message is rendered like upstream `field.Error.ErrorBody()`."""
    message = _TITLES[reason]
    if reason not in _VALUELESS:
        message += ": " + go_value(value)
    if detail:
        message += ": " + detail
    return Cause(reason, message, field or NO_FIELD)


def invalid(field: str, value: object, detail: str) -> Cause:
    return cause(INVALID, field, value, detail)


def type_invalid(field: str, value: object, detail: str) -> Cause:
    return cause(TYPE_INVALID, field, value, detail)


def required(field: str, detail: str = "") -> Cause:
    return cause(REQUIRED, field, detail=detail)


def forbidden(field: str, detail: str) -> Cause:
    return cause(FORBIDDEN, field, detail=detail)


def duplicate(field: str, value: object) -> Cause:
    return cause(DUPLICATE, field, value)


def not_supported(field: str, value: object, supported: list[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(v) for v in supported) if supported else ""
    return cause(NOT_SUPPORTED, field, value, detail)


def too_long(field: str, max_length: int) -> Cause:
    # apiextensions reports maxLength through `field.TooLongMaxLength`, which 1.32 words as `field.TooLong`.
    return cause(TOO_LONG, field, detail=f"may not be more than {max_length} {'byte' if max_length == 1 else 'bytes'}")


def too_many(field: str, actual: int, maximum: int) -> Cause:
    return cause(TOO_MANY, field, actual, f"must have at most {maximum} {'item' if maximum == 1 else 'items'}")


def go_value(value: object) -> str:
    """A bad value as `field.Error` prints it: nil as "null", scalars with %v/%q, the rest with %#v."""
    if value is None:
        return '"null"'
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return go_scalar(value)
    return go_sharp(value)


def go_scalar(value: bool | int | float) -> str:
    """Go's `%v` of a JSON scalar (bool, int64 or float64)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return go_float(value)


def go_float(value: float) -> str:
    """Go's `%v` of a float64 (`strconv` 'g', shortest): exponent form when exp < -4 or exp >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp10 = len(digits) + exponent - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exponent >= 0:
        return prefix + text + "0" * exponent
    point = len(text) + exponent
    if point > 0:
        return prefix + text[:point] + "." + text[point:]
    return prefix + "0." + "0" * -point + text


def go_quote(value: object) -> str:
    """Go's `strconv.Quote` of a string (of `fmt.Sprint(value)` for anything else)."""
    text = value if isinstance(value, str) else go_scalar(value) if isinstance(value, (bool, int, float)) else str(value)
    return json.dumps(text, ensure_ascii=False)


def go_sharp(value: object) -> str:
    """Go's `%#v` of a decoded JSON value held in an `interface{}`."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return go_scalar(value)
    if isinstance(value, dict):
        entries = ", ".join(f"{go_quote(k)}:{go_sharp(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + entries + "}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}{" + ", ".join(go_sharp(v) for v in value) + "}"
    return repr(value)
