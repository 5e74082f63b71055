"""The router's routing table and its per-request decisions, as pure functions.

Owns: parsing and validating the table the ModelDeployment controller writes (`routes.json` of
ConfigMap `<deployment>-router`, see docs/serving.md) into a frozen `RoutingTable`, and the
choices made for each request: which version serves it (weighted split, sticky A/B by hashing a
header, the blue/green preview), whether it is mirrored to the shadow, and whether a canary's
request is mirrored to the stable to measure agreement. Randomness comes in as a `draw` in
[0, 1), so every choice is a plain function of its inputs.

Must not: do I/O, read clocks or random generators, or know about HTTP.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

ROLES = ("stable", "canary", "candidate", "preview", "shadow")


class RoutesError(ValueError):
    """The routing table is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where one model version is served: base URL and its InferenceService's model name."""

    url: str
    model: str


@dataclasses.dataclass(frozen=True)
class Target:
    """One entry of the traffic split."""

    version: int
    weight: float
    role: str


@dataclasses.dataclass(frozen=True)
class Mirror:
    """A share of requests copied to another version (shadow, or canary-vs-stable compare)."""

    version: int
    percent: float


@dataclasses.dataclass(frozen=True)
class Capture:
    """Request/response capture: whether, how often, and to which store."""

    enabled: bool = False
    sample_rate: float = 1.0
    uri: str | None = None
    endpoint: str | None = None


@dataclasses.dataclass(frozen=True)
class Choice:
    """The version that serves a request and the role it plays."""

    version: int
    role: str


@dataclasses.dataclass(frozen=True)
class RoutingTable:
    deployment: str
    namespace: str
    project: str
    generation: int
    backends: dict[int, Backend]
    split: tuple[Target, ...]
    sticky_header: str | None = None
    shadow: Mirror | None = None
    compare: Mirror | None = None
    preview_version: int | None = None
    capture: Capture = Capture()

    @property
    def stable_version(self) -> int | None:
        return next((t.version for t in self.split if t.role == "stable"), None)

    @classmethod
    def parse(cls, doc: Any) -> RoutingTable:
        """Validate the JSON document; raises RoutesError naming the first bad field."""
        if not isinstance(doc, dict):
            raise RoutesError("routes: expected a JSON object")
        deployment = _string(doc, "deployment")
        backends = _backends(doc.get("backends"))
        split = _split(doc.get("split"), backends)
        table = cls(
            deployment=deployment,
            namespace=_string(doc, "namespace"),
            project=str(doc.get("project") or ""),
            generation=_integer(doc.get("generation", 0), "generation"),
            backends=backends,
            split=split,
            sticky_header=_sticky(doc.get("sticky")),
            shadow=_mirror(doc.get("shadow"), "shadow", backends),
            compare=_mirror(doc.get("compare"), "compare", backends),
            preview_version=_preview(doc.get("preview"), backends),
            capture=_capture(doc.get("capture")),
        )
        if table.compare is not None:
            if table.stable_version is None:
                raise RoutesError("compare: needs a split entry with role 'stable' to compare against")
            if table.compare.version not in {t.version for t in split}:
                raise RoutesError(f"compare.version: {table.compare.version} receives no traffic in split")
        return table


def choose(table: RoutingTable, *, draw: float) -> Choice:
    """The split entry that `draw` (uniform in [0, 1)) falls into, in proportion to the weights."""
    total = sum(t.weight for t in table.split)
    point = draw * total
    for target in table.split:
        if point < target.weight:
            return Choice(target.version, target.role)
        point -= target.weight
    last = next(t for t in reversed(table.split) if t.weight > 0)
    return Choice(last.version, last.role)


