"""The ModelDeployment's passes: observe, plan (``plans.deployment``), execute.

One pass reads the ModelDeployment afresh, then everything its plan may need: the MLProject it
references, its InferenceServices, the router's Deployment, Service and HorizontalPodAutoscaler,
and the routers' counters (``GET /mlkube/stats`` of each ready router pod, summed; only once the
router has an address), and its replay Jobs
(the pods of the current one once it has finished: its answer is their termination message). The plan is carried
out by ``execute``: children applied, retired versions deleted, status written once, then the
Events posted and a consumed manual action cleared; a conflicting status write starts the pass
over. Passes over one ModelDeployment are serialised in-process, so events from the spec, the
timers and the InferenceServices never decide twice from the same state. After the pass, its
promotions, rollbacks, phase, verdict and traffic table are recorded (``clients.metrics``).

Must not: decide. What a pass does is the plan's.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import Any

import pydantic

from mlkube.api import deployment as deployment_api
from mlkube.api import kinds, modelversion
from mlkube.clients import k8s, metrics, prometheus, routerstats
from mlkube.common import timestamps
from mlkube.control.manifests import meta, serving
from mlkube.control.manifests import replay as replay_manifests
from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.plans import plan as plans
from mlkube.control.plans import replay as replay_plans
from mlkube.control.policy import jobstate, kserve
from mlkube.control.policy import replay as replay_policy
from mlkube.control.reconcile import execute, refs

_locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def reconcile(client: k8s.Client, name: str, namespace: str, *, image: str) -> None:
    """Converge ModelDeployment ``namespace/name`` (a no-op once it is gone or going); ``image``
    runs its router. Raises ``execute.RetryLater`` while a reference is missing."""
    executed: list[plans.Plan] = []

    async def step(obj: dict[str, Any]) -> plans.Plan:
        executed.clear()  # only the last attempt's plan is the one carried out
        planned = await _step(client, obj, image=image)
        executed.append(planned)
        return planned

    async with _locks[f"{namespace}/{name}"]:
        await execute.converge(client, k8s.MODELDEPLOYMENTS, name, namespace, step)
    for planned in executed:
        record_metrics(namespace, name, planned)


def deleted(name: str, namespace: str) -> None:
    """ModelDeployment ``namespace/name`` is gone: its state leaves the metrics."""
    metrics.forget_deployment(namespace, name)


def record_metrics(namespace: str, name: str, planned: plans.Plan) -> None:
    """What the executed pass did, as metrics: its promotions and rollbacks (the Events it
    posted) and the phase, verdict and traffic table it wrote."""
    for event in planned.events:
        metrics.record_rollout_event(namespace, name, event.reason)
    status = planned.status
    if isinstance(status, deployment_api.ModelDeploymentStatus):
        metrics.record_rollout_state(
            namespace,
            name,
            phase=status.phase,
            verdict=status.analysis.verdict if status.analysis else None,
            traffic=[(entry.version, entry.role, entry.percent) for entry in status.traffic],
        )


async def champion_changed(client: k8s.Client, project: dict[str, Any], *, image: str) -> None:
    """Reconcile the ModelDeployments that track ``project``'s champion and do not serve it yet."""
    meta_ = project["metadata"]
    champion = (project.get("status") or {}).get("championVersion")
    for mdep in await client.list(k8s.MODELDEPLOYMENTS, meta_["namespace"]):
        if plan_deployment.awaits_champion(mdep, project=meta_["name"], champion=champion):
            await reconcile(client, mdep["metadata"]["name"], meta_["namespace"], image=image)


async def versions_changed(client: k8s.Client, project: str, namespace: str, *, image: str) -> None:
    """Reconcile the ModelDeployments of ``project`` that pin a version or follow an alias."""
    for mdep in await client.list(k8s.MODELDEPLOYMENTS, namespace):
        spec = mdep.get("spec") or {}
        if spec.get("projectRef") == project and set(spec.get("model") or {}) & {"version", "alias"}:
            await reconcile(client, mdep["metadata"]["name"], namespace, image=image)


async def inference_service_changed(client: k8s.Client, isvc: dict[str, Any], *, image: str) -> None:
    """Reconcile the ModelDeployment that owns InferenceService ``isvc``, if one does."""
    labels = isvc["metadata"].get("labels") or {}
    if labels.get(meta.OWNER_KIND) == "modeldeployment" and labels.get(meta.OWNER_NAME):
        await reconcile(client, labels[meta.OWNER_NAME], isvc["metadata"]["namespace"], image=image)


def needs_ticks(status: Mapping[str, Any]) -> bool:
    """Whether the stored ``status`` shows a rollout (or cleanup) under way, which passes every
    tick; a status this operator cannot read does too, so that a pass rewrites it."""
    try:
        return plan_deployment.is_rolling_out(kinds.MODELDEPLOYMENT.parse_status(dict(status)))
    except pydantic.ValidationError:
        return True


