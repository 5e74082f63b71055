"""Alertmanager v2 alerts for drift, as data: one firing alert per episode, resolved when it ends.

Alertmanager de-duplicates by label set and resolves an alert it has not heard of for
``resolve_timeout`` (5 minutes by default), so a persisting drift is re-sent every ``RESEND``
with the same labels and start time, and its end is sent with ``endsAt``.

Pure: decides when to send and what; ``clients.alerts`` posts.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from mlkube.api import driftcheck, monitor
from mlkube.common import timestamps

ALERT_NAME = "MLModelDrift"
RESEND = datetime.timedelta(minutes=4)
DEFAULT_SUMMARY = "model input drift"


@dataclasses.dataclass(frozen=True)
class Alert:
    """One POST to an Alertmanager: ``body`` to ``url``. ``records`` says whether a successful post
    is the monitor's ``status.lastAlertTime`` (the alerts of the current episode; not the
    resolution of an earlier version's episode)."""

    url: str
    body: list[dict[str, Any]]
    records: bool = True


def labels(dmon: dict[str, Any], *, project: str, deployment: str, version: int, severity: str) -> dict[str, str]:
    """The label set that identifies one episode's alert: the monitor and the version it judged."""
    return {
        "alertname": ALERT_NAME,
        "namespace": dmon["metadata"]["namespace"],
        "monitor": dmon["metadata"]["name"],
        "project": project,
        "deployment": deployment,
        "version": str(version),
        "severity": severity,
    }


def should_send(*, drifting: bool, was_drifting: bool, last_alert: str | None, now: datetime.datetime) -> bool:
    """Send at the start of an episode, again every RESEND while it lasts, and once when it ends."""
    if drifting:
        if not was_drifting or not last_alert:
            return True
        return timestamps.parse(last_alert) + RESEND <= now
    return was_drifting


def payload(
    alert_labels: dict[str, str],
    findings: driftcheck.DriftCheckResult | monitor.DriftMonitorStatus,
    *,
    summary: str = DEFAULT_SUMMARY,
    starts_at: str,
    resolved_at: str | None,
) -> list[dict[str, Any]]:
    """The POST /api/v2/alerts body describing ``findings`` (an analysis, or the last status of an
    episode that ends), resolved when ``resolved_at`` is given."""
    drifted = [f.name for f in findings.features or () if f.drifted]
    annotations = {
        "summary": summary,
        "topDriftedFeatures": ", ".join(drifted[:5]) or "none",
        "performanceDrop": performance_text(findings.performance),
        "reportUri": findings.report_uri or "",
    }
    alert: dict[str, Any] = {"labels": alert_labels, "annotations": annotations, "startsAt": starts_at}
    if resolved_at:
        alert["endsAt"] = resolved_at
    return [alert]


def performance_text(performance: monitor.Performance | None) -> str:
    """``"f1 0.983 -> 0.748 (drop 0.235, 500 labeled requests)"``, or why there is no figure."""
    if performance is None or performance.baseline is None or performance.current is None:
        return "n/a (not enough labeled requests in the window)"
    baseline, current = performance.baseline, performance.current
    return (
        f"{performance.metric} {baseline:.3f} -> {current:.3f} (drop {baseline - current:.3f}, "
        f"{performance.samples} labeled requests)"
    )
