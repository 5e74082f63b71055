"""Automatic retraining: whether a drift episode may start a run, and the run it starts. Pure.

The budget is read from the project's automatic TrainingJobs themselves (their trigger and
creation time), not from a counter, so it holds across operator restarts, plus the start times
the MLProject controller records in ``status.retrainTimes`` and ``status.lastRetrainTime``
(``recorded_starts``), so that runs deleted by the history limits still count. The run of an
episode has a name derived from the episode's start, so one episode can never start two.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from mlkube.api import base
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


def decide(mlp: dict[str, Any], runs: list[dict[str, Any]], *, episode: str, now: datetime.datetime) -> Decision:
    """Whether the episode starting at ``episode`` may start its run now."""
    project = mlp["metadata"]["name"]
    policy = (mlp["spec"].get("retraining") or {})
    name = run_name(project, episode)
    if not policy.get("onDrift", False):
        return Decision(False, name, f"project {project} has spec.retraining.onDrift false; drift does not start retraining")
    mine = [r for r in runs if r["spec"].get("projectRef") == project]
    if any(r["metadata"]["name"] == name for r in mine):
        return Decision(False, name)
    recorded = mlp.get("status") or {}
    created = sorted({_parse(t) for t in automatic_starts(mine, recorded, now=now)}
                     | ({_parse(recorded["lastRetrainTime"])} if recorded.get("lastRetrainTime") else set()))
    day = [t for t in created if t > now - datetime.timedelta(days=1)]
    budget = policy.get("maxPerDay", 4)
    if len(day) >= budget:
        return Decision(False, name, f"retraining budget spent: {len(day)} automatic runs in 24 h (spec.retraining.maxPerDay {budget})")
    cooldown = base.parse_duration(policy.get("cooldown", "6h"))
    if created and created[-1] + cooldown > now:
        until = (created[-1] + cooldown).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Decision(False, name, f"retraining cooling down until {until} (spec.retraining.cooldown {policy.get('cooldown', '6h')})")
    return Decision(True, name)


def automatic_starts(runs: list[dict[str, Any]], recorded: dict[str, Any], *, now: datetime.datetime) -> list[str]:
    """Creation times (RFC 3339, sorted, no repeats) of the automatic runs of the last 24 h: those
    in ``runs`` and those already in the project's ``status.retrainTimes`` (``recorded``)."""
    since = now - datetime.timedelta(days=1)
    times = {r["metadata"]["creationTimestamp"] for r in runs if r["spec"].get("trigger") in AUTOMATIC}
    times |= set(recorded.get("retrainTimes") or [])
    return sorted(t for t in times if _parse(t) > since)


def trainingjob(mlp: dict[str, Any], name: str, *, trigger: str, source: str | None = None) -> dict[str, Any]:
    """A TrainingJob from the project's template, owned by the project."""
    template = (mlp["spec"].get("training") or {}).get("template") or {}
    labels = {meta.MANAGED_BY: "mlkube", meta.PROJECT: mlp["metadata"]["name"], "mlkube.io/trigger": trigger}
    if source:
        labels["mlkube.io/source"] = source
    return {
        "apiVersion": base.API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": mlp["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [{**meta.owner_reference(mlp), "controller": False}],
        },
        "spec": {**template, "projectRef": mlp["metadata"]["name"], "trigger": trigger},
    }


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
