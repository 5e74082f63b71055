"""What the router forwards: a routing table compiled for its requests, and a request as it goes
to a backend.

Owns `Compiled`: what every request needs from a routing table, worked out once per table (the
split's weights summed by `routing.Split`, each version's backend URLs per protocol and verb,
the paths the lean front door may answer, which side channels the table turns on: scores,
capture, mirrors). `Router.apply_routes` compiles each table it adopts. And `Forward`: a
client's request as the router sends it to a primary or a mirror (protocol, verb, body, the
client headers it passes on and the request id), with its header lines for `upstream.Pool.send`.

Must not: choose a version (`routing` does) or send anything (`upstream` does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlkube.serving import routing, upstream

REQUEST_ID = "x-request-id"
_FORWARDED = ("content-type", "inference-header-content-length")  # client headers passed on


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A routing table with what every request needs worked out once, when the table is applied."""

    table: routing.RoutingTable
    split: routing.Split
    preview: routing.Choice | None
    sticky_header: str | None
    urls: dict[tuple[int, str, str], str]  # (version, protocol, verb) -> the backend's URL
    lean: dict[str, tuple[str, str, bool]]  # path on the lean path -> (protocol, verb, preview)
    scored: frozenset[int] = frozenset()  # versions whose answers' probabilities are accumulated
    capture_rate: float = 0.0  # the share of requests captured (0: capture off)
    mirrored: bool = False  # a shadow or a canary's comparison with the stable takes copies

    @classmethod
    def of(cls, table: routing.RoutingTable) -> Compiled:
        urls = {}
        for version, backend in table.backends.items():
            urls[(version, "v1", "predict")] = f"{backend.url}/v1/models/{backend.model}:predict"
            urls[(version, "v1", "explain")] = f"{backend.url}/v1/models/{backend.model}:explain"
            urls[(version, "v2", "predict")] = f"{backend.url}/v2/models/{backend.model}/infer"
        name = table.deployment
        routes = {f"/v1/models/{name}:predict": ("v1", "predict"), f"/v1/models/{name}:explain": ("v1", "explain")}
        routes[f"/v2/models/{name}/infer"] = ("v2", "predict")
        lean = {path: (protocol, verb, False) for path, (protocol, verb) in routes.items()}
        if table.preview_version is not None:
            lean.update({f"/preview{path}": (protocol, verb, True) for path, (protocol, verb) in routes.items()})
        preview = routing.Choice(table.preview_version, "preview") if table.preview_version is not None else None
        scored = frozenset(table.scores.versions) if table.scores else frozenset()
        capture_rate = table.capture.sample_rate if table.capture.enabled else 0.0
        mirrored = table.shadow is not None or table.compare is not None
        return cls(table, routing.Split(table), preview, table.sticky_header, urls, lean, scored, capture_rate, mirrored)


@dataclasses.dataclass(slots=True)
class Forward:
    """A client request as it goes to a backend (primary or mirror)."""

    protocol: str  # "v1" | "v2"
    verb: str  # "predict" | "explain"
    body: bytes
    headers: dict[str, str]  # what is forwarded of the client's headers, and the request id

    @classmethod
    def of(cls, protocol: str, verb: str, body: bytes, sent: Any, request_id: str) -> Forward:
        headers = {name: value for name in _FORWARDED if (value := sent.get(name))}
        headers[REQUEST_ID] = request_id
        return cls(protocol, verb, body, headers)

    def header_lines(self) -> bytes:
        """The headers as `upstream.Pool.send` takes them."""
        return upstream.header_lines(self.headers)