async def _step(client: k8s.Client, obj: dict[str, Any], *, image: str) -> plans.Plan:
    observed = await observe(client, obj)
    return plan_deployment.plan(obj, observed, now=timestamps.now(), image=image)


async def observe(client: k8s.Client, obj: dict[str, Any]) -> plan_deployment.Observed:
    """Every read the pass over ModelDeployment ``obj`` needs."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    project_ref = (obj.get("spec") or {}).get("projectRef")
    if not isinstance(project_ref, str) or not project_ref:
        return plan_deployment.Observed()  # the plan reports the invalid spec
    try:
        mlp = await refs.project(client, project_ref, namespace)
        project = refs.parsed_project(mlp)
    except refs.MissingReference as missing:
        return plan_deployment.Observed(unresolved=plans.Unresolved(missing.reason, missing.message))
    try:
        owned = await client.list(
            k8s.INFERENCESERVICES, namespace, labels={meta.OWNER_KIND: "modeldeployment", meta.OWNER_NAME: name}
        )
    except k8s.NotFound:
        owned = []  # KServe is not installed (yet): no InferenceService exists; applying one will say so
    service = await client.get(k8s.SERVICES, serving.router_name(name), namespace)
    router_url = kserve.service_url(service)
    versions = await client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: project_ref})
    return plan_deployment.Observed(
        project=project,
        registry=kinds.MLPROJECT.parse_status(mlp.get("status")),
        versions=tuple(v for v in versions if (v.get("spec") or {}).get("projectRef") == project_ref),
        isvcs=_by_version(owned),
        router_service=service,
        router_deployment=await client.get(k8s.DEPLOYMENTS, serving.router_name(name), namespace),
        router_autoscaler=await client.get(k8s.HORIZONTALPODAUTOSCALERS, serving.router_name(name), namespace),
        stats=await _router_stats(client, name, namespace) if router_url else None,
        metric_readings=await _metric_readings(obj) if router_url else {},
        replay=await _replay(client, obj),
    )


async def _router_stats(client: k8s.Client, name: str, namespace: str) -> dict[str, Any] | None:
    """The summed counters of every ready router pod of deployment ``name``, each read at its own
    address (``routerstats.merged``)."""
    pods = await client.list(k8s.PODS, namespace, labels=serving.router_selector(name))
    urls = [f"http://{ip}:{serving.ROUTER_PORT}" for ip in sorted(filter(None, map(_ready_ip, pods)))]
    return await routerstats.fetch_all(urls)


def _ready_ip(pod: dict[str, Any]) -> str | None:
    """The pod's IP while it is Ready and not being deleted."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return status.get("podIP") if ready else None


async def _replay(client: k8s.Client, obj: dict[str, Any]) -> replay_plans.Observed:
    """The deployment's replay Jobs, and the state of the one its stored status names; nothing
    for a deployment that never replayed (no ``strategy.replay``, no ``status.replay``)."""
    if not ((obj.get("spec") or {}).get("strategy") or {}).get("replay") and not (obj.get("status") or {}).get("replay"):
        return replay_plans.Observed()
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    jobs = await client.list(k8s.JOBS, namespace, labels=replay_manifests.job_labels(name))
    current = replay_plans.current_job(obj)
    job = next((j for j in jobs if j["metadata"]["name"] == current), None)
    run = None
    if job is not None:
        finished = jobstate.condition(job, "Complete") or jobstate.condition(job, "Failed")
        pods = await client.list(k8s.PODS, namespace, labels={"job-name": current}) if finished else []
        run = replay_policy.run(job, pods)
    return replay_plans.Observed(run=run, jobs=tuple(sorted(j["metadata"]["name"] for j in jobs)))


async def _metric_readings(obj: dict[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """This pass's value of each ``strategy.analysis.metrics`` query, only while a version is
    analysed (a candidate, or the version just promoted while the previous one stays warm); the
    queries run concurrently, each bounded by ``prometheus.TIMEOUT``."""
    status = obj.get("status") or {}
    if status.get("candidateVersion") is None and status.get("previousVersion") is None:
        return {}
    try:
        checks = kinds.MODELDEPLOYMENT.parse_spec(obj["spec"]).strategy.analysis.metrics
    except pydantic.ValidationError:
        return {}  # the plan reports the invalid spec
    readings = await asyncio.gather(
        *(prometheus.query(c.provider.prometheus.address, c.provider.prometheus.query) for c in checks)
    )
    return {c.name: (r.value, r.error) for c, r in zip(checks, readings)}


def _by_version(isvcs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    by_version = {}
    for isvc in isvcs:
        version = (isvc["metadata"].get("labels") or {}).get(serving.VERSION_LABEL, "")
        if version.isdigit():
            by_version[int(version)] = isvc
    return by_version
