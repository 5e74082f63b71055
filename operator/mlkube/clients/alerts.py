"""Alertmanager v2 alerts for drift: one firing alert per episode, resolved when it ends.

Alertmanager de-duplicates by label set and resolves an alert it has not heard of for
``resolve_timeout`` (5 minutes by default), so a persisting drift is re-sent every few minutes
with the same labels and start time, and its end is sent with ``endsAt``.
"""

from __future__ import annotations

import datetime
from typing import Any

import aiohttp

ALERT_NAME = "MLModelDrift"
RESEND = datetime.timedelta(minutes=4)
TIMEOUT = aiohttp.ClientTimeout(total=5)


def labels(dmon: dict[str, Any], *, project: str, deployment: str, version: int, severity: str) -> dict[str, str]:
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
        return datetime.datetime.fromisoformat(last_alert.replace("Z", "+00:00")) + RESEND <= now
    return was_drifting


def payload(alert_labels: dict[str, str], result: dict[str, Any], *, starts_at: str, resolved_at: str | None) -> list[dict[str, Any]]:
    """The POST /api/v2/alerts body."""
    drifted = [f["name"] for f in result.get("features", []) if f.get("drifted")]
    performance = result.get("performance") or {}
    annotations = {
        "summary": result.get("summary", "model input drift"),
        "topDriftedFeatures": ", ".join(drifted[:5]) or "none",
        "performanceDrop": _performance_text(performance),
        "reportUri": result.get("reportUri", ""),
    }
    alert = {"labels": alert_labels, "annotations": annotations, "startsAt": starts_at}
    if resolved_at:
        alert["endsAt"] = resolved_at
    return [alert]


def _performance_text(performance: dict[str, Any]) -> str:
    """``"f1 0.983 -> 0.748 (drop 0.235, 500 labeled requests)"``, or why there is no figure."""
    baseline, current = performance.get("baseline"), performance.get("current")
    if baseline is None or current is None:
        return "n/a (not enough labeled requests in the window)"
    return (f"{performance.get('metric')} {baseline:.3f} -> {current:.3f} (drop {baseline - current:.3f}, "
            f"{performance.get('samples', 0)} labeled requests)")


async def post(url: str, body: list[dict[str, Any]]) -> bool:
    """POST the alerts; False when the receiver is unreachable or refuses (retried next interval)."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(url, json=body) as response:
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False
