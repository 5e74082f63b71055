"""The router's routing table: the contract between the ModelDeployment controller and its router.

The controller builds a :class:`RoutingTable` and writes it as JSON (:meth:`RoutingTable.document`)
under key ``routes.json`` of ConfigMap ``<deployment>-router``; the router (``mlkube.serving``)
parses the same document back with :meth:`RoutingTable.parse`. One model, both sides (see
docs/serving.md for the fields). The JSON is the one routers in the field already read: camelCase,
every key present, ``null`` for an absent mirror, preview or sticky header.

Compatibility between operator and router versions: unknown keys are ignored (an older router
reads a newer operator's table), and the lenient forms older tables used are accepted (a
missing ``role`` is ``stable``, a missing ``capture`` is no capture, version keys are strings).

Must not: import anything but pydantic and the other ``mlkube.api`` modules.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic

from mlkube.api import base, errors

ROUTES_KEY = "routes.json"
"""The ConfigMap key holding the table."""

Role = Literal["stable", "canary", "candidate", "preview", "shadow"]
"""What a version is in the split; ``candidate`` is accepted as a synonym of ``canary``."""


class RoutesError(ValueError):
    """The routing table is invalid; the message names the field on the wire."""


class _Contract(base.ApiModel):
    # Frozen: a table in force is shared by concurrent requests. Unknown keys ignored: see the
    # module docstring.
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


class Backend(_Contract):
    """Where one model version is served."""

    url: str
    """The version's InferenceService base URL (http or https); a trailing slash is dropped."""
    model: str = pydantic.Field(min_length=1)
    """The InferenceService's model name: the router rewrites ``{deployment}`` in paths to it."""

    @pydantic.field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        return url.rstrip("/")


class Target(_Contract):
    """One entry of the traffic split."""

    version: int
    """Model version; it has an entry in ``backends``."""
    weight: int | float = pydantic.Field(ge=0, le=1e9)
    """Relative weight (any non-negative number; the controller writes percents)."""
    role: Role = "stable"
    """Its role, reported in the router's counters and captured records."""


class Mirror(_Contract):
    """A share of requests copied to another version (shadow, or canary-versus-stable compare)."""

    version: int
    """The version the copies go to (shadow) or whose requests are copied (compare)."""
    percent: int | float = pydantic.Field(100, ge=0, le=100)
    """Share of requests copied."""


class Preview(_Contract):
    """Blue/green: the version answering under ``/preview/``."""

    version: int
    """The candidate's version."""


class Sticky(_Contract):
    """A/B: a header whose value pins a client to one version."""

    header: str = pydantic.Field(min_length=1)
    """Request header name (case-insensitive)."""


class Scores(_Contract):
    """Which versions' served probabilities the router accumulates (for a label-free performance
    estimate); absent: none, and the request path reads no response body."""

    versions: list[int] = pydantic.Field(min_length=1)
    """The versions whose answers' probabilities are counted."""


class Capture(_Contract):
    """Request/response capture: whether, how often, and to which store."""

    enabled: bool = False
    """Capture traffic."""
    sample_rate: float = pydantic.Field(1.0, ge=0, le=1)
    """Share of requests captured."""
    uri: str | None = None
    """The project's storage root (file://, s3:// or an absolute path); required when enabled."""
    endpoint: str | None = None
    """S3-compatible endpoint."""

    @pydantic.field_validator("uri")
    @classmethod
    def _store_uri(cls, uri: str | None) -> str | None:
        if uri is not None and not uri.startswith(("file://", "s3://", "/")):
            raise ValueError(f"expected a file:// or s3:// URI, got {uri!r}")
        return uri


class RoutingTable(_Contract):
    """The whole table the router applies."""

    deployment: str = pydantic.Field(min_length=1)
    """The ModelDeployment; the model name clients call."""
    namespace: str = pydantic.Field(min_length=1)
    """Its namespace."""
    project: str = ""
    """Its MLProject, recorded with captured requests."""
    generation: int = 0
    """The ModelDeployment's generation, echoed in ``/mlkube/stats``."""
    backends: dict[int, Backend] = pydantic.Field(min_length=1)
    """Version -> where it is served (JSON object keys are the versions as strings)."""
    split: list[Target] = pydantic.Field(min_length=1)
    """The weighted split of client traffic."""
    sticky: Sticky | None = None
    """A/B stickiness, or null."""
    shadow: Mirror | None = None
    """Mirrored traffic to a shadow version, or null."""
    compare: Mirror | None = None
    """Copies of a canary's requests to the stable version to measure agreement, or null."""
    preview: Preview | None = None
    """The blue/green preview version, or null."""
    capture: Capture = Capture()
    """Request/response capture (null: none)."""
    scores: Scores | None = None
    """Versions whose served probabilities are accumulated (``/mlkube/stats`` ``scores``), or null."""

    @pydantic.field_validator("capture", mode="before")
    @classmethod
    def _no_capture(cls, value: Any) -> Any:
        return {} if value is None else value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> RoutingTable:
        for i, target in enumerate(self.split):
            if target.version not in self.backends:
                raise ValueError(f"split[{i}].version: {target.version} has no entry in backends")
        if sum(t.weight for t in self.split) <= 0:
            raise ValueError("split: the weights sum to 0; at least one version must receive traffic")
        for field, entry in (("shadow", self.shadow), ("compare", self.compare), ("preview", self.preview)):
            if entry is not None and entry.version not in self.backends:
                raise ValueError(f"{field}.version: {entry.version} has no entry in backends")
        for i, version in enumerate(self.scores.versions if self.scores else []):
            if version not in self.backends:
                raise ValueError(f"scores.versions[{i}]: {version} has no entry in backends")
        if self.compare is not None:
            if self.stable_version is None:
                raise ValueError("compare: needs a split entry with role 'stable' to compare against")
            if self.compare.version not in {t.version for t in self.split}:
                raise ValueError(f"compare.version: {self.compare.version} receives no traffic in split")
        if self.capture.enabled and not self.capture.uri:
            raise ValueError("capture.uri: required when capture.enabled is true")
        return self

    @property
    def stable_version(self) -> int | None:
        """The version with role ``stable`` in the split, if any."""
        return next((t.version for t in self.split if t.role == "stable"), None)

    @property
    def sticky_header(self) -> str | None:
        """The sticky header's name in lower case (as HTTP servers present headers), or None."""
        return self.sticky.header.lower() if self.sticky else None

    @property
    def preview_version(self) -> int | None:
        return self.preview.version if self.preview else None

    @classmethod
    def parse(cls, doc: Any) -> RoutingTable:
        """The table from its JSON document (already decoded); raises :class:`RoutesError` naming
        each bad field, e.g. ``split[0].version: 5 has no entry in backends``."""
        if not isinstance(doc, dict):
            raise RoutesError("routes: expected a JSON object")
        try:
            return cls.model_validate(doc)
        except pydantic.ValidationError as error:
            raise RoutesError(describe(error)) from None

    def document(self) -> str:
        """The JSON text written to the ConfigMap: every key present, sorted, one level per line."""
        return json.dumps(self.model_dump(by_alias=True, mode="json"), sort_keys=True, indent=1)


def describe(error: pydantic.ValidationError) -> str:
    """One clause per problem, each naming its field as the JSON spells it (``backends.3.url``)."""
    lines = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if part != "[key]")
        message = item["msg"].removeprefix("Value error, ")
        path = errors.field_path(loc, root="").lstrip(".")
        lines.append(f"{path}: {message}" if path and not message.startswith(path) else message)
    return "; ".join(lines)
