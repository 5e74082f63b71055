"""ModelDeployment controller: InferenceServices per version, the router, and the rollout.

Each pass: read the ModelDeployment afresh, resolve the version the spec asks for, observe the
InferenceServices and the router's measurements (and, during an ABTest, the report comparing the
two versions: ``abtest.report``), let ``rollout.decide`` pick the next state,
apply the whole desired state (one InferenceService per served version, the router and its
table), delete versions that left the table on an earlier pass, write the status once, and only
then post the transition's Events and clear a consumed manual action. Passes over one ModelDeployment are
serialised in-process, so events from the spec, the timers and the InferenceServices never
decide twice from the same state.

An ABTest's report is refreshed in ``status.abTest`` on every pass while the test runs; when the
test ends (promoted, rolled back, paused, aborted or replaced) it is stamped ``finishedAt`` and kept
until the next rollout starts, and the end of the test's duration posts an ``ABTestReport`` Event.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from typing import Any

import kopf
import pydantic

from mlkube.api import deployment as deployment_api
from mlkube.api import errors, kinds
from mlkube.clients import k8s, routerstats
from mlkube.control.handlers import setup
from mlkube.control.manifests import meta, serving
from mlkube.control.policy import abtest, analysis, conditions, rollout
from mlkube.control.reconcile import refs, status

RESOURCE = ("mlkube.io", "v1alpha1", "modeldeployments")
ACTION_ANNOTATION = "mlkube.io/action"
RETRY_SECONDS = 15
TICK_SECONDS = 1.0  # while a rollout runs: pauses and analysis windows are a few seconds at the least
RESYNC_SECONDS = 30.0  # at rest: converge again after a child was changed or deleted behind our back
_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


def _rolling_out(status: kopf.Status, **_: Any) -> bool:
    """Whether the ModelDeployment needs a pass every tick (a rollout, or cleanup, under way)."""
    return (status.get("candidateVersion") is not None or bool(status.get("retiringVersions"))
            or status.get("phase") in (None, "Pending", "Progressing", "Degraded"))


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.update(*RESOURCE, field=("metadata", "annotations", ACTION_ANNOTATION))
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, name, namespace)


@kopf.timer(*RESOURCE, interval=TICK_SECONDS, initial_delay=TICK_SECONDS, when=_rolling_out)
async def tick(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, name, namespace)


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.k8s, name, namespace)


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices", labels={meta.MANAGED_BY: "mlkube"})
async def isvc_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, **_: Any) -> None:
    labels = body["metadata"].get("labels", {})
    if labels.get(meta.OWNER_KIND) == "modeldeployment" and labels.get(meta.OWNER_NAME):
        await reconcile(memo.k8s, labels[meta.OWNER_NAME], namespace)


@kopf.on.event("mlkube.io", "v1alpha1", "mlprojects")
async def champion_changed(body: kopf.Body, memo: kopf.Memo, namespace: str, name: str, **_: Any) -> None:
    champion = (body.get("status") or {}).get("championVersion")
    for mdep in await memo.k8s.list(k8s.MODELDEPLOYMENTS, namespace):
        tracking = mdep["spec"].get("projectRef") == name and (mdep["spec"].get("model") or {}).get("track") == "champion"
        serving_it = champion in ((mdep.get("status") or {}).get("stableVersion"), (mdep.get("status") or {}).get("candidateVersion"))
        if tracking and champion is not None and not serving_it:
            await reconcile(memo.k8s, mdep["metadata"]["name"], namespace)


async def reconcile(client: k8s.Client, name: str, namespace: str) -> None:
    """One pass over the ModelDeployment as it is now (a no-op once it is gone or going)."""
    async with _locks[f"{namespace}/{name}"]:
        mdep = await client.get(k8s.MODELDEPLOYMENTS, name, namespace)
        if mdep is None or mdep["metadata"].get("deletionTimestamp"):
            return
        await _pass(client, mdep)


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one pass saw of the versions' InferenceServices and of the router."""

    isvcs: dict[int, dict[str, Any] | None]
    ready: dict[int, bool]
    load_failures: dict[int, str]  # version -> why KServe cannot load it
    router_url: str | None
    router_ready: bool
    analysis: deployment_api.AnalysisResult | None  # the candidate's current window, when it serves
    ab_test: deployment_api.ABTestReport | None = None  # an ABTest's report so far, when the candidate serves


