"""Our KServe ClusterServingRuntime, ``mlkube-sklearn``: the model server for mlkube artifacts.

The same object ships in ``manifests/base/servingruntime.yaml`` for clusters (a test keeps the
two equal) and is installed by ``mlkube local up`` on the embedded control plane.
"""

from __future__ import annotations

from typing import Any

from mlkube.control.manifests import meta, serving


def cluster_serving_runtime(image: str = meta.IMAGE) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {
            "name": serving.SERVING_RUNTIME,
            "labels": {"app.kubernetes.io/name": "mlkube", "app.kubernetes.io/component": "model-server"},
        },
        "spec": {
            "annotations": {"prometheus.kserve.io/port": "8080", "prometheus.kserve.io/path": "/metrics"},
            "supportedModelFormats": [{"name": serving.MODEL_FORMAT, "version": "1", "autoSelect": True, "priority": 1}],
            "protocolVersions": ["v1", "v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "command": ["python", "-m", "mlkube.serving.server"],
                    "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }
