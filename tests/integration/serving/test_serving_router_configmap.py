"""The router follows its ConfigMap through the embedded API server with the real kubernetes client."""

from __future__ import annotations

import json
import time
import uuid

import modelfactory
from kubernetes import client as k8s
from serving_processes import CLIENT, RouterProcess, free_port, spawn

CONFIG_MAP = "churn-prod-router"


def start_router(apiserver, namespace: str, tmp_path) -> RouterProcess:
    port = free_port()
    args = ["-m", "mlkube.serving.router", "--config-map", f"{namespace}/{CONFIG_MAP}", "--port", str(port)]
    process = spawn(args, tmp_path / f"router-{port}.log", port, env={"KUBECONFIG": apiserver.kubeconfig})
    return RouterProcess(process.popen, process.url, process.log).wait_ready()


def test_router_watches_its_configmap_and_restarts_from_it(apiserver, api_client, make_table, tmp_path):
    core = k8s.CoreV1Api(api_client)
    namespace = f"serving-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    first = {**make_table(), "generation": 1}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": CONFIG_MAP}, "data": {"routes.json": json.dumps(first)}})
    router = start_router(apiserver, namespace, tmp_path)
    try:
        assert router.stats()["generation"] == 1
        body = {"instances": [modelfactory.instance(0)]}
        assert CLIENT.post(router.url + "/v1/models/churn-prod:predict", json=body).headers["x-mlkube-version"] == "1"

        second = {**make_table(split=[{"version": 2, "weight": 100, "role": "stable"}]), "generation": 2}
        core.patch_namespaced_config_map(CONFIG_MAP, namespace, {"data": {"routes.json": json.dumps(second)}})
        deadline = time.monotonic() + 10
        while router.stats()["generation"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert router.stats()["generation"] == 2
        assert CLIENT.post(router.url + "/v1/models/churn-prod:predict", json=body).headers["x-mlkube-version"] == "2"
    finally:
        router.stop()
    restarted = start_router(apiserver, namespace, tmp_path)
    try:
        assert restarted.stats()["generation"] == 2
    finally:
        restarted.stop()
