"""The InferenceService controller (KServe raw-deployment mode) of the local runtime.

Owns applying each InferenceService's ``<isvc>-predictor`` Deployment and Service (built by
:mod:`mlkube.local.runtime.kserve`) and computing KServe's status: the ``IngressReady``,
``PredictorReady`` and ``Ready`` conditions, ``url`` and ``address.url`` on the Service's
clusterIP, the predictor's revisions and ``modelStatus`` (including the last load failure).
A changed spec rolls the Deployment (a new pod becomes ready before the old one goes), so
readiness is not dropped. Deleting the InferenceService deletes both children through their
ownerReferences (the API server's garbage collector) and so its processes.
"""

from __future__ import annotations

from mlkube.local.runtime import kserve, kube, objects, services, store

SERVICE_FIELDS = ("selector", "ports")


async def sync(cluster: store.Store, proxy: services.Proxy) -> None:
    """Reconcile every InferenceService in the cluster; ``proxy`` tells whether its
    Service's address is actually served (``IngressReady``)."""
    cluster_runtimes = cluster.list(kube.CLUSTERSERVINGRUNTIMES)
    for isvc in cluster.list(kube.INFERENCESERVICES):
        if objects.is_terminating(isvc):
            continue
        namespace = isvc["metadata"].get("namespace") or "default"
        try:
            deployment, service, runtime = await _children(
                cluster, isvc, runtimes=cluster.list(kube.SERVINGRUNTIMES, namespace), cluster_runtimes=cluster_runtimes
            )
        except kserve.SpecError as e:
            status = failed_status(isvc, e)
        else:
            live_deployment = await _apply(cluster, kube.DEPLOYMENTS, deployment, deployment["spec"])
            live_service = await _apply(cluster, kube.SERVICES, service, {k: service["spec"][k] for k in SERVICE_FIELDS})
            pods = cluster.owned(kube.PODS, live_deployment)
            spec = live_service.get("spec") or {}
            listening = proxy.is_serving(spec.get("clusterIP") or "", spec["ports"][0]["port"])
            status = status_of(isvc, live_deployment, live_service, pods, listening=listening)
            if runtime is not None:
                field = "servingRuntimeName" if runtime.get("kind") != "ClusterServingRuntime" else "clusterServingRuntimeName"
                status[field] = runtime["metadata"]["name"]
        await cluster.write_status(kube.INFERENCESERVICES, isvc, status)


async def _children(
    cluster: store.Store, isvc: dict, *, runtimes: list[dict], cluster_runtimes: list[dict]
) -> tuple[dict, dict, dict | None]:
    """The predictor's Deployment and Service, and the runtime chosen (None for a predictor
    given as containers)."""
    model = kserve.model_spec(isvc)
    runtime = None
    if model is None:
        container = dict(isvc["spec"]["predictor"]["containers"][0])
        storage_uri = next((e.get("value") for e in container.get("env") or [] if e["name"] == "STORAGE_URI"), None)
    else:
        runtime = kserve.select_runtime(isvc, model, runtimes=runtimes, cluster_runtimes=cluster_runtimes)
        container = kserve.predictor_container(runtime, model, isvc)
        storage_uri = model.get("storageUri")
    container = kserve.with_readiness_probe(container)
    storage_env = await _storage_env(cluster, isvc) if storage_uri else []
    deployment = kserve.predictor_deployment(isvc, container=container, storage_uri=storage_uri, storage_env=storage_env)
    service = kserve.predictor_service(isvc, target_port=kserve.container_port(container))
    return deployment, service, runtime


async def _storage_env(cluster: store.Store, isvc: dict) -> list[dict]:
    """S3 variables from the first S3 secret of the predictor's service account."""
    namespace = isvc["metadata"].get("namespace") or "default"
    account = (isvc["spec"].get("predictor") or {}).get("serviceAccountName") or "default"
    try:
        service_account = await cluster.client.get(kube.SERVICEACCOUNTS, namespace, account)
    except kube.NotFound:
        return []
    for ref in service_account.get("secrets") or []:
        try:
            secret = await cluster.client.get(kube.SECRETS, namespace, ref["name"])
        except kube.NotFound:
            continue
        if kserve.is_s3_secret(secret):
            return kserve.s3_environment(secret)
    return []


