"""The writes the plugin makes, as data: exactly what a user would write with kubectl.

``promote``/``abort`` set the ``mlkube.io/action`` annotation the ModelDeployment's pass consumes
(``kubectl annotate mdep NAME mlkube.io/action=promote``); ``approve``/``reject`` merge-patch
``spec.approval`` of a ModelVersion (``kubectl patch mv NAME --type merge -p ...``, docs/registry.md).
Each also says, before anything is written, why the write would do nothing or be refused, so the
user reads the reason instead of a silent no-op.

Must not: read the cluster or decide anything the operator decides (whether a promotion goes
ahead is the rollout's: this only refuses what it would ignore).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Literal

from mlkube.control.plans import deployment as deployment_plan

Action = Literal["promote", "abort"]
Decision = Literal["Approved", "Rejected"]


class Refused(Exception):
    """The request cannot be carried out; the message says why and what to do instead."""


def action_patch(action: Action) -> dict[str, Any]:
    """The merge patch that asks the operator for ``action``, as ``kubectl annotate`` would write it."""
    return {"metadata": {"annotations": {deployment_plan.ACTION_ANNOTATION: action}}}


def check_action(action: Action, mdep: dict[str, Any]) -> None:
    """Raise ``Refused`` when ModelDeployment ``mdep`` has nothing ``action`` applies to: promote
    needs a candidate; abort a candidate, or a previous version still warm after a promotion."""
    name = mdep["metadata"]["name"]
    status = mdep.get("status") or {}
    candidate, previous = status.get("candidateVersion"), status.get("previousVersion")
    serving = f"phase {status.get('phase') or 'Pending'}, serving v{status.get('stableVersion', '?')}"
    if action == "promote" and candidate is None:
        raise Refused(f"ModelDeployment {name} has no rollout to promote ({serving})")
    if action == "abort" and candidate is None and previous is None:
        raise Refused(f"ModelDeployment {name} has no rollout to abort and no previous version to return to ({serving})")


def approval_patch(decision: Decision, reason: str | None) -> dict[str, Any]:
    """The merge patch of ``spec.approval``; raises ``Refused`` without a reason (the API server
    would refuse it too: the reason is recorded in the version's Event)."""
    if not reason or not reason.strip():
        verb = "approve" if decision == "Approved" else "reject"
        raise Refused(
            f"--reason is required: say why you {verb} the version; it is recorded in its {decision} Event "
            f"(e.g. --reason 'risk accepted by J. Doe, ticket 4711')"
        )
    return {"spec": {"approval": {"state": decision, "reason": reason.strip()}}}


def report_location(dmon: dict[str, Any]) -> str:
    """Where DriftMonitor ``dmon``'s latest report is: a local path for a ``file://`` URI, else the
    URI itself. Raises ``Refused`` when no analysis has written one yet."""
    status = dmon.get("status") or {}
    uri = status.get("reportUri")
    if not uri:
        phase = status.get("phase") or "Pending"
        raise Refused(f"DriftMonitor {dmon['metadata']['name']} has no report yet (phase {phase}): no analysis has written one")
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
