"""What a ModelDeployment becomes: one KServe InferenceService per served version, and a router.

The router is a Deployment + Service + ConfigMap (its routing table) per ModelDeployment, with
a ServiceAccount allowed to read ConfigMaps in its namespace (it watches its own table). The
table is the typed contract ``api.routing.RoutingTable``, which the router parses back.
"""

from __future__ import annotations

import json
from typing import Any

from mlkube.api import artifact, deployment, rolloutstatus, routing
from mlkube.api import scaling as scaling_api
from mlkube.control.manifests import meta

SERVING_RUNTIME = "mlkube-sklearn"
MODEL_FORMAT = "mlkube"
ROUTER_SERVICE_ACCOUNT = "mlkube-router"
STORAGE_SERVICE_ACCOUNT = "mlkube-model"
ROUTER_PORT = 8080
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
ROUTES_KEY = routing.ROUTES_KEY
VERSION_LABEL = "mlkube.io/model-version"
BATCHING_ENV = "MLKUBE_BATCHING"  # read by the model server: spec.serving.batching as JSON


def isvc_name(mdep_name: str, version: int) -> str:
    """The InferenceService of one version; also its KServe model name."""
    return meta.child_name(mdep_name, f"v{version}")


def router_name(mdep_name: str) -> str:
    return meta.child_name(mdep_name, "router")


def inference_service(
    mdep: dict[str, Any],
    spec: deployment.ModelDeploymentSpec,
    *,
    version: int,
    storage_uri: str,
    digest: str | None = None,
    storage_account: str | None = None,
) -> dict[str, Any]:
    """The InferenceService serving ``version`` with our ServingRuntime. ``digest``: the registry's
    digest of the version, pinned for its loaders (``api.artifact``: an annotation for the storage
    initializer, ``MLKUBE_MODEL_DIGEST`` for the model server); ``spec.serving.batching``, when not
    the defaults, travels as ``MLKUBE_BATCHING``. ``storage_account``: the
    ServiceAccount whose Secret gives KServe's storage initializer the S3 credentials. The operator
    always passes ``digest``; without one the loaders check the version against its own manifest only."""
    model: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMAT, "version": "1"},
        "runtime": SERVING_RUNTIME,
        "storageUri": storage_uri,
    }
    env = [{"name": artifact.DIGEST_ENV, "value": digest}] if digest else []
    post = spec.postprocessing.wire()
    if post:
        env.append({"name": "MLKUBE_POSTPROCESSING", "value": json.dumps(post, sort_keys=True)})
    if spec.serving.batching != scaling_api.Batching():  # the defaults are the model server's own
        env.append({"name": BATCHING_ENV, "value": json.dumps(spec.serving.batching.wire(), sort_keys=True)})
    if env:
        model["env"] = env
    if spec.serving.resources:
        model["resources"] = spec.serving.resources.wire()
    labels = {**meta.labels(mdep, project=spec.project_ref, component="predictor"), VERSION_LABEL: str(version)}
    scaling, annotations = _predictor_scaling(spec.serving)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": isvc_name(mdep["metadata"]["name"], version),
            "namespace": mdep["metadata"]["namespace"],
            "labels": labels,
            "annotations": {
                "serving.kserve.io/deploymentMode": spec.serving.deployment_mode,
                **annotations,
                **({artifact.DIGEST_ANNOTATION: digest} if digest else {}),
            },
            "ownerReferences": [meta.owner_reference(mdep)],
        },
        "spec": {
            "predictor": {
                **scaling,
                "model": model,
                **({"serviceAccountName": storage_account} if storage_account else {}),
            }
        },
    }