async def _pass(client: k8s.Client, mdep: dict[str, Any]) -> None:
    """Resolve, observe, decide, apply, report."""
    current = mdep.get("status") or {}
    resolved = await _resolve(client, mdep)
    if resolved is None:
        return
    spec, mlp, desired = resolved
    state = _state(current)
    retiring = set(current.get("retiringVersions", []))
    seen = await _observe(client, mdep, spec, versions={state.stable, state.candidate, desired, *retiring} - {None},
                          state=state, current=current, task=refs.parsed_project(mlp).problem.task)
    action = (mdep["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION)
    now = _now()
    decision = rollout.decide(spec.strategy, state, rollout.Observation(
        desired=desired, ready=seen.ready, verdict=seen.analysis.verdict if seen.analysis else None,
        action=action if action in ("promote", "abort") else None, now=now, load_failures=seen.load_failures,
        failed_checks=tuple(seen.analysis.failed_checks) if seen.analysis else (),
        ab_winner=seen.ab_test.winner if seen.ab_test else None, ab_summary=seen.ab_test.conclusion if seen.ab_test else ""))
    traffic, retiring = await _apply(client, mdep, spec, mlp, decision.state, seen, retiring=retiring)
    baseline, ab_baseline = current.get("analysisBaseline"), current.get("abTestBaseline")
    if decision.window_reset and seen.router_url and decision.state.candidate is not None:
        stats = await routerstats.fetch(seen.router_url)
        baseline = analysis.snapshot(stats, decision.state.candidate) if stats else None
        ab_baseline = analysis.snapshot(stats, decision.state.stable) if stats and spec.strategy.type == "ABTest" else None
    new = _status(current, decision.state, traffic, seen, baseline, retiring=retiring, now=now,
                  message=_message(current, decision, traffic, seen), generation=mdep["metadata"].get("generation", 1))
    new = _with_ab_test(new, current, before=state, after=decision.state, report=seen.ab_test, baseline=ab_baseline, now=now)
    await status.write(client, k8s.MODELDEPLOYMENTS, mdep, new)
    for type_, reason, text in decision.events:
        (kopf.warn if type_ == "Warning" else kopf.info)(mdep, reason=reason, message=text)
    if action:
        await client.patch(k8s.MODELDEPLOYMENTS, mdep["metadata"]["name"], mdep["metadata"]["namespace"],
                           {"metadata": {"annotations": {ACTION_ANNOTATION: None}}})


async def _resolve(client: k8s.Client, mdep: dict[str, Any]) -> tuple[Any, dict[str, Any], int] | None:
    """(spec, project, the version asked for); None after reporting an invalid spec. A missing
    reference is reported and retried."""
    current = mdep.get("status") or {}
    try:
        spec = kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"])
        mlp = await refs.project(client, spec.project_ref, mdep["metadata"]["namespace"])
        refs.parsed_project(mlp)
        return spec, mlp, served_version(spec, mlp)
    except pydantic.ValidationError as error:
        await _report(client, mdep, "Degraded", "InvalidSpec", errors.describe(error))
        return None
    except refs.MissingReference as missing:
        await _report(client, mdep, current.get("phase") or "Pending", missing.reason, missing.message)
        raise kopf.TemporaryError(missing.message, delay=RETRY_SECONDS) from missing


async def _observe(client: k8s.Client, mdep: dict[str, Any], spec: Any, *, versions: set[int], state: rollout.State,
                   current: dict[str, Any], task: str) -> Observed:
    name, namespace = mdep["metadata"]["name"], mdep["metadata"]["namespace"]
    isvcs = {v: await client.get(k8s.INFERENCESERVICES, serving.isvc_name(name, v), namespace) for v in versions}
    ready = {v: conditions.is_true((obj or {}).get("status", {}).get("conditions"), "Ready") for v, obj in isvcs.items()}
    failures = {v: why for v, obj in isvcs.items() if (why := _load_failure(obj)) and not ready[v]}
    router_url = _service_url(await client.get(k8s.SERVICES, serving.router_name(name), namespace))
    router = await client.get(k8s.DEPLOYMENTS, serving.router_name(name), namespace)
    router_ready = bool(router_url) and ((router or {}).get("status") or {}).get("availableReplicas", 0) >= 1
    result = report = None
    candidate = state.candidate
    if candidate is not None and ready.get(candidate) and router_url:
        stats = await routerstats.fetch(router_url)
        if stats is not None:
            window = analysis.window(stats, candidate, current.get("analysisBaseline"))
            result = analysis.judge(window, spec.strategy.analysis, needs_agreement=spec.strategy.type in ("Canary", "Shadow"))
            if spec.strategy.type == "ABTest" and state.stable is not None:
                report = ab_report(stats, spec.strategy, stable=state.stable, candidate=candidate, candidate_window=window,
                                   stable_baseline=current.get("abTestBaseline"), task=task)
    return Observed(isvcs=isvcs, ready=ready, load_failures=failures, router_url=router_url, router_ready=router_ready,
                    analysis=result, ab_test=report)


def ab_report(stats: dict[str, Any], strategy: deployment_api.Strategy, *, stable: int, candidate: int,
              candidate_window: analysis.Window, stable_baseline: dict[str, Any] | None,
              task: str) -> deployment_api.ABTestReport:
    """The A/B test report from the router's counters: the stable version's window since the test
    began beside the candidate's. Pure."""
    return abtest.report(abtest.Arm(stable, "stable", analysis.window(stats, stable, stable_baseline)),
                         abtest.Arm(candidate, "b", candidate_window), task=task,
                         min_labeled=strategy.analysis.min_requests)


async def _apply(client: k8s.Client, mdep: dict[str, Any], spec: Any, mlp: dict[str, Any], state: rollout.State,
                 seen: Observed, *, retiring: set[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """Apply an InferenceService per served version and the router with its table; delete the
    versions that left the table in an earlier pass (``retiring``). Returns the traffic as routed
    and the versions that left the table now, to delete on the next pass: by then the router has
    had a watch event's time to switch, so no request is sent to a version being deleted."""
    namespace = mdep["metadata"]["namespace"]
    storage = refs.parsed_project(mlp).storage
    registry = {m["version"]: m for m in (mlp.get("status") or {}).get("models", [])}
    served = {state.stable, state.candidate} - {None}
    if storage.credentials_secret:
        await client.apply(serving.storage_account(namespace, storage.credentials_secret))
    for version in served:
        await client.apply(serving.inference_service(
            mdep, spec, version=version, storage_uri=registry[version]["artifactUri"],
            storage_account=serving.STORAGE_SERVICE_ACCOUNT if storage.credentials_secret else None))
    backends = _backends(seen.isvcs, seen.ready, stable=state.stable, served=served)
    traffic = _routed(rollout.traffic(spec.strategy, state), backends)
    live = [t for t in traffic if t["version"] in backends]
    table = serving.routing_table(mdep, spec, traffic=live, backends=backends, capture_uri=storage.uri.rstrip("/"),
                                  capture_endpoint=storage.endpoint, generation=mdep["metadata"].get("generation", 1))
    await _apply_router(client, mdep, spec, table if any(t["percent"] > 0 for t in live) else None,
                        secret=storage.credentials_secret)
    unserved = {v for v, obj in seen.isvcs.items() if v not in served and obj is not None}
    for version in unserved & retiring:
        await client.delete(k8s.INFERENCESERVICES, serving.isvc_name(mdep["metadata"]["name"], version), namespace)
    return traffic, sorted(unserved - retiring)


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


def _backends(isvcs: dict[int, dict[str, Any] | None], ready: dict[int, bool], *, stable: int | None,
              served: set[int]) -> dict[int, str]:
    """The versions the router may call. The stable version stays in the table while it has an
    address even if a probe just failed (its Service answers as soon as a replica is back);
    a candidate joins only once Ready."""
    return {v: url for v in served if (url := _isvc_url(isvcs.get(v))) and (ready.get(v) or v == stable)}


def _routed(traffic: list[dict[str, Any]], backends: dict[int, str]) -> list[dict[str, Any]]:
    """The traffic table as the router applies it: a version it cannot call yet gets 0 % and the
    stable version the rest, so status never claims a share nobody serves."""
    if all(t["version"] in backends for t in traffic):
        return traffic
    return [{**t, "percent": 0} if t["version"] not in backends else {**t, "percent": 100} if t["role"] == "stable" else t
            for t in traffic]


async def _apply_router(client: k8s.Client, mdep: dict[str, Any], spec: Any, table: dict[str, Any] | None, *,
                        secret: str | None) -> None:
    """The router's objects; its table only once some version can answer (the router keeps its
    current table rather than adopt one that routes nowhere)."""
    for obj in serving.router_access(mdep["metadata"]["namespace"]):
        await client.apply(obj)
    if table is not None:
        await client.apply(serving.router_config_map(mdep, spec, table))
    await client.apply(serving.router_deployment(mdep, spec, image=setup.image(), secret=secret))
    await client.apply(serving.router_service(mdep, spec))


def _state(current: dict[str, Any]) -> rollout.State:
    started, ready_at = current.get("stepStartedAt"), current.get("candidateReadyAt")
    return rollout.State(
        stable=current.get("stableVersion"), candidate=current.get("candidateVersion"), phase=current.get("phase") or "Pending",
        step=current.get("currentStep"), step_started=_parse(started) if started else None,
        rolled_back=current.get("rolledBackVersion"), candidate_ready_at=_parse(ready_at) if ready_at else None,
    )


def _message(current: dict[str, Any], decision: rollout.Decision, traffic: list[dict[str, Any]], seen: Observed) -> str:
    """One sentence on where the rollout stands. A transition's message stays until the next one
    when the phase waits on a person (RolledBack, Paused), so the reason remains readable."""
    state = decision.state
    if decision.events:
        return decision.events[-1][2]
    if state.phase in ("RolledBack", "Paused") and current.get("message"):
        return current["message"]
    for version in (state.stable, state.candidate):
        if version is not None and not seen.ready.get(version):
            why = seen.load_failures.get(version) or _not_ready_reason(seen.isvcs.get(version))
            return f"Waiting for version {version} to become ready" + (f": {why}" if why else "")
    if state.candidate is None:
        return f"Version {state.stable} serves all traffic"
    result = seen.analysis
    verdict = f"analysis {result.verdict} on {result.requests} requests" if result else "analysis not started"
    return f"Rolling out version {state.candidate}: {rollout.summary(traffic)}; {verdict}"


def _status(current: dict[str, Any], state: rollout.State, traffic: list[dict[str, Any]], seen: Observed,
            baseline: dict[str, Any] | None, *, retiring: list[int], message: str, now: datetime.datetime,
            generation: int) -> dict[str, Any]:
    """The ModelDeployment's status from the decided state. Pure."""
    router_url = seen.router_url
    new = {k: v for k, v in current.items() if k not in ("candidateVersion", "currentStep", "stepStartedAt", "rolledBackVersion",
                                                          "candidateReadyAt", "previewUrl", "analysisBaseline", "url", "message",
                                                          "retiringVersions")}
    new.update({"phase": state.phase, "traffic": traffic, "trafficSummary": rollout.summary(traffic), "message": message})
    optional = {"stableVersion": state.stable, "candidateVersion": state.candidate, "currentStep": state.step,
                "stepStartedAt": _format(state.step_started) if state.step_started else None,
                "candidateReadyAt": _format(state.candidate_ready_at) if state.candidate_ready_at else None,
                "rolledBackVersion": state.rolled_back, "url": router_url,
                "previewUrl": f"{router_url}/preview" if router_url and any(t["role"] == "preview" for t in traffic) else None,
                "analysisBaseline": baseline if state.candidate is not None else None,
                "retiringVersions": retiring or None}
    new.update({k: v for k, v in optional.items() if v is not None})
    if seen.analysis is not None:
        new["analysis"] = seen.analysis.wire()
        new["lastAnalysisTime"] = _format(now)
    stable_ready = state.stable is not None and seen.ready.get(state.stable, False)
    serving_ok = stable_ready and seen.router_ready
    reason = "Serving" if serving_ok else ("RouterNotReady" if stable_ready else "VersionNotReady")
    ready_message = (f"Version {state.stable} serves at {router_url}" if serving_ok
                     else f"Waiting for version {state.stable} and the router to become ready")
    return status.with_ready(new, ready=serving_ok, reason=reason, message=ready_message, generation=generation, at=_format(now))


def _with_ab_test(new: dict[str, Any], current: dict[str, Any], *, before: rollout.State, after: rollout.State,
                  report: deployment_api.ABTestReport | None, baseline: dict[str, Any] | None,
                  now: datetime.datetime) -> dict[str, Any]:
    """``new`` with ``abTest`` and ``abTestBaseline``. Pure.

    A new rollout drops the previous report; a running test shows this pass's report (or keeps the
    last one while the router does not answer); the pass in which the test ends (the candidate
    leaves, or the rollout pauses) stamps ``finishedAt``; a finished report never changes again.
    """
    new = {k: v for k, v in new.items() if k not in ("abTest", "abTestBaseline")}
    kept = current.get("abTest")
    if after.candidate is not None and after.candidate != before.candidate:
        kept = None  # a new rollout: the last test's report goes
    elif not (kept or {}).get("finishedAt") and before.candidate is not None:
        kept = report.wire() if report is not None else kept
        if kept is not None and (after.candidate is None or after.phase == "Paused"):
            kept = {**kept, "finishedAt": _format(now)}
    if kept is not None:
        new["abTest"] = kept
    if after.candidate is not None and baseline is not None:
        new["abTestBaseline"] = baseline
    return new


async def _report(client: k8s.Client, mdep: dict[str, Any], phase: str, reason: str, message: str) -> None:
    current = mdep.get("status") or {}
    new = status.with_ready({**current, "phase": phase, "message": message}, ready=False, reason=reason, message=message,
                            generation=mdep["metadata"].get("generation", 1), at=status.now())
    await status.write(client, k8s.MODELDEPLOYMENTS, mdep, new)


def _load_failure(isvc: dict[str, Any] | None) -> str | None:
    """Why KServe reports the version's model cannot load (``modelStatus``), if it does.

    A server killed by a signal (exit code 128+: OOM kill, eviction, a person) is not a refusal
    to load: the kubelet restarts it, and the analysis judges what clients saw meanwhile.
    """
    model_status = ((isvc or {}).get("status") or {}).get("modelStatus") or {}
    if (model_status.get("states") or {}).get("targetModelState") != "FailedToLoad":
        return None
    info = model_status.get("lastFailureInfo") or {}
    if (info.get("exitCode") or 0) >= 128:
        return None
    return info.get("message") or info.get("reason") or "the model failed to load"


def _not_ready_reason(isvc: dict[str, Any] | None) -> str | None:
    for type_ in ("Ready", "PredictorReady"):
        found = conditions.find(((isvc or {}).get("status") or {}).get("conditions"), type_)
        if found and found.get("message"):
            return found["message"]
    return None


def _service_url(service: dict[str, Any] | None) -> str | None:
    ip = (service or {}).get("spec", {}).get("clusterIP")
    port = next(iter((service or {}).get("spec", {}).get("ports") or []), {}).get("port", 80)
    return f"http://{ip}:{port}" if ip and ip != "None" else None


def _isvc_url(isvc: dict[str, Any] | None) -> str | None:
    isvc_status = (isvc or {}).get("status") or {}
    return (isvc_status.get("address") or {}).get("url") or isvc_status.get("url")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
