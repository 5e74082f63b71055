"""The dashboard's paths: built here for the pages, parsed here for the server, nothing else routed.

    /                                                   the projects
    /ns/NAMESPACE/projects/NAME                         one project
    /ns/NAMESPACE/modelversions/NAME/card               the version's model card (status.cardUri)
    /ns/NAMESPACE/driftmonitors/NAME/reports/latest     the monitor's latest report (status.reportUri)
    /ns/NAMESPACE/driftmonitors/NAME/reports/STAMP      the report of the analysis at STAMP
                                                        (20261205T094100Z: its lastCheckTime)

``route(path)`` accepts only these shapes, with names that are valid Kubernetes names (so no
``..``, no slash, no percent sign reaches a lookup) and a bounded length; anything else is None.
"""

from __future__ import annotations

import dataclasses
import re

MAX_PATH = 600
_NAME = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
_NAMESPACE = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_STAMP = r"\d{8}T\d{6}Z"
_ROUTES = (
    ("index", re.compile(r"/")),
    ("project", re.compile(rf"/ns/(?P<namespace>{_NAMESPACE})/projects/(?P<name>{_NAME})")),
    ("card", re.compile(rf"/ns/(?P<namespace>{_NAMESPACE})/modelversions/(?P<name>{_NAME})/card")),
    ("report", re.compile(rf"/ns/(?P<namespace>{_NAMESPACE})/driftmonitors/(?P<name>{_NAME})/reports/(?P<at>latest|{_STAMP})")),
)


@dataclasses.dataclass(frozen=True)
class Route:
    """A parsed path: which page, and for whom."""

    page: str
    namespace: str = ""
    name: str = ""
    at: str | None = None
    """The analysis time of a report (RFC 3339); None for the latest."""


def route(path: str) -> Route | None:
    """The page a request path names, or None (the server answers 404)."""
    if len(path) > MAX_PATH:
        return None
    for page, pattern in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            found = match.groupdict()
            at = found.get("at")
            return Route(
                page,
                found.get("namespace") or "",
                found.get("name") or "",
                None if at in (None, "latest") else _rfc3339(at),
            )
    return None


def project(namespace: str, name: str) -> str:
    return f"/ns/{namespace}/projects/{name}"


def card(namespace: str, name: str) -> str:
    return f"/ns/{namespace}/modelversions/{name}/card"


def report(namespace: str, name: str, at: str | None) -> str:
    """The report of the analysis at ``at`` (an RFC 3339 lastCheckTime), or the latest."""
    return f"/ns/{namespace}/driftmonitors/{name}/reports/{'latest' if at is None else _stamp(at)}"


def _stamp(at: str) -> str:
    return at.replace("-", "").replace(":", "")


def _rfc3339(stamp: str) -> str:
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"