def _predictor_scaling(serving: scaling_api.Serving) -> tuple[dict[str, Any], dict[str, str]]:
    """The predictor's replica fields and the InferenceService's autoscaler annotation, as KServe
    reads them: a fixed count (min = max = ``replicas``), or ``autoscaling``'s range with
    ``scaleMetric``/``scaleTarget`` (KServe's HPA in RawDeployment, Knative's autoscaler in
    Serverless), or for KEDA the ``autoScaling.metrics`` block KServe turns into a ScaledObject."""
    scaling = serving.autoscaling
    if scaling is None:
        return {"minReplicas": serving.replicas, "maxReplicas": max(serving.replicas, 1)}, {}
    bounds = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
    if serving.deployment_mode == "RawDeployment" and scaling.autoscaler == "keda":
        target = {"type": "Utilization", "averageUtilization": scaling.target}
        metrics = [{"type": "Resource", "resource": {"name": scaling.metric, "target": target}}]
        return {**bounds, "autoScaling": {"metrics": metrics}}, {AUTOSCALER_CLASS: "keda"}
    annotations = {AUTOSCALER_CLASS: "hpa"} if serving.deployment_mode == "RawDeployment" else {}
    return {**bounds, "scaleMetric": scaling.metric, "scaleTarget": scaling.target}, annotations


def storage_account(namespace: str, secret: str) -> dict[str, Any]:
    """The ServiceAccount KServe's storage initializer reads S3 credentials through (KServe's
    convention: the Secret carries the serving.kserve.io/s3-* annotations, see docs/cluster.md)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": STORAGE_SERVICE_ACCOUNT, "namespace": namespace, "labels": {meta.MANAGED_BY: "mlkube"}},
        "secrets": [{"name": secret}],
    }


def routing_table(
    mdep: dict[str, Any],
    spec: deployment.ModelDeploymentSpec,
    *,
    traffic: list[rolloutstatus.TrafficEntry],
    backends: dict[int, str],
    capture_uri: str,
    capture_endpoint: str | None,
    generation: int,
    scored: list[int] | None = None,
) -> routing.RoutingTable:
    """The router's table for a traffic table and the versions' addresses (``backends``);
    ``scored``: the versions whose served probabilities the router accumulates (none: no ``scores``).

    ``traffic`` lists only versions in ``backends``. Raises ``pydantic.ValidationError`` when the
    table would be one the router refuses (no weight above 0, a canary compared with no stable).
    """
    name = mdep["metadata"]["name"]
    live = [t for t in traffic if t.role in ("stable", "canary", "b")]
    shadow = next((t for t in traffic if t.role == "shadow"), None)
    preview = next((t for t in traffic if t.role == "preview"), None)
    canary = next((t for t in traffic if t.role == "canary" and t.percent > 0), None)
    sticky = spec.strategy.ab_test.sticky_header if spec.strategy.type == "ABTest" else None
    return routing.RoutingTable(
        deployment=name,
        namespace=mdep["metadata"]["namespace"],
        project=spec.project_ref,
        generation=generation,
        backends={v: routing.Backend(url=url, model=isvc_name(name, v)) for v, url in sorted(backends.items())},
        split=[routing.Target(version=t.version, weight=t.percent, role="canary" if t.role == "b" else t.role) for t in live],
        sticky=routing.Sticky(header=sticky) if sticky else None,
        shadow=routing.Mirror(version=shadow.version, percent=shadow.percent) if shadow else None,
        compare=routing.Mirror(version=canary.version, percent=100) if canary else None,
        preview=routing.Preview(version=preview.version) if preview else None,
        capture=routing.Capture(
            enabled=spec.logging.enabled, sample_rate=spec.logging.sample_rate, uri=capture_uri, endpoint=capture_endpoint
        ),
        scores=routing.Scores(versions=scored) if scored else None,
    )


def router_config_map(mdep: dict[str, Any], spec: deployment.ModelDeploymentSpec, table: routing.RoutingTable) -> dict[str, Any]:
    """The ConfigMap the router watches: its table under ``routes.json``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(mdep, spec, router_name(mdep["metadata"]["name"])),
        "data": {ROUTES_KEY: table.document()},
    }


