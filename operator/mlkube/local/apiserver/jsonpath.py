"""The small JSONPath subset CRDs use in additionalPrinterColumns and selectableFields.

Supports `.field`, `['field']`, `[n]`, `[*]` and filters `[?(@.a.b=="x")]` / `!=`, with an
optional `{...}` wrapper. Owns parsing (a clear ValueError naming the path) and evaluation to a
list of matches. Must not format values for display (tables.py does).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)
      | \[\s*'(?P<quoted>[^']*)'\s*\]
      | \[\s*"(?P<dquoted>[^"]*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<star>\*)\s*\]
      | \[\s*\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_$-]+)+)\s*(?P<op>==|!=)\s*(?P<fvalue>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\s*\]
    """,
    re.VERBOSE,
)


@functools.lru_cache(maxsize=512)
def compile_path(path: str) -> tuple[tuple, ...]:
    """Parse a JSONPath into steps; raises ValueError('... in <path>') for unsupported syntax."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        text = "." + text
    steps: list[tuple] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"unsupported JSONPath syntax at {text[position:]!r} in {path!r}")
        if match["field"] is not None:
            steps.append(("field", match["field"]))
        elif match["quoted"] is not None or match["dquoted"] is not None:
            steps.append(("field", match["quoted"] if match["quoted"] is not None else match["dquoted"]))
        elif match["index"] is not None:
            steps.append(("index", int(match["index"])))
        elif match["star"] is not None:
            steps.append(("star",))
        else:
            raw = match["fvalue"]
            value: Any = raw[1:-1] if raw[0] in "\"'" else json.loads(raw)
            steps.append(("filter", tuple(match["fpath"].strip(".").split(".")), match["op"], value))
        position = match.end()
    return tuple(steps)


def find(obj: Any, path: str) -> list[Any]:
    """All values `path` selects in `obj` (empty when nothing matches)."""
    current = [obj]
    for step in compile_path(path):
        following: list[Any] = []
        for value in current:
            if step[0] == "field":
                if isinstance(value, dict) and step[1] in value:
                    following.append(value[step[1]])
            elif step[0] == "index":
                if isinstance(value, list) and -len(value) <= step[1] < len(value):
                    following.append(value[step[1]])
            elif step[0] == "star":
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
            else:
                _, fpath, operator, expected = step
                for item in value if isinstance(value, list) else []:
                    found = _dig(item, fpath)
                    if (found == expected) == (operator == "=="):
                        following.append(item)
        current = following
    return current


def _dig(value: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def first(obj: Any, path: str) -> Any:
    found = find(obj, path)
    return found[0] if found else None
