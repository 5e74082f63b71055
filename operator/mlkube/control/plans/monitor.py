"""The DriftMonitor's plan: the drift-check Job of a due analysis, and from its outcome (or why
there was none) to status, Events, the retraining run and the alerts. Pure: the reconciler reads,
``now`` is an argument.

A due analysis is a batch/v1 Job in the monitor's namespace (``manifests.drift``), created once
under a name fixed by the spec generation, the served version and the last check, so a retried
pass finds it instead of starting another. Later passes see it running, then turn its answer
into the status; the check's time (when it was started, recorded on its Job) becomes
``lastCheckTime``, which names the next check's Job. Check Jobs of earlier checks are deleted (a
TTL on the Job is the backstop).

An episode is a run of Drifting analyses of one stable version; a new stable version ends it,
since it is judged on its own reference. An episode raises one Event, one Alertmanager alert
(re-sent while it lasts, resolved when it ends) and, within the project's retraining policy, one
TrainingJob named after the episode's start. Events and the retraining run follow from comparing
the stored status with the new one, so a pass retried after a status-write conflict plans them
again (the first attempt posted nothing) and never twice.

Must not: read the clock or the cluster, or plan writes to anything but the DriftMonitor's
status, its Events, its check Jobs (and the token-less ServiceAccount they run under) and the
TrainingJob it starts.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pydantic

from mlkube.api import base, driftcheck, errors, kinds
from mlkube.api import monitor as monitor_api
from mlkube.api import project as project_api
from mlkube.common import timestamps
from mlkube.control.manifests import drift, meta, training
from mlkube.control.manifests import retraining as retraining_manifests
from mlkube.control.plans import plan as plans
from mlkube.control.policy import alerting, checkjob, conditions, retraining

RETRY_SECONDS = 15
BLOCKED = "AlertsBlocked"  # condition: the webhook is outside the operator's allowlist


@dataclasses.dataclass(frozen=True)
class Served:
    """The monitored deployment's project (as read, and its parsed spec) and the registry entry of
    the version the deployment serves as stable."""

    project: dict[str, Any]
    project_spec: project_api.MLProjectSpec
    entry: project_api.ModelEntry


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a pass read about a DriftMonitor whose analysis was due, as far as it got.

    Nothing (an invalid spec); ``missing`` (a reference); no ``served`` version; or the ``check``
    Job of the next analysis (None: not created yet; then ``awaiting`` names a missing storage
    Secret), with the names of the monitor's check Jobs in ``checks`` and, when a finished check
    may retrain, the namespace's TrainingJobs in ``runs``. ``image`` runs the check;
    ``webhook_allow`` is the operator's alert allowlist (None: unrestricted).
    """

    missing: plans.Unresolved | None = None
    served: Served | None = None
    awaiting: str | None = None
    check: checkjob.CheckState | None = None
    checks: tuple[str, ...] = ()
    runs: tuple[dict[str, Any], ...] = ()
    image: str = meta.IMAGE
    webhook_allow: tuple[str, ...] | None = None

    @property
    def analysis(self) -> driftcheck.DriftCheckResult | None:
        """The finished check's result, if it succeeded."""
        return self.check.result if self.check is not None and self.check.phase == "Succeeded" else None


@dataclasses.dataclass(frozen=True)
class MonitorPlan:
    """The pass's Plan, the alerts to post once it is executed (their success is recorded as
    ``status.lastAlertTime`` by the reconciler, not planned: a failed post is retried at the next
    analysis), and whether a check Job is under way (the reconciler looks again before the next
    interval)."""

    plan: plans.Plan
    alerts: tuple[alerting.Alert, ...] = ()
    checking: bool = False


def is_due(obj: dict[str, Any], *, now: datetime.datetime) -> bool:
    """Whether the monitor should be analysed at ``now``: never checked, or ``spec.interval``
    since the last check. An invalid spec is due until its status says so."""
    current = kinds.DRIFTMONITOR.parse_status(obj.get("status"))
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(obj.get("spec") or {})
    except pydantic.ValidationError:
        ready = next((c for c in current.conditions if c.type == "Ready"), None)
        reported = ready is not None and ready.reason == "InvalidSpec"
        return not (reported and current.observed_generation == _generation(obj))
    last = current.last_check_time
    return not last or timestamps.parse(last) + base.parse_duration(spec.interval) <= now


def served_entry(deployment: dict[str, Any], project: dict[str, Any]) -> project_api.ModelEntry | None:
    """The registry entry of the version ``deployment`` serves as stable, if any."""
    version = kinds.MODELDEPLOYMENT.parse_status(deployment.get("status")).stable_version
    models = kinds.MLPROJECT.parse_status(project.get("status")).models
    return next((m for m in models if m.version == version), None)


def scored_entry(bp: dict[str, Any], project: dict[str, Any]) -> project_api.ModelEntry | None:
    """The registry entry of the version BatchPrediction ``bp`` scored with, if it has started."""
    version = (bp.get("status") or {}).get("modelVersion")
    models = kinds.MLPROJECT.parse_status(project.get("status")).models
    return next((m for m in models if m.version == version), None)


