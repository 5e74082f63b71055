"""The Kubernetes CEL library functions that the `cel` package (cel-rust) does not ship.

Owns Python implementations, registered as CEL functions, of Kubernetes' list (`isSorted`,
list `indexOf`/`lastIndexOf`; `sum`/`min`/`max` come from cel's stdlib), regex (`find`,
`findAll`), URL (`url`, `isURL`, `getScheme`, `getHost`, `getHostname`, `getPort`,
`getEscapedPath`, `getQuery`) and quantity (`quantity`, `isQuantity`, `sign`, `isInteger`,
`asInteger`, `asApproximateFloat`, `add`, `sub`, `isGreaterThan`, `isLessThan`, `compareTo`)
libraries, plus cel's own stdlib extensions. cel holds no foreign objects, so URLs and
quantities travel as maps: a quantity is `{"__quantity__": "<canonical decimal>"}`, which makes
`quantity('1Gi') == quantity('1024Mi')` hold as in Kubernetes. It must not compile or evaluate.
"""

from __future__ import annotations

import decimal
import re
import urllib.parse

import cel as celrs
from cel import stdlib


def _index_of(target, item, *offset):
    if isinstance(target, list):
        return next((i for i, x in enumerate(target) if x == item), -1)
    return stdlib.index_of(target, item, *offset)


def _last_index_of(target, item, *offset):
    if isinstance(target, list):
        return next((i for i in range(len(target) - 1, -1, -1) if target[i] == item), -1)
    return stdlib.last_index_of(target, item, *offset)


def _is_sorted(items: list) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


def _parse_url(text: str) -> urllib.parse.SplitResult | None:
    if not text or " " in text or not (text.startswith("/") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text)):
        return None
    try:
        return urllib.parse.urlsplit(text)
    except ValueError:
        return None


def _url(text: str) -> dict:
    # A URL is carried as a map, since cel holds no foreign objects; the get* functions read it.
    parts = _parse_url(text)
    if parts is None:
        raise ValueError(f"URL parse error during conversion from string: {text}")
    return {
        "scheme": parts.scheme,
        "netloc": parts.netloc,
        "hostname": parts.hostname or "",
        "port": str(parts.port or ""),
        "path": parts.path,
        "query": parts.query,
    }


def _url_host(url: dict) -> str:
    return url["netloc"].rpartition("@")[2]


def _url_query(url: dict) -> dict:
    return {k: v for k, v in urllib.parse.parse_qs(url["query"], keep_blank_values=True).items()}


_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([KMGTPE]i)|([numkMGTPE]))?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": "1e-9",
    "u": "1e-6",
    "m": "1e-3",
    "": "1",
    "k": "1e3",
    "M": "1e6",
    "G": "1e9",
    "T": "1e12",
    "P": "1e15",
    "E": "1e18",
}
_QUANTITY_KEY = "__quantity__"


def _parse_quantity(text: str) -> decimal.Decimal | None:
    match = _QUANTITY.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    number = decimal.Decimal(match[1])
    if match[2]:
        return number.scaleb(int(match[2][1:]))
    if match[3]:
        return number * _BINARY[match[3]]
    return number * decimal.Decimal(_DECIMAL[match[4] or ""])


def _quantity_of(number: decimal.Decimal) -> dict:
    return {_QUANTITY_KEY: format(number.normalize(), "f")}


def _value(quantity: dict) -> decimal.Decimal:
    return decimal.Decimal(quantity[_QUANTITY_KEY])


def _quantity(text: str) -> dict:
    number = _parse_quantity(text)
    if number is None:
        raise ValueError(f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text}")
    return _quantity_of(number)


def _as_integer(quantity: dict) -> int:
    number = _value(quantity)
    if number != number.to_integral_value() or abs(number) >= 2**63:
        raise ValueError("cannot convert value to integer")
    return int(number)


def _compare(left: dict, right: dict) -> int:
    a, b = _value(left), _value(right)
    return (a > b) - (a < b)


def _add(quantity: dict, other: dict | int) -> dict:
    return _quantity_of(_value(quantity) + (_value(other) if isinstance(other, dict) else other))


def _sub(quantity: dict, other: dict | int) -> dict:
    return _quantity_of(_value(quantity) - (_value(other) if isinstance(other, dict) else other))


def functions() -> dict:
    context = celrs.Context()
    stdlib.add_stdlib_to_context(context)
    functions = dict(context.functions)
    functions.update(
        {
            "indexOf": _index_of,
            "lastIndexOf": _last_index_of,
            "isSorted": _is_sorted,
            "find": _find,
            "findAll": _find_all,
            "url": _url,
            "isURL": lambda text: _parse_url(text) is not None,
            "getScheme": lambda url: url["scheme"],
            "getHost": _url_host,
            "getHostname": lambda url: url["hostname"],
            "getPort": lambda url: url["port"],
            "getEscapedPath": lambda url: url["path"],
            "getQuery": _url_query,
            "quantity": _quantity,
            "isQuantity": lambda text: _parse_quantity(text) is not None,
            "sign": lambda q: _compare(q, _quantity_of(decimal.Decimal(0))),
            "isInteger": lambda q: _value(q) == _value(q).to_integral_value() and abs(_value(q)) < 2**63,
            "asInteger": _as_integer,
            "asApproximateFloat": lambda q: float(_value(q)),
            "add": _add,
            "sub": _sub,
            "compareTo": _compare,
            "isGreaterThan": lambda a, b: _compare(a, b) > 0,
            "isLessThan": lambda a, b: _compare(a, b) < 0,
        }
    )
    return functions
