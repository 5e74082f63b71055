"""Release aliases and retention of a project's model versions.

Aliases (``ModelVersion.spec.aliases``, e.g. ``staging``, ``production``) name release stages. An
alias is on one version of a project at a time: adding it to a version moves it there (the
operator then removes it from the version that had it, so both objects say the same), provided
the new version is usable (eligible or approved, not rejected; ``eligibility``). A claim on a
version that is not usable is refused and the alias stays where it was. A ModelDeployment with
``model.alias`` serves the version the alias resolves to.

Retention keeps the ``keep`` newest versions; an older one is retired unless it is the champion,
served by a ModelDeployment, approved, or carries an alias. A retired version stays retired.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Claim:
    """One version's aliases: those in its spec (``claimed``) and those the operator already
    accepted for it (``accepted``, from its status); ``usable``: whether it may carry one."""

    version: int
    claimed: tuple[str, ...]
    accepted: tuple[str, ...] = ()
    usable: bool = True


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Where each alias points, and what the operator does about the other claims."""

    holders: dict[str, int]
    """alias -> version."""
    moved_from: dict[int, tuple[str, ...]]
    """version -> aliases to remove from its spec, because they moved to another version."""
    refused: dict[int, tuple[str, ...]]
    """version -> aliases it claims but may not carry (it is not usable)."""


def resolve(claims: Iterable[Claim]) -> Resolution:
    """Each alias goes to its newest claim (one the operator has not accepted yet) by a usable
    version, else stays with the usable version that already holds it."""
    claims = list(claims)
    holders: dict[str, int] = {}
    for alias in sorted({a for c in claims for a in c.claimed}):
        usable = [c for c in claims if alias in c.claimed and c.usable]
        newcomers = [c.version for c in usable if alias not in c.accepted]
        keepers = [c.version for c in usable if alias in c.accepted]
        if newcomers or keepers:
            holders[alias] = max(newcomers) if newcomers else max(keepers)
    moved: dict[int, tuple[str, ...]] = {}
    refused: dict[int, tuple[str, ...]] = {}
    for claim in claims:
        gone = tuple(a for a in claim.claimed if claim.usable and holders.get(a) != claim.version)
        denied = tuple(a for a in claim.claimed if not claim.usable)
        if gone:
            moved[claim.version] = gone
        if denied:
            refused[claim.version] = denied
    return Resolution(holders=holders, moved_from=moved, refused=refused)


def serving(deployments: Sequence[dict[str, Any]], project: str) -> dict[int, list[str]]:
    """version -> the ModelDeployments of ``project`` that serve it (stable, candidate, or the
    previous stable kept warm), from their status as listed."""
    served: dict[int, list[str]] = {}
    for mdep in deployments:
        if (mdep.get("spec") or {}).get("projectRef") != project:
            continue
        status = mdep.get("status") or {}
        for key in ("stableVersion", "candidateVersion", "previousVersion"):
            version = status.get(key)
            if isinstance(version, int) and mdep["metadata"]["name"] not in served.get(version, []):
                served.setdefault(version, []).append(mdep["metadata"]["name"])
    return {v: sorted(names) for v, names in served.items()}


def retired(
    versions: Sequence[int],
    *,
    keep: int,
    protected: Iterable[int],
    already: Iterable[int] = (),
) -> set[int]:
    """The versions retention retires: beyond the ``keep`` newest and not ``protected`` (champion,
    served, approved or aliased), plus those ``already`` retired."""
    newest = set(sorted(versions)[-keep:]) if keep > 0 else set()
    keep_also = set(protected)
    return {v for v in versions if v not in newest and v not in keep_also} | set(already)


def protected_versions(
    *,
    champion: int | None,
    served: Mapping[int, Sequence[str]],
    approved: Iterable[int],
    aliased: Iterable[int],
) -> set[int]:
    """Versions retention never retires."""
    return {v for v in (champion,) if v is not None} | set(served) | set(approved) | set(aliased)
