"""The router's per-request decisions over its routing table, as pure functions.

Owns: the choices made for each request: which version serves it (weighted split, sticky A/B
by hashing a header, the blue/green preview), whether it is mirrored to the shadow, and whether
a canary's request is mirrored to the stable to measure agreement. Randomness comes in as a
`draw` in [0, 1), so every choice is a plain function of its inputs.

The table itself is the contract `mlkube.api.routing.RoutingTable` (written by the ModelDeployment
controller, `routes.json` of ConfigMap `<deployment>-router`, see docs/serving.md); its names are
re-exported here for the router's code: `RoutingTable.parse(doc)` validates a document and raises
`RoutesError` naming each bad field, and the router keeps its previous table when it does.

Must not: do I/O, read clocks or random generators, or know about HTTP.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing

from mlkube.api import routing as routing_api

ROLES = typing.get_args(routing_api.Role)

RoutesError = routing_api.RoutesError
RoutingTable = routing_api.RoutingTable
Backend = routing_api.Backend
Target = routing_api.Target
Mirror = routing_api.Mirror
Capture = routing_api.Capture


@dataclasses.dataclass(frozen=True)
class Choice:
    """The version that serves a request and the role it plays."""

    version: int
    role: str


def choose(table: RoutingTable, *, draw: float) -> Choice:
    """The split entry that `draw` (uniform in [0, 1)) falls into, in proportion to the weights."""
    return Split(table).choose(draw)


class Split:
    """`choose` over one table with its weights summed and its choices built once, for every request."""

    def __init__(self, table: RoutingTable):
        self.total = sum(t.weight for t in table.split)
        self.entries = tuple((t.weight, Choice(t.version, t.role)) for t in table.split)
        self.last = next(choice for weight, choice in reversed(self.entries) if weight > 0)

    def choose(self, draw: float) -> Choice:
        """The entry `draw` (uniform in [0, 1)) falls into, in proportion to the weights."""
        point = draw * self.total
        for weight, choice in self.entries:
            if point < weight:
                return choice
            point -= weight
        return self.last


def sticky_draw(deployment: str, value: str) -> float:
    """A draw in [0, 1) fixed by a sticky header value, the same in every router replica."""
    digest = hashlib.blake2b(f"{deployment}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_mirrored(mirror: Mirror | None, *, draw: float) -> bool:
    """Whether a request with this draw belongs to the mirrored share."""
    return mirror is not None and draw * 100.0 < mirror.percent
