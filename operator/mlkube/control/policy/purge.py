"""When a retired version's artifacts are deleted, and what its purge Job says about the deletion.

A version retired by retention (``releases.retired``) keeps its artifacts for the project's
``registry.gracePeriod``; then a purge Job (``manifests.purge``) deletes them, unless the version
is protected at that moment: the champion, served or pinned by a ModelDeployment, approved, or the
holder of an alias. Retention protection wins over an earlier retirement: a retired version that
became protected again keeps its artifacts (it stays retired). A failed Job is kept for
``RETRY_SECONDS`` so that its failure can be read, then deleted, and the next pass starts a new one.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from mlkube.api import base
from mlkube.common import timestamps
from mlkube.control.manifests import purge
from mlkube.control.policy import jobstate

RETRY_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class JobState:
    """One purge Job: ``Running`` (created, not finished), ``Succeeded``, or ``Failed`` with a
    ``message`` saying why, at ``finished_at`` (RFC 3339; None when the Job does not say)."""

    phase: Literal["Running", "Succeeded", "Failed"]
    message: str = ""
    finished_at: str | None = None


def is_due(retired_at: str, grace_period: str, *, now: datetime.datetime) -> bool:
    """Whether the grace period of a version retired at ``retired_at`` has passed at ``now``."""
    return timestamps.parse(retired_at) + base.parse_duration(grace_period) <= now


def protection(
    version: int,
    *,
    champion: int | None,
    served: Mapping[int, Sequence[str]],
    pinned: Iterable[int],
    approved: bool,
    aliases: Sequence[str],
) -> str | None:
    """Why ``version``'s artifacts must be kept now (None: nothing protects them)."""
    if version == champion:
        return "it is the champion"
    if version in served:
        return f"it is served by {', '.join(served[version])}"
    if version in set(pinned):
        return "a ModelDeployment pins it (spec.model.version)"
    if approved:
        return "it is approved"
    if aliases:
        return f"it carries alias {', '.join(aliases)}"
    return None


def pinned(deployments: Sequence[dict[str, Any]], project: str) -> set[int]:
    """The versions of ``project`` that its ModelDeployments pin (``spec.model.version``), served yet or not."""
    found = set()
    for mdep in deployments:
        spec = mdep.get("spec") or {}
        version = (spec.get("model") or {}).get("version")
        if spec.get("projectRef") == project and isinstance(version, int):
            found.add(version)
    return found


def state(job: dict[str, Any], pods: Sequence[dict[str, Any]]) -> JobState:
    """The state of a purge ``job`` from the Job and its pods (read once it has finished)."""
    complete, failed = jobstate.condition(job, "Complete"), jobstate.condition(job, "Failed")
    if not complete and not failed:
        return JobState("Running")
    status = job.get("status") or {}
    finished = (complete or failed or {}).get("lastTransitionTime") or status.get("completionTime") or status.get("startTime")
    if complete:
        return JobState("Succeeded", finished_at=finished)
    terminated = jobstate.termination(pods, purge.CONTAINER) or {}
    if failed.get("reason") == "DeadlineExceeded":
        detail = f"ran longer than {purge.DEADLINE_SECONDS} s"
    else:
        detail = (
            jobstate.last_line(terminated.get("message", ""))
            or failed.get("message")
            or f"exit code {terminated.get('exitCode', 'unknown')}, no message"
        )
    return JobState("Failed", message=f"{purge.COMMAND[-1]}: {detail}", finished_at=finished)


def is_retry_due(failed: JobState, *, now: datetime.datetime) -> bool:
    """Whether a ``failed`` Job has been kept long enough (``RETRY_SECONDS``) to be replaced."""
    if failed.finished_at is None:
        return True
    return timestamps.parse(failed.finished_at) + datetime.timedelta(seconds=RETRY_SECONDS) <= now
