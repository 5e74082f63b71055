"""DriftMonitor controller: periodic drift analysis, alerts, and drift-triggered retraining.

Every ``interval`` (a daemon per monitor checks once a second whether one is due) the analysis
of the latest window runs in a worker process (``python -m mlkube.driftcheck``), so the operator
never imports the ML stack and keeps reconciling other objects while a large window is
analysed. The result becomes the status, Events, a Drifting condition, Prometheus gauges,
Alertmanager alerts (one per drift episode, resolved when it ends) and, within the project's
retraining policy, one TrainingJob per episode. An episode is a run of Drifting analyses of one
stable version: a new stable version ends it, since it is judged on its own reference.

Must not: analyse in-process, or write anything but the DriftMonitor's status, Events and the
TrainingJobs it starts.
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf
import pydantic

from mlkube.api import base, errors, kinds
from mlkube.clients import alerts, k8s, metrics, worker
from mlkube.control.manifests import drift
from mlkube.control.policy import conditions, retraining
from mlkube.control.reconcile import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "driftmonitors")
TICK_SECONDS = 1.0
RETRY_SECONDS = 15
_running: set[str] = set()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, dict(body), force=True)


@kopf.daemon(*RESOURCE, cancellation_timeout=5)
async def watch(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """One loop per monitor (a daemon, not a timer: no log line per tick); ``body`` stays current."""
    while not stopped:
        await reconcile(memo.k8s, dict(body))
        await stopped.wait(TICK_SECONDS)


async def reconcile(client: k8s.Client, dmon: dict[str, Any], *, force: bool = False) -> None:
    """Run the analysis when it is due (never two at once for one monitor) and act on its result."""
    key = f"{dmon['metadata']['namespace']}/{dmon['metadata']['name']}"
    current = dmon.get("status") or {}
    try:
        spec = kinds.DRIFTMONITOR.parse_spec(dmon["spec"])
    except pydantic.ValidationError as error:
        await _report(client, dmon, "InvalidSpec", errors.describe(error))
        return
    if key in _running or not (force or _is_due(current, spec)):
        return
    _running.add(key)
    try:
        # Kopf's copy may predate our last status write; episodes and alerts are judged on the stored one.
        fresh = await client.get(k8s.DRIFTMONITORS, dmon["metadata"]["name"], dmon["metadata"]["namespace"])
        if fresh is not None and (force or _is_due(fresh.get("status") or {}, spec)):
            await _analyse(client, fresh, spec)
    finally:
        _running.discard(key)


def _is_due(current: dict[str, Any], spec: Any) -> bool:
    last = current.get("lastCheckTime")
    return not last or _parse(last) + base.parse_duration(spec.interval) <= _now()


async def _analyse(client: k8s.Client, dmon: dict[str, Any], spec: Any) -> None:
    namespace = dmon["metadata"]["namespace"]
    try:
        mdep = await refs.deployment(client, spec.deployment_ref, namespace)
        mlp = await refs.project(client, mdep["spec"]["projectRef"], namespace,
                                 field=f"ModelDeployment {spec.deployment_ref} spec.projectRef")
        mlp_spec = refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        await _report(client, dmon, missing.reason, missing.message)
        raise kopf.TemporaryError(missing.message, delay=RETRY_SECONDS) from missing
    version = (mdep.get("status") or {}).get("stableVersion")
    entry = next((m for m in (mlp.get("status") or {}).get("models", []) if m["version"] == version), None)
    if entry is None:
        await _report(client, dmon, "NothingServed", f"ModelDeployment {spec.deployment_ref} serves no version yet", checked=True)
        return
    now = _now()
    request = drift.drift_request(dmon, spec, mdep=mdep, storage=mlp_spec.storage, entry=entry,
                                   primary_metric=mlp_spec.problem.primary_metric, now=now)
    secret_env = await _storage_env(client, namespace, mlp_spec.storage.credentials_secret)
    try:
        result = await worker.run("mlkube.driftcheck", request, env=secret_env)
    except worker.WorkerError as failure:
        await _report(client, dmon, "AnalysisFailed", str(failure), checked=True)
        return
    await _act(client, dmon, spec, result, mdep=mdep, mlp=mlp, version=version, now=now)


async def _act(client: k8s.Client, dmon: dict[str, Any], spec: Any, result: dict[str, Any], *,
               mdep: dict[str, Any], mlp: dict[str, Any], version: int, now: datetime.datetime) -> None:
    name, namespace = dmon["metadata"]["name"], dmon["metadata"]["namespace"]
    current = dmon.get("status") or {}
    stamp = _format(now)
    phase = result["phase"]
    drifting = phase == "Drifting"
    was_drifting = current.get("phase") == "Drifting"
    previous = current.get("modelVersion")
    if was_drifting and previous is not None and previous != version:
        # A new stable version is judged on its own reference: the old version's episode ends here.
        await _end_episode(dmon, spec, mlp, current, version=previous, now=now)
        kopf.info(dmon, reason="DriftResolved",
                  message=f"Version {previous} no longer serves; version {version} is judged on its own reference")
        was_drifting = False
    per_analysis = ("features", "predictionDrift", "performance", "datasetDrift", "driftShare", "message")
    new = {k: v for k, v in current.items() if k not in per_analysis}
    new.update({k: v for k, v in result.items() if k in (
        "phase", "samples", "datasetDrift", "driftShare", "features", "predictionDrift", "performance", "reportUri")})
    new.update({"modelVersion": version, "lastCheckTime": stamp})
    if drifting and not was_drifting:
        new["driftStartedAt"] = stamp
        kopf.warn(dmon, reason="DriftDetected", message=result.get("summary", "drift detected"))
    elif was_drifting and not drifting:
        kopf.info(dmon, reason="DriftResolved", message=f"No drift in the latest window ({result.get('samples')} samples)")
    labels = alerts.labels(dmon, project=mlp["metadata"]["name"], deployment=spec.deployment_ref, version=version,
                           severity=spec.alerting.severity)
    if spec.alerting.webhook and alerts.should_send(drifting=drifting, was_drifting=was_drifting,
                                                    last_alert=current.get("lastAlertTime"), now=now):
        payload = alerts.payload(labels, result, starts_at=new.get("driftStartedAt", stamp),
                                 resolved_at=None if drifting else stamp)
        if await alerts.post(spec.alerting.webhook, payload):
            new["lastAlertTime"] = stamp
    metrics.record_drift(namespace, name, result)
    if drifting and spec.action.retrain:
        new.update(await _retrain(client, dmon, mlp, episode=new["driftStartedAt"], now=now))
    cond = conditions.condition("Drifting", drifting, "DriftDetected" if drifting else "NoDrift",
                                result.get("summary", ""), generation=dmon["metadata"].get("generation", 1))
    new["conditions"] = conditions.set_condition(current.get("conditions", []), cond, now=stamp)
    ready_reason = {"InsufficientData": "InsufficientData"}.get(phase, "Analysed")
    new = status.with_ready(new, ready=True, reason=ready_reason, message=result.get("summary", ""),
                            generation=dmon["metadata"].get("generation", 1), at=stamp)
    await status.write(client, k8s.DRIFTMONITORS, dmon, new)


async def _end_episode(dmon: dict[str, Any], spec: Any, mlp: dict[str, Any], last: dict[str, Any], *, version: int,
                       now: datetime.datetime) -> None:
    """Resolve the alert of ``version``'s episode, described by its last analysis ``last``."""
    if not spec.alerting.webhook:
        return
    labels = alerts.labels(dmon, project=mlp["metadata"]["name"], deployment=spec.deployment_ref, version=version,
                           severity=spec.alerting.severity)
    stamp = _format(now)
    payload = alerts.payload(labels, last, starts_at=last.get("driftStartedAt", stamp), resolved_at=stamp)
    await alerts.post(spec.alerting.webhook, payload)


