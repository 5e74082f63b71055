"""Label and field selectors: parsing (400 on bad input) and matching against objects.

Owns the selector grammar of `labelSelector`/`fieldSelector` query parameters. Must not know
which fields a resource type supports beyond the list its caller passes in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from mlkube.local.apiserver import errors

_SET_EXPR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def parse_labels(text: str | None) -> tuple[Requirement, ...]:
    if not text:
        return ()
    requirements = []
    for part in _split_top_level(text):
        if match := _SET_EXPR.match(part):
            if match[1]:
                raise errors.bad_request(f"unable to parse requirement: found '!', expected: identifier in {text!r}")
            values = tuple(v.strip() for v in match[4].split(",") if v.strip())
            requirements.append(Requirement(match[2], match[3], values))
        elif match := _EQUALITY.match(part):
            operator = "!=" if match[2] == "!=" else "="
            requirements.append(Requirement(match[1], operator, (match[3],)))
        elif match := _EXISTS.match(part):
            requirements.append(Requirement(match[2], "!" if match[1] else "exists"))
        else:
            raise errors.bad_request(f"unable to parse requirement: invalid label selector: {text!r}")
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(requirement.matches(labels) for requirement in requirements)


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    field: str
    negated: bool
    value: str


def parse_fields(text: str | None, allowed: tuple[str, ...]) -> tuple[FieldRequirement, ...]:
    """Parse `a=b,c!=d`; fields outside `allowed` are a 400 as upstream words it."""
    if not text:
        return ()
    requirements = []
    for part in _split_top_level(text):
        if "!=" in part:
            field, value = part.split("!=", 1)
            negated = True
        elif "==" in part:
            field, value = part.split("==", 1)
            negated = False
        elif "=" in part:
            field, value = part.split("=", 1)
            negated = False
        else:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in allowed:
            known = ", ".join(f'"{name}"' for name in allowed)
            raise errors.bad_request(f'"{field}" is not a known field selector: only {known}')
        requirements.append(FieldRequirement(field, negated, value.strip()))
    return tuple(requirements)


def field_value(obj: dict[str, Any], field: str, jsonpaths: dict[str, Callable[[dict], Any]] | None = None) -> str:
    """The string an object has for a field selector (`source` means source.component, as upstream)."""
    if jsonpaths and field in jsonpaths:
        value = jsonpaths[field](obj)
    elif field == "source":
        value = (obj.get("source") or {}).get("component", "")
    else:
        value: Any = obj
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if field == "metadata.namespace" and value is None:
            value = ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(
    requirements: tuple[FieldRequirement, ...], obj: dict[str, Any], jsonpaths: dict[str, Callable[[dict], Any]] | None = None
) -> bool:
    for requirement in requirements:
        equal = field_value(obj, requirement.field, jsonpaths) == requirement.value
        if equal == requirement.negated:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Selector:
    """A parsed labelSelector plus fieldSelector, as lists, watches and deletecollection use them."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()
    jsonpaths: dict[str, Callable[[dict], Any]] | None = None

    def matches(self, obj: dict[str, Any]) -> bool:
        return labels_match(self.labels, obj) and fields_match(self.fields, obj, self.jsonpaths)
