"""KServe's predictor rules, pure: runtime selection, templating, the predictor's objects.

Owns what KServe's controller decides for a ``serving.kserve.io/v1beta1`` InferenceService in
raw-deployment mode: which (Cluster)ServingRuntime serves ``spec.predictor.model`` (the named
``runtime``, or the highest-``priority`` auto-selectable runtime supporting the
``modelFormat`` and ``protocolVersion``, namespace runtimes before cluster ones), the runtime
container merged with the model's own fields and its ``{{.Name}}``-style placeholders filled
in, the ``storage-initializer`` init container that fetches ``storageUri`` into
``/mnt/models`` with the S3 variables KServe derives from the service account's secrets, and
the ``<isvc>-predictor`` Deployment and Service. No I/O.

One addition to KServe's rules: an InferenceService annotated with mlkube's pinned model digest
(``api.artifact.DIGEST_ANNOTATION``) hands it to the storage initializer as
``MLKUBE_MODEL_DIGEST``, which then refuses a model whose manifest does not hash to it.
"""

from __future__ import annotations

import copy
import json
import os
import re

from mlkube.api import artifact
from mlkube.local.runtime import objects

MODEL_DIR = "/mnt/models"
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.15.0"
PROVISION_VOLUME = "kserve-provision-location"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
SPEC_HASH = "serving.kserve.io/local-spec-hash"
S3_ANNOTATIONS = {  # secret annotation -> variable of the storage initializer
    "serving.kserve.io/s3-region": "AWS_REGION",
    "serving.kserve.io/s3-verifyssl": "S3_VERIFY_SSL",
    "serving.kserve.io/s3-useanoncredential": "awsAnonymousCredential",
    "serving.kserve.io/s3-cabundle": "AWS_CA_BUNDLE",
}
# The predictor shorthands KServe converts to `model` with that model format.
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "onnx", "triton", "pmml", "paddle", "huggingface")
_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:\.(Name|Namespace)|\.(Labels|Annotations)\.([\w./-]+)|"
    r"index \.(Labels|Annotations) \"([^\"]+)\")\s*\}\}"
)


