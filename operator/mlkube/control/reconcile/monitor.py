"""DriftMonitor reconciler: observe (references, the monitor's check Jobs and the answer of the
current one, the TrainingJobs), plan (``plans.monitor``), execute, then post alerts and record
metrics.

The analysis runs in the monitor's namespace as a drift-check Job (``manifests.drift``, contract
``api.driftcheck``), never in the operator: the operator neither loads the ML stack nor reads the
tenant's storage or credentials (the Job gets them by ``secretKeyRef``). A due pass creates the
check Job; while it runs, the monitor's daemon passes again every tick and the pass reads it; its
answer, from the termination message, becomes the status. A pass retried after a status-write
conflict reads the same Job, and the Events, the retraining run and the alerts of the retried pass
are those of the final, written status. Alerts go out only after that write, and only to targets
the operator's ``MLKUBE_ALERT_WEBHOOK_ALLOW`` allows; a successful post of the current episode's
alert is then recorded as ``status.lastAlertTime`` with a second, one-field status patch, so that
a post that failed is re-sent at the next analysis.

Must not: analyse in-process, hand the tenant's credentials to anything but the check Job (by
reference), run two passes of one monitor at once, or write anything but the DriftMonitor's status, Events, its check Jobs (and the token-less
ServiceAccount they run under) and the TrainingJobs it starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import pydantic

from mlkube.api import kinds
from mlkube.clients import alerts, k8s, metrics
from mlkube.common import timestamps
from mlkube.control.manifests import drift
from mlkube.control.plans import monitor as monitor_plans
from mlkube.control.plans import plan as plans
from mlkube.control.policy import alerting, checkjob, jobstate
from mlkube.control.reconcile import execute, refs

_running: set[str] = set()
_checking: set[str] = set()  # monitors whose check Job is under way: passed again before the interval


def webhook_allow() -> tuple[str, ...] | None:
    """The operator's alert allowlist (``$MLKUBE_ALERT_WEBHOOK_ALLOW``); None: unrestricted."""
    return alerting.allowlist(os.environ.get(alerting.ALLOW_ENV))


async def reconcile(
    client: k8s.Client,
    name: str,
    namespace: str,
    *,
    force: bool = False,
    seen: dict[str, Any] | None = None,
    image: str,
) -> None:
    """One pass over the DriftMonitor ``namespace/name``: when an analysis is due (or ``force``:
    its spec changed) start its check Job, follow it while it runs, act on its answer; never two
    passes at once for one monitor.

    ``seen`` is the caller's possibly stale copy of the object: when it shows the analysis is not
    due and no check is under way, the pass ends without a read. ``image`` runs the check (the
    operator's own, as for trainers). Raises ``execute.RetryLater`` when a reference is missing or the object kept
    changing.
    """
    key = f"{namespace}/{name}"
    if key in _running:
        return
    if not force and key not in _checking and seen is not None and not monitor_plans.is_due(seen, now=timestamps.now()):
        return
    _running.add(key)
    try:
        await _converge(client, name, namespace, force=force, image=image)
    finally:
        _running.discard(key)


async def _converge(client: k8s.Client, name: str, namespace: str, *, force: bool, image: str) -> None:
    key = f"{namespace}/{name}"
    executed: list[tuple[monitor_plans.Observed, monitor_plans.MonitorPlan, datetime.datetime]] = []

    async def step(obj: dict[str, Any]) -> plans.Plan | None:
        executed.clear()  # only the last attempt's outcome is the one executed
        now = timestamps.now()
        if not force and key not in _checking and not monitor_plans.is_due(obj, now=now):
            return None
        observed = await observe(client, obj, image=image, webhook_allow=webhook_allow())
        outcome = monitor_plans.plan(obj, observed, now=now)
        executed.append((observed, outcome, now))
        return outcome.plan

    try:
        await execute.converge(client, k8s.DRIFTMONITORS, name, namespace, step)
    finally:
        if any(outcome.checking for _, outcome, _ in executed):
            _checking.add(key)
        else:
            _checking.discard(key)
    for observed, outcome, now in executed:
        if observed.analysis is not None:
            metrics.record_drift(namespace, name, observed.analysis)
        await _post_alerts(client, name, namespace, outcome.alerts, now=now)


async def observe(
    client: k8s.Client, obj: dict[str, Any], *, image: str, webhook_allow: tuple[str, ...] | None = None
) -> monitor_plans.Observed:
    """Everything the plan needs, read in order and as far as it gets: the references, the served
    version, the monitor's check Jobs and, for the current one, its pods once it has finished (or,
    before it exists, whether the storage Secret does), and the namespace's TrainingJobs when a
    finished check found drift the monitor may retrain on."""
    observed = monitor_plans.Observed(image=image, webhook_allow=webhook_allow)
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(obj.get("spec") or {})
    except pydantic.ValidationError:
        return observed  # the plan reports the invalid spec
    namespace = obj["metadata"]["namespace"]
    try:
        if spec.deployment_ref is not None:
            source = await refs.deployment(client, spec.deployment_ref, namespace)
        else:
            source = await refs.batch_prediction(client, spec.batch_prediction_ref or "", namespace)
        mlp = await refs.project(
            client, source["spec"]["projectRef"], namespace, field=f"{spec.source_description} spec.projectRef"
        )
        project_spec = refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        return dataclasses.replace(observed, missing=plans.Unresolved(missing.reason, missing.message))
    if spec.deployment_ref is not None:
        entry = monitor_plans.served_entry(source, mlp)
    else:
        entry = monitor_plans.scored_entry(source, mlp)
    if entry is None:
        return observed
    served = monitor_plans.Served(project=mlp, project_spec=project_spec, entry=entry)
    name = drift.check_job_name(obj, version=entry.version)
    jobs = await client.list(k8s.JOBS, namespace, labels=drift.check_labels(obj))
    checks = tuple(sorted(j["metadata"]["name"] for j in jobs))
    job = next((j for j in jobs if j["metadata"]["name"] == name), None)
    observed = dataclasses.replace(observed, served=served, checks=checks)
    if job is None:
        secret = project_spec.storage.credentials_secret
        if secret and await client.get(k8s.SECRETS, secret, namespace) is None:
            awaiting = f"Secret {secret!r} (spec.storage.credentialsSecret) does not exist"
            return dataclasses.replace(observed, awaiting=awaiting)
        return observed
    finished = jobstate.condition(job, "Complete") or jobstate.condition(job, "Failed")
    pods = await client.list(k8s.PODS, namespace, labels={"job-name": name}) if finished else []
    check = checkjob.state(job, pods)
    runs: tuple[dict[str, Any], ...] = ()
    if check.result is not None and check.result.phase == "Drifting" and spec.action.retrain:
        runs = tuple(await client.list(k8s.TRAININGJOBS, namespace))
    return dataclasses.replace(observed, check=check, runs=runs)


async def _post_alerts(
    client: k8s.Client, name: str, namespace: str, planned: tuple[alerting.Alert, ...], *, now: datetime.datetime
) -> None:
    """Post the planned alerts; a delivered alert of the current episode becomes ``lastAlertTime``."""
    for alert in planned:
        if await alerts.post(alert.url, alert.body) and alert.records:
            try:
                await client.patch_status(k8s.DRIFTMONITORS, name, namespace, {"lastAlertTime": timestamps.format(now)})
            except k8s.NotFound:
                pass  # deleted meanwhile
