"""Turn pydantic validation errors into messages that name the field on the wire."""

from __future__ import annotations

import pydantic


def field_path(loc: tuple[int | str, ...], *, root: str = "spec") -> str:
    """``("tuning", "maxTrials")`` -> ``"spec.tuning.maxTrials"``; list indices as ``[i]``."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe(error: pydantic.ValidationError, *, root: str = "spec") -> str:
    """One line per problem: ``spec.tuning.maxTrials: Input should be greater than or equal to 1``."""
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{field_path(item['loc'], root=root)}: {message}")
    return "; ".join(lines)