async def _retrain(client: k8s.Client, dmon: dict[str, Any], mlp: dict[str, Any], *, episode: str,
                   now: datetime.datetime) -> dict[str, Any]:
    """Start the episode's TrainingJob if the project's policy allows; never two for one episode."""
    runs = await client.list(k8s.TRAININGJOBS, mlp["metadata"]["namespace"])
    decision = retraining.decide(mlp, runs, episode=episode, now=now)
    if decision.allowed:
        try:
            await client.create(retraining.trainingjob(mlp, decision.name, trigger="drift", source=dmon["metadata"]["name"]))
            kopf.info(dmon, reason="RetrainingStarted", message=f"Started TrainingJob {decision.name}")
        except k8s.Conflict:
            pass  # created in an earlier pass: one run per episode
        return {"retrainingJob": decision.name}
    if decision.reason and (dmon.get("status") or {}).get("message") != decision.reason:
        kopf.info(dmon, reason="RetrainingSkipped", message=decision.reason)
    return {"message": decision.reason} if decision.reason else {}


async def _storage_env(client: k8s.Client, namespace: str, secret_name: str | None) -> dict[str, str]:
    """AWS credentials for the worker from the project's Secret (never logged or stored)."""
    if not secret_name:
        return {}
    secret = await client.get(k8s.SECRETS, secret_name, namespace)
    if secret is None:
        raise kopf.TemporaryError(f"Secret {secret_name!r} (spec.storage.credentialsSecret) does not exist", delay=RETRY_SECONDS)
    return worker.secret_env(secret, ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))


async def _report(client: k8s.Client, dmon: dict[str, Any], reason: str, message: str, *, checked: bool = False) -> None:
    """Ready=False with what to fix; ``checked`` counts the attempt as this interval's check (no retry every tick)."""
    current = dmon.get("status") or {}
    new = {**current, "phase": current.get("phase") or "Pending", "message": message}
    if checked:
        new["lastCheckTime"] = _format(_now())
    new = status.with_ready(new, ready=False, reason=reason, message=message, generation=dmon["metadata"].get("generation", 1),
                            at=status.now())
    await status.write(client, k8s.DRIFTMONITORS, dmon, new)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
