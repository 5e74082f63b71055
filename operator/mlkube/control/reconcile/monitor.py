"""DriftMonitor reconciler: observe (references, the storage Secret, the analysis in a worker
process, the TrainingJobs), plan (``plans.monitor``), execute, then post alerts and record metrics.

The analysis runs out of process (``python -m mlkube.driftcheck``, contract ``api.driftcheck``),
so the operator never imports the ML stack and keeps reconciling other objects while a large
window is analysed. Running it is an observation: a pass retried after a status-write conflict
analyses again, and the Events, the retraining run and the alerts of the retried pass are those
of the final, written status. Alerts go out only after that write; a successful post of the
current episode's alert is then recorded as ``status.lastAlertTime`` with a second, one-field
status patch, so that a post that failed is re-sent at the next analysis (as before this shape).

Must not: analyse in-process, run two analyses of one monitor at once, or write anything but
the DriftMonitor's status, Events and the TrainingJobs it starts.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic

from mlkube.api import driftcheck, errors, kinds
from mlkube.clients import alerts, k8s, metrics, worker
from mlkube.common import timestamps
from mlkube.control.manifests import drift
from mlkube.control.plans import monitor as monitor_plans
from mlkube.control.plans import plan as plans
from mlkube.control.policy import alerting
from mlkube.control.reconcile import execute, refs

WORKER = "mlkube.driftcheck"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

Analyser = Callable[[driftcheck.DriftCheckRequest, dict[str, str]], Awaitable[dict[str, Any]]]
"""Runs one analysis: the request and the worker's environment in, the result's wire form out;
raises ``worker.WorkerError`` with the worker's explanation."""

_running: set[str] = set()


async def run_worker(request: driftcheck.DriftCheckRequest, env: dict[str, str]) -> dict[str, Any]:
    """The analysis in a ``python -m mlkube.driftcheck`` process."""
    return await worker.run(WORKER, request.wire(), env=env)


async def reconcile(
    client: k8s.Client,
    name: str,
    namespace: str,
    *,
    force: bool = False,
    seen: dict[str, Any] | None = None,
    analyser: Analyser = run_worker,
) -> None:
    """One pass over the DriftMonitor ``namespace/name``: when an analysis is due (or ``force``:
    its spec changed), run it and act on its result; never two at once for one monitor.

    ``seen`` is the caller's possibly stale copy of the object: when it shows the analysis is not
    due the pass ends without a read. ``analyser`` is the seam to the worker process. Raises
    ``execute.RetryLater`` when a reference is missing or the object kept changing.
    """
    key = f"{namespace}/{name}"
    if key in _running or (not force and seen is not None and not monitor_plans.is_due(seen, now=timestamps.now())):
        return
    _running.add(key)
    try:
        await _converge(client, name, namespace, force=force, analyser=analyser)
    finally:
        _running.discard(key)


async def _converge(client: k8s.Client, name: str, namespace: str, *, force: bool, analyser: Analyser) -> None:
    executed: list[tuple[monitor_plans.Observed, monitor_plans.MonitorPlan, datetime.datetime]] = []

    async def step(obj: dict[str, Any]) -> plans.Plan | None:
        executed.clear()  # only the last attempt's outcome is the one executed
        now = timestamps.now()
        if not force and not monitor_plans.is_due(obj, now=now):
            return None
        observed = await observe(client, obj, now=now, analyser=analyser)
        outcome = monitor_plans.plan(obj, observed, now=now)
        executed.append((observed, outcome, now))
        return outcome.plan

    await execute.converge(client, k8s.DRIFTMONITORS, name, namespace, step)
    for observed, outcome, now in executed:
        if observed.analysis is not None:
            metrics.record_drift(namespace, name, observed.analysis)
        await _post_alerts(client, name, namespace, outcome.alerts, now=now)


async def observe(
    client: k8s.Client, obj: dict[str, Any], *, now: datetime.datetime, analyser: Analyser = run_worker
) -> monitor_plans.Observed:
    """Everything the plan needs, read in order and as far as it gets: the references, the served
    version, the storage Secret, the analysis of the window ending ``now``, and the namespace's
    TrainingJobs when a drift may start one."""
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(obj.get("spec") or {})
    except pydantic.ValidationError:
        return monitor_plans.Observed()  # the plan reports the invalid spec
    namespace = obj["metadata"]["namespace"]
    try:
        mdep = await refs.deployment(client, spec.deployment_ref, namespace)
        mlp = await refs.project(
            client, mdep["spec"]["projectRef"], namespace, field=f"ModelDeployment {spec.deployment_ref} spec.projectRef"
        )
        project_spec = refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        return monitor_plans.Observed(missing=plans.Unresolved(missing.reason, missing.message))
    entry = monitor_plans.served_entry(mdep, mlp)
    if entry is None:
        return monitor_plans.Observed()
    served = monitor_plans.Served(project=mlp, project_spec=project_spec, entry=entry)
    env: dict[str, str] = {}
    secret_name = project_spec.storage.credentials_secret
    if secret_name:
        secret = await client.get(k8s.SECRETS, secret_name, namespace)
        if secret is None:
            awaiting = f"Secret {secret_name!r} (spec.storage.credentialsSecret) does not exist"
            return monitor_plans.Observed(served=served, awaiting=awaiting)
        env = worker.secret_env(secret, SECRET_KEYS)  # never logged or stored
    request = drift.drift_request(
        obj, spec, storage=project_spec.storage, entry=entry, primary_metric=project_spec.problem.primary_metric, now=now
    )
    try:
        analysis = driftcheck.DriftCheckResult.model_validate(await analyser(request, env))
    except worker.WorkerError as failure:
        return monitor_plans.Observed(served=served, failure=str(failure))
    except pydantic.ValidationError as invalid:
        failure = f"{WORKER}: unexpected result: {errors.describe(invalid, root='result')}"
        return monitor_plans.Observed(served=served, failure=failure)
    runs: tuple[dict[str, Any], ...] = ()
    if analysis.phase == "Drifting" and spec.action.retrain:
        runs = tuple(await client.list(k8s.TRAININGJOBS, namespace))
    return monitor_plans.Observed(served=served, analysis=analysis, runs=runs)


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
