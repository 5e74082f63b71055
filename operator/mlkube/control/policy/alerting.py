"""Alertmanager v2 alerts for drift, as data: one firing alert per episode, resolved when it ends.

Alertmanager de-duplicates by label set and resolves an alert it has not heard of for
``resolve_timeout`` (5 minutes by default), so a persisting drift is re-sent every ``RESEND``
with the same labels and start time, and its end is sent with ``endsAt``.

Where alerts may go is the operator's setting: ``MLKUBE_ALERT_WEBHOOK_ALLOW``, a comma-separated
list of allowed hosts (``alertmanager.monitoring``, ``alertmanager:9093``) and URL prefixes
(``https://alerts.example.com/api/v2/``). Unset, any http(s) webhook is allowed; set, a monitor's
webhook must match an entry, or its alerts are not posted and its status says why.

Pure: decides when to send, what and whether the target is allowed; ``clients.alerts`` posts.
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from collections.abc import Sequence
from typing import Any

from mlkube.api import driftcheck, monitor
from mlkube.common import timestamps

ALLOW_ENV = "MLKUBE_ALERT_WEBHOOK_ALLOW"
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


def allowlist(setting: str | None) -> tuple[str, ...] | None:
    """The entries of an ``MLKUBE_ALERT_WEBHOOK_ALLOW`` value; None (no restriction) when unset.
    An empty value allows no webhook."""
    if setting is None:
        return None
    return tuple(entry.strip() for entry in setting.split(",") if entry.strip())


def is_allowed(url: str, allowed: Sequence[str] | None) -> bool:
    """Whether alerts may be posted to ``url`` under the allowlist ``allowed`` (None: anywhere).

    A host entry matches the URL's host (and its port, when the entry names one); a URL entry
    matches the same scheme, host and port and a path under the entry's path. Hosts are compared
    as parsed, so ``http://allowed@evil/`` is evil's."""
    if allowed is None:
        return True
    target = urllib.parse.urlsplit(url)
    if target.scheme not in ("http", "https") or not target.hostname:
        return False
    return any(_matches(target, entry) for entry in allowed)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _matches(target: urllib.parse.SplitResult, entry: str) -> bool:
    try:
        if "://" not in entry:
            host = urllib.parse.urlsplit(f"//{entry}")
            return host.hostname == target.hostname and (host.port is None or host.port == _port(target))
        prefix = urllib.parse.urlsplit(entry)
        if (prefix.scheme, prefix.hostname, _port(prefix)) != (target.scheme, target.hostname, _port(target)):
            return False
    except ValueError:
        return False  # an unparseable port
    path = prefix.path.rstrip("/")
    return not path or target.path == path or target.path.startswith(path + "/")


def _port(url: urllib.parse.SplitResult) -> int | None:
    return url.port or _DEFAULT_PORTS.get(url.scheme)


def refusal(url: str, allowed: Sequence[str]) -> str:
    """The status message of a webhook the allowlist refuses: what was refused and what to do."""
    listed = ", ".join(allowed) or "nothing"
    return (
        f"spec.alerting.webhook {url} is not allowed by the operator's {ALLOW_ENV} ({listed}); its alerts are not "
        "posted: use an allowed Alertmanager, or ask the operator's administrator to allow this one"
    )
