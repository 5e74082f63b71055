"""ModelDeployment controller: InferenceServices per version, the router, and the rollout.

Each pass: resolve the version the spec asks for, observe the InferenceServices and the router's
measurements, let ``rollout.decide`` pick the next state, apply the whole desired state (one
InferenceService per served version, the router and its table), delete versions no longer
served, and write the status once.
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf
import pydantic

from mlkube import analysis, conditions, k8s, rollout, routerstats
from mlkube.api import base, errors, kinds
from mlkube.controllers import refs, status, trainingjob
from mlkube.resources import meta, serving

RESOURCE = ("mlkube.io", "v1alpha1", "modeldeployments")
ACTION_ANNOTATION = "mlkube.io/action"
RETRY_SECONDS = 15
TICK_SECONDS = 1.0


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", ACTION_ANNOTATION))
async def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, dict(body))


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, initial_delay=TICK_SECONDS)
async def tick(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    current = body.get("status") or {}
    interval = base.parse_duration((body["spec"].get("strategy") or {}).get("analysis", {}).get("interval", "30s"))
    last = current.get("lastAnalysisTime")
    busy = current.get("candidateVersion") is not None or current.get("phase") in ("Pending", "Progressing", "Degraded", None)
    if not busy and last:
        return
    if last and _parse(last) + interval > _now() and current.get("phase") != "Progressing":
        return
    await reconcile(memo.k8s, dict(body))


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices", labels={meta.MANAGED_BY: "mlkube"})
async def isvc_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    owner = body["metadata"].get("labels", {}).get(meta.OWNER_NAME)
    mdep = owner and await memo.k8s.get(k8s.MODELDEPLOYMENTS, owner, namespace)
    if mdep:
        await reconcile(memo.k8s, mdep)


@kopf.on.event("mlkube.io", "v1alpha1", "mlprojects")
async def champion_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, name: str, **_: Any) -> None:
    champion = (body.get("status") or {}).get("championVersion")
    for mdep in await memo.k8s.list(k8s.MODELDEPLOYMENTS, namespace):
        tracking = mdep["spec"].get("projectRef") == name and (mdep["spec"].get("model") or {}).get("track") == "champion"
        serving_it = champion in ((mdep.get("status") or {}).get("stableVersion"), (mdep.get("status") or {}).get("candidateVersion"))
        if tracking and champion is not None and not serving_it:
            await reconcile(memo.k8s, mdep)


async def reconcile(client: k8s.Client, mdep: dict[str, Any]) -> None:
    name, namespace = mdep["metadata"]["name"], mdep["metadata"]["namespace"]
    generation = mdep["metadata"].get("generation", 1)
    current = mdep.get("status") or {}
    now = _now()
    try:
        spec = kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"])
        mlp = await refs.project(client, spec.project_ref, namespace)
        mlp_spec = refs.parsed_project(mlp)
        desired = served_version(spec, mlp)
    except pydantic.ValidationError as error:
        await _report(client, mdep, "Degraded", "InvalidSpec", errors.describe(error))
        return
    except refs.MissingReference as missing:
        await _report(client, mdep, current.get("phase") or "Pending", missing.reason, missing.message)
        raise kopf.TemporaryError(missing.message, delay=RETRY_SECONDS) from missing
    registry = {m["version"]: m for m in (mlp.get("status") or {}).get("models", [])}
    state = _state(current)
    isvcs = {v: await client.get(k8s.INFERENCESERVICES, serving.isvc_name(name, v), namespace)
             for v in {state.stable, state.candidate, desired} - {None}}
    ready = {v: conditions.is_true((obj or {}).get("status", {}).get("conditions"), "Ready") for v, obj in isvcs.items()}
    router_svc = await client.get(k8s.SERVICES, serving.router_name(name), namespace)
    router_url = _service_url(router_svc)
    result, baseline = None, current.get("analysisBaseline")
    if state.candidate is not None and ready.get(state.candidate) and router_url:
        stats = await routerstats.fetch(router_url)
        if stats is not None:
            window = analysis.window(stats, state.candidate, baseline)
            result = analysis.judge(window, spec.strategy.analysis, needs_agreement=spec.strategy.type in ("Canary", "Shadow"))
    action = (mdep["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION)
    decision = rollout.decide(spec.strategy, state, rollout.Observation(
        desired=desired, ready=ready, verdict=result.verdict if result else None,
        action=action if action in ("promote", "abort") else None, now=now))
    new_state = decision.state
    traffic = rollout.traffic(spec.strategy, new_state)
    served = {new_state.stable, new_state.candidate} - {None}
    secret = mlp_spec.storage.credentials_secret
    if secret:
        await client.apply(serving.storage_account(namespace, secret))
    for version in served:
        await client.apply(serving.inference_service(mdep, spec, version=version, storage_uri=registry[version]["artifactUri"],
                                                     storage_account=serving.STORAGE_SERVICE_ACCOUNT if secret else None))
    backends = {v: url for v in served if (url := _isvc_url(isvcs.get(v))) and ready.get(v)}
    table = serving.routing_table(mdep, spec, traffic=[t for t in traffic if t["version"] in backends], backends=backends,
                                  capture_uri=mlp_spec.storage.uri.rstrip("/"), capture_endpoint=mlp_spec.storage.endpoint,
                                  generation=generation)
    await _apply_router(client, mdep, spec, table, secret=mlp_spec.storage.credentials_secret)
    for version, obj in isvcs.items():
        if version not in served and obj is not None:
            await client.delete(k8s.INFERENCESERVICES, obj["metadata"]["name"], namespace)
    if action:
        await client.patch(k8s.MODELDEPLOYMENTS, name, namespace, {"metadata": {"annotations": {ACTION_ANNOTATION: None}}})
    for type_, reason, message in decision.events:
        (kopf.warn if type_ == "Warning" else kopf.info)(mdep, reason=reason, message=message)
    if decision.window_reset and router_url and new_state.candidate is not None:
        stats = await routerstats.fetch(router_url)
        baseline = analysis.snapshot(stats, new_state.candidate) if stats else None
    new = _status(current, new_state, traffic, result, baseline, router_url=router_url, ready=ready, now=now, generation=generation)
    await status.write(client, k8s.MODELDEPLOYMENTS, mdep, new)


def served_version(spec: Any, mlp: dict[str, Any]) -> int:
    """The version the spec asks for, checked against the project's registry."""
    project_status = mlp.get("status") or {}
    registry = project_status.get("models", [])
    if spec.model.track == "champion":
        champion = project_status.get("championVersion")
        if champion is None:
            raise refs.MissingReference("NoChampion", f"spec.model.track: project {spec.project_ref!r} has no champion yet; train a model first")
        return champion
    if not any(entry.get("version") == spec.model.version for entry in registry):
        raise refs.MissingReference(
            "VersionNotFound",
            f"spec.model.version: project {spec.project_ref!r} has no version {spec.model.version}; "
            f"registered versions: {[e.get('version') for e in registry] or 'none'}",
        )
    return spec.model.version