class SpecError(Exception):
    """The InferenceService cannot be served as written; ``reason`` is KServe's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def model_spec(isvc: dict) -> dict | None:
    """``spec.predictor.model``, or a framework shorthand converted to it; None for a
    predictor given as plain ``containers``."""
    predictor = isvc["spec"].get("predictor") or {}
    if predictor.get("model"):
        return predictor["model"]
    for framework in FRAMEWORKS:
        if predictor.get(framework) is not None:
            return {**predictor[framework], "modelFormat": {"name": framework}}
    if predictor.get("containers"):
        return None
    raise SpecError("InvalidPredictorSpec", "spec.predictor: set model (with modelFormat and storageUri) or containers")


def _supports(runtime: dict, model: dict, *, require_auto_select: bool) -> int | None:
    """The priority with which ``runtime`` serves ``model``, or None if it cannot."""
    spec = runtime.get("spec") or {}
    if spec.get("disabled") or spec.get("multiModel"):
        return None
    protocol = model.get("protocolVersion") or "v1"
    if protocol not in (spec.get("protocolVersions") or ["v1"]):
        return None
    wanted = model.get("modelFormat") or {}
    for supported in spec.get("supportedModelFormats") or []:
        if supported.get("name") != wanted.get("name"):
            continue
        if wanted.get("version") and supported.get("version") not in (None, wanted["version"]):
            continue
        if require_auto_select and not supported.get("autoSelect"):
            continue
        return int(supported.get("priority") or 0)
    return None


def select_runtime(isvc: dict, model: dict, *, runtimes: list[dict], cluster_runtimes: list[dict]) -> dict:
    """The (Cluster)ServingRuntime that serves ``model`` (see the module docstring)."""
    name = model.get("runtime")
    if name:
        for runtime in [*runtimes, *cluster_runtimes]:
            if runtime["metadata"]["name"] == name:
                if _supports(runtime, model, require_auto_select=False) is None:
                    raise SpecError(
                        "RuntimeNotRecognized",
                        f"runtime {name!r} does not support model format "
                        f"{(model.get('modelFormat') or {}).get('name')!r} with "
                        f"protocol {model.get('protocolVersion') or 'v1'}, or is "
                        "disabled",
                    )
                return runtime
        raise SpecError("RuntimeNotRecognized", f"no ServingRuntime or ClusterServingRuntime named {name!r}")
    ranked = []
    for scope, candidates in ((0, runtimes), (1, cluster_runtimes)):
        for runtime in candidates:
            priority = _supports(runtime, model, require_auto_select=True)
            if priority is not None:
                ranked.append((-priority, scope, runtime["metadata"]["name"], runtime))
    if not ranked:
        raise SpecError(
            "NoSupportingRuntime",
            f"No runtime found to support specified framework/version: {(model.get('modelFormat') or {}).get('name')!r}",
        )
    return min(ranked, key=lambda r: r[:3])[3]


def fill_placeholders(value: object, isvc: dict) -> object:
    """``value`` with KServe's ``{{.Name}}``, ``{{.Namespace}}``, ``{{.Labels.x}}`` and
    ``{{.Annotations.x}}`` (or ``{{index .Labels "x"}}``) placeholders filled in."""
    meta = isvc["metadata"]

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return meta.get(match.group(1).lower()) or ""
        field, key = (match.group(2), match.group(3)) if match.group(2) else (match.group(4), match.group(5))
        return (meta.get(field.lower()) or {}).get(key, "")

    text = _PLACEHOLDER.sub(replace, json.dumps(value))
    return json.loads(text)


def _merged_env(base: list[dict], extra: list[dict]) -> list[dict]:
    names = {e["name"] for e in extra}
    return [e for e in base if e["name"] not in names] + list(extra)


def predictor_container(runtime: dict, model: dict, isvc: dict) -> dict:
    """The ``kserve-container``: the runtime's container with the model's fields merged
    (args appended, env overridden by name, other fields replaced)."""
    containers = (runtime.get("spec") or {}).get("containers") or []
    if not containers:
        raise SpecError("InvalidPredictorSpec", f"runtime {runtime['metadata']['name']!r} has no containers")
    container = copy.deepcopy(containers[0])
    container["name"] = "kserve-container"
    for field, value in model.items():
        if field in ("modelFormat", "runtime", "storageUri", "protocolVersion", "storage"):
            continue
        if field == "args":
            container["args"] = [*(container.get("args") or []), *value]
        elif field == "env":
            container["env"] = _merged_env(container.get("env") or [], value)
        else:
            container[field] = copy.deepcopy(value)
    return fill_placeholders(container, isvc)


def with_readiness_probe(container: dict) -> dict:
    """``container`` with a TCP readiness probe on its port when it has no probe of its own.

    KServe's default (serverless) mode has Knative probe the container port before a
    revision takes traffic; doing the same makes ``Ready`` mean the server listens.
    """
    if "readinessProbe" in container:
        return container
    return {**container, "readinessProbe": {"tcpSocket": {"port": container_port(container)}, "periodSeconds": 1}}


def s3_environment(secret: dict) -> list[dict]:
    """The variables KServe's credential builder gives the storage initializer for an S3
    secret attached to the predictor's service account."""
    name = secret["metadata"]["name"]
    annotations = secret["metadata"].get("annotations") or {}
    env = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if key in (secret.get("data") or {})
    ]
    endpoint = annotations.get("serving.kserve.io/s3-endpoint")
    if endpoint:
        use_https = annotations.get("serving.kserve.io/s3-usehttps")
        scheme = "http" if use_https == "0" else "https"
        if use_https is not None:
            env.append({"name": "S3_USE_HTTPS", "value": use_https})
        env += [{"name": "S3_ENDPOINT", "value": endpoint}, {"name": "AWS_ENDPOINT_URL", "value": f"{scheme}://{endpoint}"}]
    env += [
        {"name": variable, "value": annotations[annotation]}
        for annotation, variable in S3_ANNOTATIONS.items()
        if annotation in annotations
    ]
    return env


