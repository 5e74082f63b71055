"""HTML building blocks of the model card page (``cardpage``): escaped values, tables, tolerant
reads of the card's JSON. Every value a caller passes as data is escaped here; arguments named
"already-escaped" are HTML the caller built. Pure.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any


def shown(value: Any) -> str:
    """Any JSON value as escaped HTML: mappings as nested key/value tables, lists comma-separated."""
    if value is None:
        return "<span class='muted'>—</span>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return pairs([(escape(k), shown(v)) for k, v in value.items()]) if value else "<span class='muted'>none</span>"
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value) if value else "<span class='muted'>none</span>"
    return escape(value)


def inline(value: Any) -> str:
    """A JSON value on one line: a mapping as `key value · key value` (nested ones in parentheses)."""
    if isinstance(value, Mapping) and value:
        return " · ".join(
            f"{escape(k)} {inline(v) if not isinstance(v, Mapping) else '(' + inline(v) + ')'}" for k, v in value.items()
        )
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return "; ".join(inline(v) for v in value)
    return shown(value)


def metric(value: Any) -> str:
    """A metric value as the card holds it, to 4 decimals (the full value in a tooltip)."""
    if not is_number(value):
        return shown(value)
    return f"<span title='{value!r}'>{value:.4f}</span>"


def pairs(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of already-escaped label and value HTML."""
    return "<table>" + "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows) + "</table>"


def table(headers: list[str], rows: list[list[str]], *, right: Iterable[int] = ()) -> str:
    """A table of already-escaped header and cell HTML; the columns `right` (numbers) right-aligned."""
    right = set(right)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(c, i in right) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def cell(content: str, numeric: bool) -> str:
    return f"<td class='n'>{content}</td>" if numeric else f"<td>{content}</td>"


def ordered(values: Mapping[str, Any], order: Iterable[str]) -> dict[str, Any]:
    """`values` with the keys of `order` first, in that order, then the others as they come."""
    first = [k for k in order if k in values]
    return {**{k: values[k] for k in first}, **values}


def field(card: Mapping[str, Any], section: str, key: str) -> Any:
    return mapping(card.get(section)).get(key)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)