def plan(obj: dict[str, Any], observed: Observed, *, now: datetime.datetime) -> MonitorPlan:
    """The whole outcome of one due pass over the DriftMonitor ``obj``."""
    current = kinds.DRIFTMONITOR.parse_status(obj.get("status"))
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(obj.get("spec") or {})
    except pydantic.ValidationError as error:
        return _not_ready(obj, current, "InvalidSpec", errors.describe(error), now=now)
    if observed.missing is not None:
        blocked = _not_ready(obj, current, observed.missing.reason, observed.missing.message, now=now)
        return MonitorPlan(dataclasses.replace(blocked.plan, retry_after=RETRY_SECONDS, retry_reason=observed.missing.message))
    if observed.served is None:
        message = f"{spec.source_description} {'serves' if spec.deployment_ref else 'has scored with'} no version yet"
        return _not_ready(obj, current, "NothingServed", message, now=now, checked=True)
    served, namespace = observed.served, obj["metadata"]["namespace"]
    name = drift.check_job_name(obj, version=served.entry.version)
    stale = tuple(plans.ObjectRef("batch/v1", "Job", n, namespace) for n in observed.checks if n != name)
    check = observed.check
    if check is None and observed.awaiting is not None:
        return MonitorPlan(plans.Plan(delete=stale, retry_after=RETRY_SECONDS, retry_reason=observed.awaiting))
    if check is None:
        request = drift.drift_request(
            obj,
            spec,
            storage=served.project_spec.storage,
            entry=served.entry,
            primary_metric=served.project_spec.problem.primary_metric,
            now=now,
        )
        job = drift.check_job(
            obj,
            request,
            name=name,
            checked_at=drift.check_time(obj, now=now),
            project_name=served.project["metadata"]["name"],
            image=observed.image,
            secret=served.project_spec.storage.credentials_secret,
        )
        job = meta.queued(job, spec.queue_name or served.project_spec.queue_name)
        account = training.trainer_service_account(namespace)
        return MonitorPlan(plans.Plan(apply=(account,), create=(job,), delete=stale), checking=True)
    if check.phase == "Running":
        return MonitorPlan(plans.Plan(delete=stale), checking=True)
    checked = check.checked_at or timestamps.format(now)
    if check.result is None:
        failed = _not_ready(obj, current, "AnalysisFailed", check.message or "no analysis", now=now, checked=checked)
        return MonitorPlan(dataclasses.replace(failed.plan, delete=stale))
    outcome = _analysed(obj, spec, current, served=served, result=check.result, observed=observed, checked=checked, now=now)
    return dataclasses.replace(outcome, plan=dataclasses.replace(outcome.plan, delete=stale))


def _analysed(
    obj: dict[str, Any],
    spec: monitor_api.DriftMonitorSpec,
    current: monitor_api.DriftMonitorStatus,
    *,
    served: Served,
    result: driftcheck.DriftCheckResult,
    observed: Observed,
    checked: str,
    now: datetime.datetime,
) -> MonitorPlan:
    """Status, Events, alerts and retraining of one analysis of the served version, which ended at
    ``checked`` (the new ``lastCheckTime``, and the time an episode starts or ends)."""
    stamp, generation, version = timestamps.format(now), _generation(obj), served.entry.version
    drifting, was_drifting = result.phase == "Drifting", current.phase == "Drifting"
    project_name = served.project["metadata"]["name"]
    webhook = spec.alerting.webhook
    allowed = webhook is None or alerting.is_allowed(webhook, observed.webhook_allow)
    events: list[plans.Event] = []
    alerts: list[alerting.Alert] = []

    def alert_labels(of_version: int) -> dict[str, str]:
        return alerting.labels(
            obj, project=project_name, deployment=spec.source, version=of_version, severity=spec.alerting.severity
        )

    previous = current.model_version
    if was_drifting and previous is not None and previous != version:
        # A new stable version is judged on its own reference: the old version's episode ends here.
        if webhook and allowed:
            body = alerting.payload(
                alert_labels(previous), current, starts_at=current.drift_started_at or checked, resolved_at=checked
            )
            alerts.append(alerting.Alert(webhook, body, records=False))
        events.append(
            plans.info("DriftResolved", f"Version {previous} no longer serves; version {version} is judged on its own reference")
        )
        was_drifting = False
    new = current.model_copy(
        update={
            "phase": result.phase,
            "samples": result.samples,
            "dataset_drift": result.dataset_drift,
            "drift_share": result.drift_share,
            "features": result.features or [],
            "prediction_drift": result.prediction_drift,
            "performance": result.performance,
            "fairness": result.fairness,
            "report_uri": result.report_uri or current.report_uri,
            "message": None,
            "model_version": version,
            "last_check_time": checked,
        }
    )
    if drifting and not was_drifting:
        new = new.model_copy(update={"drift_started_at": checked})
        events.append(plans.warning("DriftDetected", result.summary))
    elif was_drifting and not drifting:
        events.append(plans.info("DriftResolved", f"No drift in the latest window ({result.samples} samples)"))
    if (
        webhook
        and allowed
        and alerting.should_send(drifting=drifting, was_drifting=was_drifting, last_alert=current.last_alert_time, now=now)
    ):
        body = alerting.payload(
            alert_labels(version),
            result,
            summary=result.summary,
            starts_at=new.drift_started_at or checked,
            resolved_at=None if drifting else checked,
        )
        alerts.append(alerting.Alert(webhook, body))
    create: tuple[dict[str, Any], ...] = ()
    if drifting and spec.action.retrain:
        new, create, skipped = _retrain(obj, new, served, observed.runs, episode=new.drift_started_at or checked, now=now)
        if skipped and skipped != current.message:
            events.append(plans.info("RetrainingSkipped", skipped))
    if new.retraining_job and new.retraining_job != current.retraining_job:
        events.append(plans.info("RetrainingStarted", f"Started TrainingJob {new.retraining_job}"))
    new = conditions.with_condition(
        new, "Drifting", drifting, "DriftDetected" if drifting else "NoDrift", result.summary, generation=generation, now=stamp
    )
    new, blocked = _webhook_condition(
        new, webhook if not allowed else None, observed.webhook_allow, generation=generation, now=stamp
    )
    if blocked is not None and not conditions.is_true([c.wire() for c in current.conditions], BLOCKED):
        events.append(plans.warning("WebhookNotAllowed", blocked))
    new = conditions.with_ready(
        new,
        ready=True,
        reason="InsufficientData" if result.phase == "InsufficientData" else "Analysed",
        message=result.summary,
        generation=generation,
        now=stamp,
    )
    return MonitorPlan(plans.Plan(status=new, create=create, events=tuple(events)), alerts=tuple(alerts))


