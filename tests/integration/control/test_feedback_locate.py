"""`mlkube feedback` finds a deployment's captured traffic through the operator's Kubernetes client."""

from __future__ import annotations

import json

import pytest

from mlkube import feedback as labeling

PROJECT = {
    "goal": {"description": "x", "type": "Process"},
    "problem": {"task": "classification", "target": "species", "primaryMetric": "f1"},
    "data": {"uri": "file:///tmp/penguins.csv"},
    "storage": {"uri": "s3://models/penguins", "endpoint": "http://minio:9000"},
}


def apply(kubectl, namespace: str, kind: str, name: str, spec: dict) -> None:
    manifest = {"apiVersion": "mlkube.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def test_locate_reads_the_storage_of_the_deployments_project(apiserver, crds, kubectl, namespace):
    apply(kubectl, namespace, "MLProject", "penguins", PROJECT)
    apply(kubectl, namespace, "ModelDeployment", "prod", {"projectRef": "penguins", "model": {"track": "champion"}})
    apply(kubectl, namespace, "ModelDeployment", "orphan", {"projectRef": "gone", "model": {"track": "champion"}})

    found = labeling.locate("prod", namespace, kubeconfig=apiserver.kubeconfig)
    assert found == labeling.Traffic(
        storage="s3://models/penguins", namespace=namespace, deployment="prod", endpoint="http://minio:9000"
    )
    with pytest.raises(labeling.LabelingError, match=f"ModelDeployment {namespace}/missing not found"):
        labeling.locate("missing", namespace, kubeconfig=apiserver.kubeconfig)
    with pytest.raises(
        labeling.LabelingError, match=f"MLProject {namespace}/gone of ModelDeployment {namespace}/orphan not found"
    ):
        labeling.locate("orphan", namespace, kubeconfig=apiserver.kubeconfig)
