"""ObjectMeta rules: names, generateName, labels/annotations, finalizers, timestamps.

Owns the validation messages upstream `apimachinery` validation gives for metadata and the
time formats the server emits. Must not touch storage; returns causes for the caller to
aggregate into one 422.
"""

from __future__ import annotations

import datetime
import re
import secrets
from typing import Any

from mlkube.local.apiserver import errors

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = _DNS_LABEL + r"(\." + _DNS_LABEL + r")*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_DNS_SUBDOMAIN}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_DNS_LABEL}')"
)

# ObjectMeta fields a client may not set on create (the server owns them).
SERVER_FIELDS = (
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(when: datetime.datetime) -> str:
    """`Time`: RFC 3339 in UTC to the second."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime.datetime) -> str:
    """`MicroTime`: RFC 3339 in UTC with microseconds."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime.datetime:
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


def normalise_time(obj: dict[str, Any], field: str, *, micro: bool = False) -> errors.Cause | None:
    """Rewrite `obj[field]` (any RFC 3339 form, e.g. Kopf's `+00:00` with microseconds) as the server emits it."""
    value = obj.get(field)
    if value in (None, ""):
        return None
    try:
        when = parse_time(str(value))
    except ValueError:
        return errors.Cause("FieldValueInvalid", f'Invalid value: "{value}": must be an RFC 3339 date-time', field)
    obj[field] = format_micro_time(when) if micro else format_time(when)
    return None


def generate_name(prefix: str) -> str:
    # Upstream truncates the prefix so the result fits in 63 characters.
    return prefix[:58] + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def name_causes(name: str, *, label: bool) -> list[errors.Cause]:
    """Causes for an invalid metadata.name: DNS-1123 label (namespaces) or subdomain (everything else)."""
    if label:
        if len(name) > 63:
            return [
                errors.Cause("FieldValueInvalid", f'Invalid value: "{name}": must be no more than 63 characters', "metadata.name")
            ]
        if not re.fullmatch(_DNS_LABEL, name):
            return [errors.Cause("FieldValueInvalid", f'Invalid value: "{name}": {LABEL_MESSAGE}', "metadata.name")]
        return []
    if len(name) > 253:
        return [
            errors.Cause("FieldValueInvalid", f'Invalid value: "{name}": must be no more than 253 characters', "metadata.name")
        ]
    if not re.fullmatch(_DNS_SUBDOMAIN, name):
        return [errors.Cause("FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_MESSAGE}', "metadata.name")]
    return []


def _key_causes(key: str, field: str) -> list[errors.Cause]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix)):
        problems.append(f"prefix part {SUBDOMAIN_MESSAGE}")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not re.fullmatch(_QUALIFIED_NAME, name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}')"
        )
    return [errors.Cause("FieldValueInvalid", f'Invalid value: "{key}": {problem}', field) for problem in problems]


def meta_causes(meta: dict[str, Any]) -> list[errors.Cause]:
    """Validation of labels, annotations and finalizers (types, key syntax, label values)."""
    causes: list[errors.Cause] = []
    for section in ("labels", "annotations"):
        values = meta.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append(errors.Cause("FieldValueTypeInvalid", "Invalid value: must be a map of strings", f"metadata.{section}"))
            continue
        for key, value in values.items():
            causes.extend(_key_causes(str(key), f"metadata.{section}"))
            if not isinstance(value, str):
                causes.append(
                    errors.Cause(
                        "FieldValueTypeInvalid", f"Invalid value: {value!r}: must be a string", f"metadata.{section}.{key}"
                    )
                )
            elif section == "labels" and (len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value)):
                causes.append(
                    errors.Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric '
                        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                        f"'MyValue',  or 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')",
                        "metadata.labels",
                    )
                )
    finalizers = meta.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list) or not all(isinstance(f, str) and f for f in finalizers)):
        causes.append(
            errors.Cause("FieldValueInvalid", "Invalid value: finalizers must be non-empty strings", "metadata.finalizers")
        )
    return causes


def new_finalizer_causes(old: dict[str, Any], new: dict[str, Any]) -> list[errors.Cause]:
    """Upstream `ValidateNoNewFinalizers`, for objects already being deleted."""
    before = set(old["metadata"].get("finalizers") or [])
    added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
    if not added:
        return []
    rendered = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
    return [
        errors.Cause(
            "FieldValueForbidden",
            f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {rendered}",
            "metadata.finalizers",
        )
    ]
