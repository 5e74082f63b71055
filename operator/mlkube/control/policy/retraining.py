"""Automatic retraining: whether a drift episode may start a run, and what counts as a start. Pure.

The budget is read from the project's automatic TrainingJobs themselves (their trigger and
creation time), not from a counter, so it holds across operator restarts, plus the start times
the MLProject controller records in ``status.retrainTimes`` and ``status.lastRetrainTime``
(``automatic_starts``), so that runs deleted by the history limits still count. The run of an
episode has a name derived from the episode's start, so one episode can never start two. The
TrainingJob itself is built by ``manifests.retraining.training_job``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from mlkube.api import base
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.manifests import meta

AUTOMATIC = ("schedule", "drift")


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    name: str
    reason: str | None = None


def run_name(project: str, episode: str) -> str:
    """The TrainingJob of one drift episode (``episode`` is its RFC 3339 start)."""
    stamp = episode.replace("-", "").replace(":", "").replace("T", "").rstrip("Z").lower()
    return meta.child_name(project, f"drift-{stamp}")


def decide(
    policy: project_api.Retraining,
    *,
    project: str,
    recorded: project_api.MLProjectStatus,
    runs: Sequence[dict[str, Any]],
    episode: str,
    now: datetime.datetime,
) -> Decision:
    """Whether the episode starting at ``episode`` may start its run now, under the retraining
    ``policy`` of ``project`` (its ``spec.retraining``); ``recorded`` is the project's status and
    ``runs`` the namespace's TrainingJobs."""
    name = run_name(project, episode)
    if not policy.on_drift:
        return Decision(False, name, f"project {project} has spec.retraining.onDrift false; drift does not start retraining")
    mine = [r for r in runs if r["spec"].get("projectRef") == project]
    if any(r["metadata"]["name"] == name for r in mine):
        return Decision(False, name)
    last = {timestamps.parse(recorded.last_retrain_time)} if recorded.last_retrain_time else set()
    created = sorted({timestamps.parse(t) for t in automatic_starts(mine, recorded=recorded.retrain_times, now=now)} | last)
    day = [t for t in created if t > now - datetime.timedelta(days=1)]
    if len(day) >= policy.max_per_day:
        return Decision(
            False,
            name,
            f"retraining budget spent: {len(day)} automatic runs in 24 h (spec.retraining.maxPerDay {policy.max_per_day})",
        )
    cooldown = base.parse_duration(policy.cooldown)
    if created and created[-1] + cooldown > now:
        until = timestamps.format(created[-1] + cooldown)
        return Decision(False, name, f"retraining cooling down until {until} (spec.retraining.cooldown {policy.cooldown})")
    return Decision(True, name)


def automatic_starts(runs: Sequence[dict[str, Any]], *, recorded: Sequence[str], now: datetime.datetime) -> list[str]:
    """Creation times (RFC 3339, sorted, no repeats) of the automatic runs of the last 24 h: those
    in ``runs`` and those already ``recorded`` (the project's ``status.retrainTimes``)."""
    since = now - datetime.timedelta(days=1)
    times = {r["metadata"]["creationTimestamp"] for r in runs if r["spec"].get("trigger") in AUTOMATIC}
    times |= set(recorded)
    return sorted(t for t in times if timestamps.parse(t) > since)