def _webhook_condition(
    status: monitor_api.DriftMonitorStatus,
    refused: str | None,
    allowed: tuple[str, ...] | None,
    *,
    generation: int,
    now: str,
) -> tuple[monitor_api.DriftMonitorStatus, str | None]:
    """``status`` with the AlertsBlocked condition when the webhook ``refused`` is outside the
    allowlist (and the message saying so), without it otherwise."""
    if refused is None:
        return status.model_copy(update={"conditions": [c for c in status.conditions if c.type != BLOCKED]}), None
    message = alerting.refusal(refused, allowed or ())
    return conditions.with_condition(status, BLOCKED, True, "WebhookNotAllowed", message, generation=generation, now=now), message


def _retrain(
    obj: dict[str, Any],
    new: monitor_api.DriftMonitorStatus,
    served: Served,
    runs: tuple[dict[str, Any], ...],
    *,
    episode: str,
    now: datetime.datetime,
) -> tuple[monitor_api.DriftMonitorStatus, tuple[dict[str, Any], ...], str | None]:
    """The status, the TrainingJob to create and the reason retraining was refused, for the episode
    starting at ``episode``. The episode's run, once it exists, is this monitor's ``retrainingJob``."""
    project, monitor = served.project, obj["metadata"]["name"]
    recorded = kinds.MLPROJECT.parse_status(project.get("status"))
    decision = retraining.decide(
        served.project_spec.retraining,
        project=project["metadata"]["name"],
        recorded=recorded,
        runs=runs,
        episode=episode,
        now=now,
    )
    if decision.allowed:
        run = retraining_manifests.training_job(project, served.project_spec, name=decision.name, trigger="drift", source=monitor)
        return new.model_copy(update={"retraining_job": decision.name}), (run,), None
    if decision.reason is None:
        # The episode's run exists: started by this monitor in an earlier pass (perhaps one whose
        # status write conflicted), or by another monitor of the project in the same second.
        mine = any(
            r["metadata"]["name"] == decision.name
            and (r["metadata"].get("labels") or {}).get(retraining_manifests.SOURCE) == monitor
            for r in runs
        )
        return (new.model_copy(update={"retraining_job": decision.name}) if mine else new), (), None
    return new.model_copy(update={"message": decision.reason}), (), decision.reason


def _not_ready(
    obj: dict[str, Any],
    current: monitor_api.DriftMonitorStatus,
    reason: str,
    message: str,
    *,
    now: datetime.datetime,
    checked: bool | str = False,
) -> MonitorPlan:
    """Ready=False with what to fix; ``checked`` counts the attempt as this interval's check (no
    retry every tick), made at ``now`` or at the time it names."""
    update: dict[str, Any] = {"phase": current.phase or "Pending", "message": message}
    if checked:
        update["last_check_time"] = checked if isinstance(checked, str) else timestamps.format(now)
    new = conditions.with_ready(
        current.model_copy(update=update),
        ready=False,
        reason=reason,
        message=message,
        generation=_generation(obj),
        now=timestamps.format(now),
    )
    return MonitorPlan(plans.Plan(status=new))


def _generation(obj: dict[str, Any]) -> int:
    return obj["metadata"].get("generation", 1)
