"""RFC 3339 timestamps as Kubernetes writes them: UTC, whole seconds, ``Z``.

The one place that formats and parses times for status fields, Events, alerts and records.
"""

from __future__ import annotations

import datetime


def now() -> datetime.datetime:
    """The current time in UTC, to the second (what a status field can hold)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def format(moment: datetime.datetime) -> str:
    """``2026-12-05T09:41:00Z``; a naive ``moment`` is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime.datetime:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
