"""Which version a ModelDeployment serves: a pinned version, the champion or a release alias,
checked against the registry; and the alias claims of a project's versions.

Every selection honours eligibility (``eligibility.refusal``): a pinned or aliased version must be
usable (eligible or approved, not rejected); the champion already is, by construction. A version
whose artifacts retention deleted cannot be served at all (``VersionRetired``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mlkube.api import deployment, modelversion, project
from mlkube.control.policy import eligibility, registry, releases


@dataclasses.dataclass(frozen=True)
class Refused:
    """Why no version can be served: the Ready condition's reason and what to fix."""

    reason: str
    message: str


def claims(
    objects: Sequence[dict[str, Any]], *, project_name: str, criteria: Sequence[project.Criterion]
) -> list[releases.Claim]:
    """The alias claims of a project's ModelVersion ``objects`` (as listed), each marked usable or not."""
    found = []
    for mv in objects:
        spec = registry.parsed(mv)
        if spec is None or not spec.aliases:
            continue
        refusal = eligibility.refusal(
            spec.version, project_name=project_name, metrics=registry.measured(spec), criteria=criteria, approval=spec.approval
        )
        accepted = tuple((mv.get("status") or {}).get("aliases") or ())
        found.append(releases.Claim(spec.version, tuple(spec.aliases), accepted, usable=refusal is None))
    return found


def retired(
    objects: Sequence[dict[str, Any]],
    *,
    project_name: str,
    criteria: Sequence[project.Criterion],
    keep: int,
    champion: int | None,
    served: Mapping[int, Sequence[str]],
) -> set[int]:
    """The versions retention has retired among a project's ModelVersion ``objects`` (as listed):
    those already retired, and those beyond the ``keep`` newest that are not the champion, not
    ``served`` (``releases.serving``), not approved and not the holder of an alias."""
    specs = [s for s in map(registry.parsed, objects) if s is not None]
    holders = releases.resolve(claims(objects, project_name=project_name, criteria=criteria)).holders
    protected = releases.protected_versions(
        champion=champion,
        served=served,
        approved=[s.version for s in specs if s.approval.state == "Approved"],
        aliased=holders.values(),
    )
    already = [
        mv["spec"]["version"] for mv in objects if (mv.get("status") or {}).get("retiredAt") and "version" in mv.get("spec", {})
    ]
    return releases.retired([s.version for s in specs], keep=keep, protected=protected, already=already)


def purged(objects: Sequence[dict[str, Any]]) -> set[int]:
    """The versions whose artifacts retention deleted (``status.artifactsDeleted``)."""
    return {
        mv["spec"]["version"]
        for mv in objects
        if (mv.get("status") or {}).get("artifactsDeleted") and isinstance((mv.get("spec") or {}).get("version"), int)
    }


def select(
    selector: deployment.ModelSelector,
    *,
    project_name: str,
    champion: int | None,
    known: Sequence[project.ModelEntry],
    objects: Sequence[dict[str, Any]],
    criteria: Sequence[project.Criterion],
) -> int | Refused:
    """The version ``selector`` asks for among the ``known`` versions (``registry.known``) and the
    project's ModelVersion ``objects``, or why none can be served."""
    if selector.track == "champion":
        if champion is None:
            return Refused("NoChampion", f"spec.model.track: project {project_name!r} has no champion yet; train a model first")
        return champion
    if selector.alias is not None:
        holder = releases.resolve(claims(objects, project_name=project_name, criteria=criteria)).holders.get(selector.alias)
        if holder is None:
            return Refused(
                "AliasNotFound",
                f"spec.model.alias: no eligible or approved version of project {project_name!r} carries alias "
                f"{selector.alias!r}; add it to one: kubectl patch mv {project_name}-vN --type merge "
                f"""-p '{{"spec":{{"aliases":["{selector.alias}"]}}}}'""",
            )
        return holder
    entry = next((m for m in known if m.version == selector.version), None)
    if entry is None:
        versions = [m.version for m in known]
        return Refused(
            "VersionNotFound",
            f"spec.model.version: project {project_name!r} has no version {selector.version}; "
            f"registered versions: {versions or 'none'}",
        )
    if entry.version in purged(objects):
        return Refused(
            "VersionRetired",
            f"spec.model.version: version {entry.version} was retired and its artifacts deleted; "
            f"serve another version (registered: {[m.version for m in known]})",
        )
    approval = registry.approvals(objects).get(entry.version, modelversion.Approval())
    refusal = eligibility.refusal(
        entry.version, project_name=project_name, metrics=registry.measured(entry), criteria=criteria, approval=approval
    )
    if refusal is not None:
        return Refused(eligibility.REASON, f"spec.model.version: {refusal}")
    return entry.version