FEEDBACK_TOKEN_DIR = "/var/run/secrets/mlkube/feedback"


def router_deployment(
    mdep: dict[str, Any], spec: deployment.ModelDeploymentSpec, *, image: str, secret: str | None
) -> dict[str, Any]:
    """The router Deployment: ``spec.router.replicas`` replicas watching its ConfigMap (no replica
    count when a HorizontalPodAutoscaler owns it, so applying the Deployment never undoes a scale)."""
    name = router_name(mdep["metadata"]["name"])
    namespace = mdep["metadata"]["namespace"]
    selector = router_selector(mdep["metadata"]["name"])
    env = meta.storage_env(secret)
    container = {
        "name": "router",
        "image": image,
        "command": ["python", "-m", "mlkube.serving.router", "--config-map", f"{namespace}/{name}", "--port", str(ROUTER_PORT)],
        "ports": [{"name": "http", "containerPort": ROUTER_PORT}],
        # Ready once it holds a routing table (before, every prediction would be a 503).
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": ROUTER_PORT}, "periodSeconds": 1},
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": ROUTER_PORT},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": meta.restricted(readOnlyRootFilesystem=True),
    }
    if env:
        container["env"] = env
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    token = spec.feedback.token_secret_ref
    if token is not None:
        # A mounted Secret (not an env var) so that a rotated token reaches the running router.
        container["command"] += ["--feedback-token-file", f"{FEEDBACK_TOKEN_DIR}/{token.key}"]
        container["volumeMounts"].append({"name": "feedback-token", "mountPath": FEEDBACK_TOKEN_DIR, "readOnly": True})
        volumes.append(
            {"name": "feedback-token", "secret": {"secretName": token.name, "items": [{"key": token.key, "path": token.key}]}}
        )
    metadata = _metadata(mdep, spec, name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            **({} if spec.router.autoscaled else {"replicas": spec.router.replicas}),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**metadata["labels"], **selector}},
                "spec": {
                    "serviceAccountName": ROUTER_SERVICE_ACCOUNT,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def router_autoscaler(mdep: dict[str, Any], spec: deployment.ModelDeploymentSpec) -> dict[str, Any]:
    """The autoscaling/v2 HorizontalPodAutoscaler scaling the router Deployment between
    ``router.replicas`` and ``router.maxReplicas`` on average CPU utilization."""
    name = router_name(mdep["metadata"]["name"])
    target = {"type": "Utilization", "averageUtilization": spec.router.target_cpu_utilization}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(mdep, spec, name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": spec.router.replicas,
            "maxReplicas": spec.router.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def router_selector(mdep_name: str) -> dict[str, str]:
    """The labels of a deployment's router pods."""
    return {"mlkube.io/router": mdep_name}


def router_service(mdep: dict[str, Any], spec: deployment.ModelDeploymentSpec) -> dict[str, Any]:
    name = router_name(mdep["metadata"]["name"])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(mdep, spec, name),
        "spec": {
            "selector": router_selector(mdep["metadata"]["name"]),
            # 8080, not 80: on one machine an unprivileged user cannot listen below 1024.
            "ports": [{"name": "http", "port": ROUTER_PORT, "targetPort": ROUTER_PORT}],
        },
    }


def router_access(namespace: str) -> list[dict[str, Any]]:
    """The routers' ServiceAccount, and a Role letting it read (and watch) ConfigMaps, bound to it."""
    labels = {meta.MANAGED_BY: "mlkube"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": ROUTER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": ROUTER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": ROUTER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROUTER_SERVICE_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": ROUTER_SERVICE_ACCOUNT, "namespace": namespace}],
        },
    ]


def _metadata(mdep: dict[str, Any], spec: deployment.ModelDeploymentSpec, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": mdep["metadata"]["namespace"],
        "labels": meta.labels(mdep, project=spec.project_ref, component="router"),
        "ownerReferences": [meta.owner_reference(mdep)],
    }
