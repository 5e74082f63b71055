"""The ModelDeployment reconciler on a real API server, one pass at a time, without a runtime: the
test plays KServe (it writes the InferenceService's Ready condition and address) and the
Deployment controller (the router's availableReplicas). The router's objects and an
InferenceService deleted behind the operator's back come back on the next pass; the Deploying
Event is posted once when the pass that deployed lost its status write; a missing project is
reported as Ready=False with reason ProjectNotFound."""

from __future__ import annotations

import json
import pathlib

import pytest
from control_helpers import events_of

from mlkube.clients import k8s
from mlkube.control.manifests import serving
from mlkube.control.reconcile import deployment as deployment_reconcile
from mlkube.control.reconcile import execute
from mlkube.serving import routing

IMAGE = "img:1"
KSERVE_CRDS = pathlib.Path(__file__).parents[3] / "operator/mlkube/local/crds"


class TouchedAfterFirstRead(k8s.Client):
    """The operator's client, except that someone else labels the ModelDeployment right after the
    first pass read it: that pass's status write conflicts and the pass starts over."""

    reads = 0

    async def get(self, resource, name, namespace=None):
        obj = await super().get(resource, name, namespace)
        if resource == k8s.MODELDEPLOYMENTS:
            self.reads += 1
            if self.reads == 1:
                await self.patch(resource, name, namespace, {"metadata": {"labels": {"touched": "yes"}}})
        return obj


@pytest.fixture(scope="module")
def kserve(crds, kubectl) -> None:
    kubectl("apply", "--server-side", "-f", str(KSERVE_CRDS))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")


@pytest.fixture
def project(client, loop, namespace, kserve) -> str:
    """MLProject ``p`` with version 1 registered and champion."""
    loop.run_until_complete(
        client.create(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "MLProject",
                "metadata": {"name": "p", "namespace": namespace},
                "spec": {
                    "goal": {"description": "d", "type": "Process"},
                    "problem": {"task": "classification", "target": "y", "primaryMetric": "f1"},
                    "data": {"uri": "file:///d.csv"},
                    "storage": {"uri": "file:///s/"},
                },
            }
        )
    )
    loop.run_until_complete(
        client.patch_status(
            k8s.MLPROJECTS,
            "p",
            namespace,
            {
                "championVersion": 1,
                "versions": 1,
                "models": [
                    {
                        "version": 1,
                        "trainingJob": "run-1",
                        "createdAt": "2026-01-01T00:00:00Z",
                        "artifactUri": "file:///s/runs/run-1/",
                        "digest": "sha256:1",
                    }
                ],
            },
        )
    )
    return "p"


def _deployment(namespace: str, project: str) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "d", "namespace": namespace},
        "spec": {"projectRef": project, "model": {"track": "champion"}, "strategy": {"type": "Direct"}},
    }


def _get(client, loop, resource, name, namespace):
    return loop.run_until_complete(client.get(resource, name, namespace))


def _pass(client, loop, namespace, name="d"):
    loop.run_until_complete(deployment_reconcile.reconcile(client, name, namespace, image=IMAGE))


def _kserve_ready(client, loop, namespace):
    """What KServe would write once version 1 serves."""
    loop.run_until_complete(
        client.patch_status(
            k8s.INFERENCESERVICES,
            "d-v1",
            namespace,
            {
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "address": {"url": "http://127.1.0.250"},
            },
        )
    )
    loop.run_until_complete(
        client.patch_status(k8s.DEPLOYMENTS, "d-router", namespace, {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1})
    )


def test_deployed_once_announced_once_and_children_deleted_behind_its_back_come_back(
    apiserver, client, loop, kubectl, namespace, project
):
    loop.run_until_complete(client.create(_deployment(namespace, project)))
    touched = TouchedAfterFirstRead(k8s.Credentials.load(apiserver.kubeconfig))
    try:
        _pass(touched, loop, namespace)
    finally:
        loop.run_until_complete(touched.close())
    assert touched.reads == 2  # the first pass lost its status write; the second one, from a fresh read, landed
    status = _get(client, loop, k8s.MODELDEPLOYMENTS, "d", namespace)["status"]
    assert (status["phase"], status["stableVersion"], status["message"]) == ("Progressing", 1, "Serving version 1")
    assert events_of(kubectl, namespace, "d") == [("Deploying", "Serving version 1")]
    isvc = _get(client, loop, k8s.INFERENCESERVICES, "d-v1", namespace)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "file:///s/runs/run-1/"
    assert _get(client, loop, k8s.CONFIGMAPS, "d-router", namespace) is None  # no version answers yet

    _kserve_ready(client, loop, namespace)
    _pass(client, loop, namespace)
    status = _get(client, loop, k8s.MODELDEPLOYMENTS, "d", namespace)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == ("Healthy", "True", "Serving")
    table = routing.RoutingTable.parse(
        json.loads(_get(client, loop, k8s.CONFIGMAPS, "d-router", namespace)["data"][serving.ROUTES_KEY])
    )
    assert table.backends[1].url == "http://127.1.0.250" and [t.version for t in table.split] == [1]

    for resource in (k8s.DEPLOYMENTS, k8s.SERVICES, k8s.CONFIGMAPS):  # behind the operator's back
        assert loop.run_until_complete(client.delete(resource, "d-router", namespace))
    _pass(client, loop, namespace)
    for resource in (k8s.DEPLOYMENTS, k8s.SERVICES, k8s.CONFIGMAPS):
        assert _get(client, loop, resource, "d-router", namespace) is not None, resource.kind
    assert (
        _get(client, loop, k8s.DEPLOYMENTS, "d-router", namespace)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    )

    assert loop.run_until_complete(client.delete(k8s.INFERENCESERVICES, "d-v1", namespace))
    _pass(client, loop, namespace)
    assert _get(client, loop, k8s.INFERENCESERVICES, "d-v1", namespace) is not None
    assert events_of(kubectl, namespace, "d") == [("Deploying", "Serving version 1")]


def test_a_missing_project_is_reported_and_retried(client, loop, namespace, kserve):
    loop.run_until_complete(client.create(_deployment(namespace, "missing")))
    with pytest.raises(execute.RetryLater) as retry:
        _pass(client, loop, namespace)
    assert "MLProject 'missing' does not exist" in retry.value.message
    status = _get(client, loop, k8s.MODELDEPLOYMENTS, "d", namespace)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == ("Pending", "False", "ProjectNotFound")
    assert ready["message"] == status["message"] == retry.value.message
    assert _get(client, loop, k8s.DEPLOYMENTS, "d-router", namespace) is None