def is_s3_secret(secret: dict) -> bool:
    annotations = secret["metadata"].get("annotations") or {}
    return "AWS_ACCESS_KEY_ID" in (secret.get("data") or {}) or any(a.startswith("serving.kserve.io/s3-") for a in annotations)


def predictor_name(isvc: dict) -> str:
    return f"{isvc['metadata']['name']}-predictor"


def _labels(isvc: dict) -> dict[str, str]:
    return {ISVC_LABEL: isvc["metadata"]["name"], "component": "predictor", "app": f"isvc.{predictor_name(isvc)}"}


def predictor_deployment(isvc: dict, *, container: dict, storage_uri: str | None, storage_env: list[dict]) -> dict:
    """The ``<isvc>-predictor`` Deployment running ``container`` (and, for a
    ``storage_uri``, KServe's storage initializer into /mnt/models first)."""
    predictor = isvc["spec"].get("predictor") or {}
    container = copy.deepcopy(container)
    pod_spec: dict = {"containers": [container]}
    for field in (
        "serviceAccountName",
        "nodeSelector",
        "tolerations",
        "affinity",
        "terminationGracePeriodSeconds",
        "volumes",
        "imagePullSecrets",
    ):
        if field in predictor:
            pod_spec[field] = copy.deepcopy(predictor[field])
    if storage_uri:
        mount = {"name": PROVISION_VOLUME, "mountPath": MODEL_DIR}
        digest = (isvc["metadata"].get("annotations") or {}).get(artifact.DIGEST_ANNOTATION)
        pinned = [{"name": artifact.DIGEST_ENV, "value": digest}] if digest else []
        pod_spec["initContainers"] = [
            {
                "name": "storage-initializer",
                "image": STORAGE_INITIALIZER_IMAGE,
                "args": [storage_uri, MODEL_DIR],
                "env": [*storage_env, *pinned],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [mount],
            }
        ]
        container["volumeMounts"] = [*(container.get("volumeMounts") or []), {**mount, "readOnly": True}]
        pod_spec["volumes"] = [*(pod_spec.get("volumes") or []), {"name": PROVISION_VOLUME, "emptyDir": {}}]
    labels = {**(predictor.get("labels") or {}), **_labels(isvc)}
    meta = isvc["metadata"]
    spec = {
        "replicas": predictor.get("minReplicas", 1) if predictor.get("minReplicas") is not None else 1,
        "selector": {"matchLabels": {"app": labels["app"]}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"metadata": {"labels": labels, "annotations": dict(predictor.get("annotations") or {})}, "spec": pod_spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": predictor_name(isvc),
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": {SPEC_HASH: objects.template_hash(spec)},
            "ownerReferences": [objects.owner_reference(isvc)],
        },
        "spec": spec,
    }


def container_port(container: dict) -> int:
    ports = container.get("ports") or []
    return int(ports[0]["containerPort"]) if ports else 8080


def service_port() -> int:
    """The predictor Service's port: 80 as in KServe, where this user may listen on it; else 8080.

    Listening below 1024 needs root or a lowered ``net.ipv4.ip_unprivileged_port_start``; the URL
    in the InferenceService's status carries the port, and clients only ever use that URL.
    """
    if os.geteuid() == 0:
        return 80
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as handle:
            return 80 if int(handle.read()) <= 80 else 8080
    except (OSError, ValueError):
        return 8080


def service_url(cluster_ip: str, port: int) -> str:
    return f"http://{cluster_ip}" if port == 80 else f"http://{cluster_ip}:{port}"


def predictor_service(isvc: dict, *, target_port: int) -> dict:
    spec = {
        "selector": {"app": f"isvc.{predictor_name(isvc)}"},
        "ports": [{"name": "http", "port": service_port(), "targetPort": target_port, "protocol": "TCP"}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": predictor_name(isvc),
            "namespace": isvc["metadata"].get("namespace"),
            "labels": _labels(isvc),
            "annotations": {SPEC_HASH: objects.template_hash(spec)},
            "ownerReferences": [objects.owner_reference(isvc)],
        },
        "spec": spec,
    }