async def _apply(cluster: store.Store, resource: kube.Resource, desired: dict, owned_spec: dict) -> dict:
    """Create ``desired`` or bring the live object's ``owned_spec`` fields to it; the spec
    hash annotation avoids rewriting an unchanged object on every pass."""
    meta = desired["metadata"]
    live = cluster.get(resource, meta["namespace"], meta["name"])
    if live is None:
        try:
            return await cluster.create(resource, desired)
        except kube.Conflict:  # created meanwhile (the cache lagged): read it, converge next pass
            return await cluster.client.get(resource, meta["namespace"], meta["name"])
    live_meta = live["metadata"]
    wanted_hash = meta["annotations"][kserve.SPEC_HASH]
    if (live_meta.get("annotations") or {}).get(kserve.SPEC_HASH) == wanted_hash:
        return live
    live_spec = live.get("spec") or {}
    spec_patch = {k: objects.merge_patch(live_spec.get(k), v) for k, v in owned_spec.items() if live_spec.get(k) != v}
    return await cluster.patch(
        resource,
        live,
        {
            "metadata": {
                "labels": meta["labels"],
                "annotations": meta["annotations"],
                "ownerReferences": meta["ownerReferences"],
            },
            "spec": spec_patch,
        },
    )


def _failure(pods: list[dict]) -> dict | None:
    """KServe's ``lastFailureInfo`` from a predictor pod whose model did not load."""
    for pod in pods:
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            for state in (container.get("state") or {}, container.get("lastState") or {}):
                ended = state.get("terminated")
                if ended and ended.get("exitCode"):
                    return {
                        "reason": "ModelLoadFailed",
                        "location": pod["metadata"]["name"],
                        "message": ended.get("message") or f"container {container['name']} exited with {ended['exitCode']}",
                        "exitCode": ended["exitCode"],
                    }
    return None


def status_of(isvc: dict, deployment: dict, service: dict, pods: list[dict], *, listening: bool) -> dict:
    """KServe's status of an InferenceService from its predictor's objects and whether its
    Service address is being served (pure)."""
    previous = (isvc.get("status") or {}).get("conditions")
    dstatus = deployment.get("status") or {}
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    predictor_ready = objects.is_true(deployment, "Available") and dstatus.get("readyReplicas", 0) >= min(replicas, 1)
    cluster_ip = (service.get("spec") or {}).get("clusterIP")
    ingress_ready = bool(cluster_ip) and cluster_ip != "None" and listening
    ready = predictor_ready and ingress_ready
    revision = f"{deployment['metadata']['name']}-{(deployment['metadata'].get('annotations') or {}).get(kserve.SPEC_HASH, '')}"
    rolled_out = (
        dstatus.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
        and dstatus.get("updatedReplicas") == replicas == dstatus.get("readyReplicas")
        and dstatus.get("replicas") == replicas
    )
    port = next(iter((service or {}).get("spec", {}).get("ports") or []), {}).get("port", 80)
    url = kserve.service_url(cluster_ip, port) if ingress_ready else None
    predictor: dict = {"latestCreatedRevision": revision}
    if rolled_out:
        predictor["latestReadyRevision"] = revision
    if url:
        predictor.update(url=url, address={"url": url})
    failure = None if ready else _failure(pods)
    model_status: dict = {
        "transitionStatus": "UpToDate" if ready else ("BlockedByFailedLoad" if failure else "InProgress"),
        "states": {
            "activeModelState": "Loaded" if ready else "Pending",
            "targetModelState": "FailedToLoad" if failure else "Loaded",
        },
    }
    if failure:
        model_status["lastFailureInfo"] = failure
    status: dict = {
        "observedGeneration": isvc["metadata"].get("generation", 1),
        "deploymentMode": "RawDeployment",
        "conditions": [
            objects.condition(
                "IngressReady",
                ingress_ready,
                "" if ingress_ready else "ServiceNotReady",
                "" if ingress_ready else f"nothing serves {cluster_ip or '(none)'}:{port} yet",
                previous=previous,
            ),
            objects.condition(
                "PredictorReady",
                predictor_ready,
                "" if predictor_ready else "PredictorNotReady",
                "" if predictor_ready else f"Deployment {deployment['metadata']['name']} has no available replica yet",
                previous=previous,
            ),
            objects.condition("Ready", ready, "" if ready else "PredictorNotReady", previous=previous),
        ],
        "components": {"predictor": predictor},
        "modelStatus": model_status,
    }
    if url:
        status.update(url=url, address={"url": url})
    return status


def failed_status(isvc: dict, error: kserve.SpecError) -> dict:
    """Status of an InferenceService whose spec cannot be served."""
    previous = (isvc.get("status") or {}).get("conditions")
    return {
        "observedGeneration": isvc["metadata"].get("generation", 1),
        "conditions": [
            objects.condition("PredictorReady", False, error.reason, str(error), previous=previous),
            objects.condition("Ready", False, error.reason, str(error), previous=previous),
        ],
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": error.reason, "message": str(error)},
        },
    }
