"""Everything a ModelDeployment owns, in full, as one pass wants it applied; pure.

``children`` builds, from the parsed spec, the project's storage and registry and the rollout's
outcome (the versions served, the ones the router can call, the traffic table), the storage
ServiceAccount, an InferenceService per served version, the router's access (ServiceAccount,
Role, RoleBinding), its table (ConfigMap), Deployment and Service, and its HorizontalPodAutoscaler
when ``router.maxReplicas`` asks for one; ``unwanted_autoscaler`` names that autoscaler for
deletion once it no longer does. The manifests themselves are ``manifests.serving``'s; which
versions are served is decided in ``plans.deployment`` and ``plans.deployment_rollout``.

Must not: do I/O or read the clock.
"""

from __future__ import annotations

from typing import Any

import pydantic

from mlkube.api import deployment as deployment_api
from mlkube.api import project as project_api
from mlkube.api import rolloutstatus as rolloutstatus_api
from mlkube.control.manifests import serving
from mlkube.control.plans import deployment_rollout
from mlkube.control.plans import plan as plans
from mlkube.control.policy import rollout


def children(
    obj: dict[str, Any],
    spec: deployment_api.ModelDeploymentSpec,
    *,
    storage: project_api.Storage,
    known: list[project_api.ModelEntry],
    served: list[int],
    backends: dict[int, str],
    traffic: list[rolloutstatus_api.TrafficEntry],
    image: str,
    scored: tuple[int, ...] = (),
) -> tuple[dict[str, Any], ...]:
    """Everything the deployment owns, in full: the storage ServiceAccount, an InferenceService per
    served version, the router's access, its table (only once some version can answer: the router
    keeps its current table rather than adopt one that routes nowhere; ``scored``: the versions
    whose served probabilities it accumulates) and the router itself; ``storage`` is the project's
    artifact store, ``known`` its registry (``registry.known``)."""
    namespace = obj["metadata"]["namespace"]
    registry = {m.version: m for m in known}
    secret = storage.credentials_secret
    applied: list[dict[str, Any]] = [serving.storage_account(namespace, secret)] if secret else []
    applied += [
        serving.inference_service(
            obj,
            spec,
            version=v,
            storage_uri=registry[v].artifact_uri,
            digest=registry[v].digest,
            storage_account=serving.STORAGE_SERVICE_ACCOUNT if secret else None,
        )
        for v in served
    ]
    applied += serving.router_access(namespace)
    if any(t.percent > 0 for t in traffic):
        try:
            table = serving.routing_table(
                obj,
                spec,
                traffic=traffic,
                backends=backends,
                capture_uri=storage.uri.rstrip("/"),
                capture_endpoint=storage.endpoint,
                generation=obj["metadata"].get("generation", 1),
                scored=[v for v in scored if v in backends],
            )
            applied.append(serving.router_config_map(obj, spec, table))
        except pydantic.ValidationError:
            pass  # a table the router would refuse: it keeps routing by the one it has
    applied += [serving.router_deployment(obj, spec, image=image, secret=secret), serving.router_service(obj, spec)]
    if spec.router.autoscaled:
        applied.append(serving.router_autoscaler(obj, spec))
    return tuple(applied)


def unwanted_autoscaler(
    obj: dict[str, Any], spec: deployment_api.ModelDeploymentSpec, autoscaler: dict[str, Any] | None
) -> tuple[plans.ObjectRef, ...]:
    """The router's HorizontalPodAutoscaler (``autoscaler``, as read; None: there is none) once
    ``router.maxReplicas`` no longer asks for one."""
    if autoscaler is None or spec.router.autoscaled:
        return ()
    name = autoscaler["metadata"]["name"]
    return (plans.ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", name, obj["metadata"]["namespace"]),)


def scored(spec: deployment_api.ModelDeploymentSpec, state: rollout.State) -> tuple[int, ...]:
    """The versions whose probabilities the router accumulates: the analysed one, with an
    estimatedPerformance gate."""
    version = deployment_rollout.watched(state)
    return (version,) if version is not None and spec.strategy.analysis.estimated_performance is not None else ()