async def _apply_router(client: k8s.Client, mdep: dict[str, Any], spec: Any, table: dict[str, Any], *, secret: str | None) -> None:
    for obj in serving.router_access(mdep["metadata"]["namespace"]):
        await client.apply(obj)
    await client.apply(serving.router_config_map(mdep, spec, table))
    await client.apply(serving.router_deployment(mdep, spec, image=trainingjob.trainer_image(), secret=secret))
    await client.apply(serving.router_service(mdep, spec))


def _state(current: dict[str, Any]) -> rollout.State:
    started = current.get("stepStartedAt")
    return rollout.State(
        stable=current.get("stableVersion"), candidate=current.get("candidateVersion"), phase=current.get("phase") or "Pending",
        step=current.get("currentStep"), step_started=_parse(started) if started else None,
        rolled_back=current.get("rolledBackVersion"),
    )


def _status(current: dict[str, Any], state: rollout.State, traffic: list[dict[str, Any]], result: Any,
            baseline: dict[str, Any] | None, *, router_url: str | None, ready: dict[int, bool], now: datetime.datetime,
            generation: int) -> dict[str, Any]:
    """The ModelDeployment's status from the decided state. Pure."""
    new = {k: v for k, v in current.items() if k not in ("candidateVersion", "currentStep", "stepStartedAt", "rolledBackVersion",
                                                          "previewUrl", "analysisBaseline", "url")}
    new.update({"phase": state.phase, "traffic": traffic, "trafficSummary": rollout.summary(traffic)})
    optional = {"stableVersion": state.stable, "candidateVersion": state.candidate, "currentStep": state.step,
                "stepStartedAt": _format(state.step_started) if state.step_started else None,
                "rolledBackVersion": state.rolled_back, "url": router_url,
                "previewUrl": f"{router_url}/preview" if router_url and any(t["role"] == "preview" for t in traffic) else None,
                "analysisBaseline": baseline if state.candidate is not None else None}
    new.update({k: v for k, v in optional.items() if v is not None})
    if result is not None:
        new["analysis"] = result.wire()
        new["lastAnalysisTime"] = _format(now)
    serving_ok = state.stable is not None and ready.get(state.stable, False) and router_url is not None
    reason = "Serving" if serving_ok else ("RouterNotReady" if state.stable is not None and router_url is None else "VersionNotReady")
    message = (f"Version {state.stable} serves at {router_url}" if serving_ok
               else f"Waiting for version {state.stable} and the router to become ready")
    return status.with_ready(new, ready=serving_ok, reason=reason, message=message, generation=generation, at=_format(now))


async def _report(client: k8s.Client, mdep: dict[str, Any], phase: str, reason: str, message: str) -> None:
    current = mdep.get("status") or {}
    new = status.with_ready({**current, "phase": phase, "message": message}, ready=False, reason=reason, message=message,
                            generation=mdep["metadata"].get("generation", 1), at=status.now())
    await status.write(client, k8s.MODELDEPLOYMENTS, mdep, new)


def _service_url(service: dict[str, Any] | None) -> str | None:
    ip = (service or {}).get("spec", {}).get("clusterIP")
    return f"http://{ip}:80" if ip and ip != "None" else None


def _isvc_url(isvc: dict[str, Any] | None) -> str | None:
    isvc_status = (isvc or {}).get("status") or {}
    return (isvc_status.get("address") or {}).get("url") or isvc_status.get("url")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