def sticky_draw(deployment: str, value: str) -> float:
    """A draw in [0, 1) fixed by a sticky header value, the same in every router replica."""
    digest = hashlib.blake2b(f"{deployment}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_mirrored(mirror: Mirror | None, *, draw: float) -> bool:
    """Whether a request with this draw belongs to the mirrored share."""
    return mirror is not None and draw * 100.0 < mirror.percent


def _string(doc: dict, field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value:
        raise RoutesError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RoutesError(f"{field}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise RoutesError(f"{field}: expected an integer, got {value!r}") from None


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RoutesError(f"{field}: expected a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _backends(raw: Any) -> dict[int, Backend]:
    if not isinstance(raw, dict) or not raw:
        raise RoutesError("backends: expected an object mapping version to {url, model}")
    backends = {}
    for key, entry in raw.items():
        version = _integer(key, f"backends.{key}")
        if not isinstance(entry, dict):
            raise RoutesError(f"backends.{key}: expected an object with url and model")
        url = _string(entry, "url") if "url" in entry else None
        if url is None or not url.startswith(("http://", "https://")):
            raise RoutesError(f"backends.{key}.url: expected an http(s) URL, got {entry.get('url')!r}")
        model = entry.get("model")
        if not isinstance(model, str) or not model:
            raise RoutesError(f"backends.{key}.model: expected the InferenceService's model name")
        backends[version] = Backend(url=url.rstrip("/"), model=model)
    return backends


def _split(raw: Any, backends: dict[int, Backend]) -> tuple[Target, ...]:
    if not isinstance(raw, list) or not raw:
        raise RoutesError("split: expected a non-empty list of {version, weight, role}")
    targets = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise RoutesError(f"split[{i}]: expected an object with version, weight and role")
        version = _integer(entry.get("version"), f"split[{i}].version")
        if version not in backends:
            raise RoutesError(f"split[{i}].version: {version} has no entry in backends")
        role = entry.get("role", "stable")
        if role not in ROLES:
            raise RoutesError(f"split[{i}].role: expected one of {', '.join(ROLES)}, got {role!r}")
        targets.append(Target(version, _number(entry.get("weight"), f"split[{i}].weight", 0, 1e9), role))
    if sum(t.weight for t in targets) <= 0:
        raise RoutesError("split: the weights sum to 0; at least one version must receive traffic")
    return tuple(targets)


def _sticky(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("header"), str) or not raw["header"]:
        raise RoutesError('sticky: expected {"header": "<header name>"} or null')
    return raw["header"].lower()


def _mirror(raw: Any, field: str, backends: dict[int, Backend]) -> Mirror | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RoutesError(f"{field}: expected {{version, percent}} or null")
    version = _integer(raw.get("version"), f"{field}.version")
    if version not in backends:
        raise RoutesError(f"{field}.version: {version} has no entry in backends")
    return Mirror(version, _number(raw.get("percent", 100), f"{field}.percent", 0, 100))


def _preview(raw: Any, backends: dict[int, Backend]) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RoutesError("preview: expected {version} or null")
    version = _integer(raw.get("version"), "preview.version")
    if version not in backends:
        raise RoutesError(f"preview.version: {version} has no entry in backends")
    return version


def _capture(raw: Any) -> Capture:
    if raw is None:
        return Capture()
    if not isinstance(raw, dict):
        raise RoutesError("capture: expected {enabled, sampleRate, uri, endpoint} or null")
    enabled = bool(raw.get("enabled", False))
    uri = raw.get("uri")
    if uri is not None and (not isinstance(uri, str) or not uri.startswith(("file://", "s3://", "/"))):
        raise RoutesError(f"capture.uri: expected a file:// or s3:// URI, got {uri!r}")
    if enabled and not uri:
        raise RoutesError("capture.uri: required when capture.enabled is true")
    endpoint = raw.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise RoutesError(f"capture.endpoint: expected a URL or null, got {endpoint!r}")
    rate = _number(raw.get("sampleRate", 1.0), "capture.sampleRate", 0, 1)
    return Capture(enabled=enabled, sample_rate=rate, uri=uri, endpoint=endpoint)
