"""The TrainingJob reconciler on a real API server, one pass at a time: the trainers'
ServiceAccount deleted behind the operator's back comes back on the next pass, JobCreated is
posted once when the pass that created the Job lost its status write, and an invalid spec fails
the run with a message naming the field."""

from __future__ import annotations

import pytest
from control_helpers import Interrupted, events_of, project_manifest

from mlkube.clients import k8s
from mlkube.control.manifests import training
from mlkube.control.reconcile import execute
from mlkube.control.reconcile import trainingjob as trainingjob_reconcile

IMAGE = "img:1"


def _run(namespace: str, **spec) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "run", "namespace": namespace},
        "spec": {"projectRef": "p", **spec},
    }


def _status(client, loop, namespace) -> dict:
    return loop.run_until_complete(client.get(k8s.TRAININGJOBS, "run", namespace)).get("status") or {}


def test_the_job_is_created_once_and_announced_once_and_the_service_account_comes_back(
    apiserver, client, loop, kubectl, namespace
):
    loop.run_until_complete(client.create(project_manifest(namespace)))
    loop.run_until_complete(client.create(_run(namespace)))
    interrupted = Interrupted(client)
    loop.run_until_complete(trainingjob_reconcile.reconcile(interrupted, "run", namespace, image=IMAGE))
    assert interrupted.conflicts == 1  # the first pass lost its status write; the second one landed

    jobs = loop.run_until_complete(client.list(k8s.JOBS, namespace))
    assert [j["metadata"]["name"] for j in jobs] == ["run-train"]
    assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    status = _status(client, loop, namespace)
    assert (status["phase"], status["jobName"], status["jobGeneration"]) == ("Pending", "run-train", 1)
    assert events_of(kubectl, namespace, "run") == [("JobCreated", "Created Job run-train")]

    account = training.TRAINER_SERVICE_ACCOUNT
    assert loop.run_until_complete(client.delete(k8s.SERVICEACCOUNTS, account, namespace))  # behind the operator's back
    loop.run_until_complete(trainingjob_reconcile.reconcile(client, "run", namespace, image=IMAGE))
    assert loop.run_until_complete(client.get(k8s.SERVICEACCOUNTS, account, namespace))["automountServiceAccountToken"] is False
    assert len(loop.run_until_complete(client.list(k8s.JOBS, namespace))) == 1
    assert events_of(kubectl, namespace, "run") == [("JobCreated", "Created Job run-train")]


def test_an_invalid_spec_fails_the_run_naming_the_field(client, loop, kubectl, namespace):
    # Each valid on its own (the API server accepts both), invalid once the template fills the run.
    template = {"preprocessing": {"split": {"validation": 0.6}}}
    loop.run_until_complete(client.create(project_manifest(namespace, training={"template": template})))
    loop.run_until_complete(client.create(_run(namespace, preprocessing={"split": {"test": 0.5}})))
    for _ in range(2):
        loop.run_until_complete(trainingjob_reconcile.reconcile(client, "run", namespace, image=IMAGE))

    status = _status(client, loop, namespace)
    assert status["phase"] == "Failed"
    assert status["message"] == "spec.preprocessing.split: test + validation must be below 1 so that rows are left for training"
    assert events_of(kubectl, namespace, "run") == [("InvalidSpec", status["message"])]
    assert loop.run_until_complete(client.list(k8s.JOBS, namespace)) == []


def test_a_missing_project_is_waited_for(client, loop, namespace):
    loop.run_until_complete(client.create(_run(namespace)))
    with pytest.raises(execute.RetryLater, match="MLProject 'p' does not exist"):
        loop.run_until_complete(trainingjob_reconcile.reconcile(client, "run", namespace, image=IMAGE))
    ready = next(c for c in _status(client, loop, namespace)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ProjectNotFound")
    assert loop.run_until_complete(client.list(k8s.JOBS, namespace)) == []


class _Reads:
    """The operator's client, recording every read it makes."""

    def __init__(self, client) -> None:
        self._client = client
        self.reads: list[tuple[str, str, str | None]] = []

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    async def get(self, resource, name, namespace=None):
        self.reads.append(("get", resource.plural, name))
        return await self._client.get(resource, name, namespace)

    async def list(self, resource, namespace=None, **kwargs):
        self.reads.append(("list", resource.plural, None))
        return await self._client.list(resource, namespace, **kwargs)


def test_a_registry_change_passes_only_over_the_named_runs_it_lists_and_lists_no_runs(client, loop, namespace):
    loop.run_until_complete(client.create(project_manifest(namespace)))
    entry = {
        "version": 1,
        "trainingJob": "listed",
        "createdAt": "2026-12-05T10:00:00Z",
        "artifactUri": "file:///models/p/1",
        "digest": "sha256:" + "0" * 64,
    }
    mlp = loop.run_until_complete(client.patch_status(k8s.MLPROJECTS, "p", namespace, {"models": [entry]}))
    for name in ("listed", "unlisted"):
        run = _run(namespace)
        run["metadata"]["name"] = name
        loop.run_until_complete(client.create(run))
        succeeded = {"phase": "Succeeded", "jobName": f"{name}-train", "observedGeneration": 1}
        loop.run_until_complete(client.patch_status(k8s.TRAININGJOBS, name, namespace, succeeded))

    reads = _Reads(client)
    loop.run_until_complete(trainingjob_reconcile.reconcile_awaiting(reads, mlp, ["listed", "unlisted", "deleted"], image=IMAGE))

    assert not [r for r in reads.reads if r[0] == "list" and r[1] == "trainingjobs"]
    assert {r[2] for r in reads.reads if r[1] == "trainingjobs"} == {"listed"}
    assert {r[2] for r in reads.reads if r[1] == "jobs"} == {"listed-train"}  # the pass ran for that run alone
    unlisted = loop.run_until_complete(client.get(k8s.TRAININGJOBS, "unlisted", namespace))
    assert unlisted["status"]["phase"] == "Succeeded"
