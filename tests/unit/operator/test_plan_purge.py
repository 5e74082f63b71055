"""The deletion of a retired ModelVersion's artifacts, pure: no Job before the grace period, one
purge Job after it (in the version's namespace, token-less, the tenant's credentials by reference),
what its success and failure do to the status and Events, and never for a protected version."""

import dataclasses
import datetime

from test_plan_project import NOW, mlp, ready
from test_plan_registry_objects import deployment_serving, model_version

from mlkube.control.plans import modelversion as modelversion_plan
from mlkube.control.plans import plan as plans
from mlkube.control.policy import purge as purge_policy

RETIRED_AT = "2026-11-24T09:00:00Z"  # NOW is 10:00:30: the 1h grace period has passed 30 s ago
URI = "s3://bucket/churn/runs/r1-0a1b2c3d/"
STORAGE = {"uri": "s3://bucket/churn", "credentialsSecret": "churn-s3", "endpoint": "http://minio.storage:9000"}
JOB = plans.ObjectRef("batch/v1", "Job", "churn-v1-purge", "ml")


def project(*, champion=3, grace="1h", storage=None):
    return mlp(
        status={"championVersion": champion, "observedGeneration": 2},
        storage=storage or STORAGE,
        registry={"keep": 1, "gracePeriod": grace},
    )


def retired(*, status=None, **spec):
    mv = model_version(1, **spec, status={"phase": "Retired", "retiredAt": RETIRED_AT, **(status or {})})
    mv["metadata"]["uid"] = "0a1b2c3d-uid"
    mv["spec"]["artifactUri"] = URI
    return mv


def seen(mv, *, project_=None, deployments=(), job=None, pods=(), secret_missing=False):
    return modelversion_plan.Observed(
        project_ or project(),
        (mv, model_version(2), model_version(3)),
        tuple(deployments),
        purge_job=job,
        purge_pods=tuple(pods),
        secret_missing=secret_missing,
        image="registry.example/mlkube:1.2",
    )


def job(condition=None, *, at="2026-11-24T10:00:20Z", reason="", message=""):
    status = {"startTime": "2026-11-24T10:00:10Z"}
    if condition:
        status["conditions"] = [
            {"type": condition, "status": "True", "lastTransitionTime": at, "reason": reason, "message": message}
        ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "churn-v1-purge", "namespace": "ml"}, "status": status}


def pod(message, *, exit_code=1):
    terminated = {"exitCode": exit_code, "reason": "Error", "message": message}
    return {
        "metadata": {"name": "churn-v1-purge-x", "creationTimestamp": "2026-11-24T10:00:10Z"},
        "status": {"containerStatuses": [{"name": "purge", "state": {"terminated": terminated}}]},
    }


def stored(mv, result):
    return {**mv, "status": result.status.wire()}


def test_no_job_before_the_grace_period_then_one_purge_job_with_the_tenants_credentials_by_reference():
    mv = retired()
    early = modelversion_plan.plan(mv, seen(mv, project_=project(grace="2h")), now=NOW)
    assert early.create == () and early.delete == () and not early.status.artifacts_deleted

    due = modelversion_plan.plan(mv, seen(mv), now=NOW)
    assert due.events == () and due.delete == ()
    assert [a["kind"] for a in due.apply] == ["ServiceAccount"] and due.apply[0]["metadata"]["name"] == "mlkube-trainer"
    (purge_job,) = due.create
    assert purge_job["metadata"] == {
        "name": "churn-v1-purge",
        "namespace": "ml",
        "labels": {
            "app.kubernetes.io/managed-by": "mlkube",
            "mlkube.io/project": "churn",
            "mlkube.io/owner-kind": "modelversion",
            "mlkube.io/owner-name": "churn-v1",
            "app.kubernetes.io/component": "purge",
        },
        "ownerReferences": [
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "ModelVersion",
                "name": "churn-v1",
                "uid": "0a1b2c3d-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    pod_spec = purge_job["spec"]["template"]["spec"]
    assert (pod_spec["serviceAccountName"], pod_spec["automountServiceAccountToken"], pod_spec["restartPolicy"]) == (
        "mlkube-trainer",
        False,
        "Never",
    )
    (container,) = pod_spec["containers"]
    assert container["image"] == "registry.example/mlkube:1.2"
    assert container["command"] == ["python", "-m", "mlkube.purge"]
    assert container["args"] == [URI, "--storage", "s3://bucket/churn", "--endpoint", "http://minio.storage:9000"]
    assert container["env"] == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "churn-s3", "key": key}}}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ]
    assert container["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]
    assert purge_job["spec"]["backoffLimit"] == 0 and purge_job["spec"]["activeDeadlineSeconds"] == 600


def test_without_a_secret_the_pods_identity_is_used_only_when_the_project_opted_in():
    mv = retired()
    for opted_in, expected in (
        (False, [URI, "--storage", "s3://bucket/churn"]),
        (True, [URI, "--storage", "s3://bucket/churn", "--default-credentials"]),
    ):
        storage = {"uri": "s3://bucket/churn", "useDefaultCredentials": opted_in}
        (purge_job,) = modelversion_plan.plan(mv, seen(mv, project_=project(storage=storage)), now=NOW).create
        container = purge_job["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == expected and container["env"] == []


def test_a_running_job_is_left_to_finish_and_not_created_again():
    mv = retired()
    result = modelversion_plan.plan(mv, seen(mv, job=job()), now=NOW)
    assert (result.create, result.delete, result.events) == ((), (), ())
    assert not result.status.artifacts_deleted and ready(result.status.wire())["status"] == "True"


def test_a_succeeded_job_marks_the_artifacts_deleted_with_one_event_and_is_deleted():
    mv = retired()
    done = modelversion_plan.plan(mv, seen(mv, job=job("Complete")), now=NOW)
    assert done.status.artifacts_deleted and done.status.phase == "Retired"
    assert done.delete == (JOB,) and done.create == ()
    assert done.events == (
        plans.info(
            "ArtifactsDeleted",
            f"Deleted the artifacts of version 1 at {URI} (retired at {RETIRED_AT}, registry.gracePeriod 1h)",
        ),
    )
    assert ready(done.status.wire())["message"].endswith("its artifacts are deleted")

    later = modelversion_plan.plan(stored(mv, done), seen(stored(mv, done)), now=NOW + datetime.timedelta(hours=1))
    assert (later.create, later.delete, later.events, later.status.artifacts_deleted) == ((), (), (), True)


def test_a_failed_job_is_a_warning_with_the_pods_message_and_a_new_job_tries_again_later():
    mv = retired()
    failure = "AccessDenied: s3://bucket/churn/runs/r1-0a1b2c3d/: access denied (AccessDenied); check the bucket policy"
    failed = job("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
    observed = seen(mv, job=failed, pods=[pod(f"deleting...\n{failure}\n")])
    first = modelversion_plan.plan(mv, observed, now=NOW)
    expected = f"Deleting the artifacts of version 1 at {URI} failed: mlkube.purge: {failure}; a new Job tries again 600 s after the failure"
    assert first.events == (plans.warning("ArtifactDeletionFailed", expected),)
    condition = ready(first.status.wire())
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "ArtifactDeletionFailed", expected)
    assert (first.delete, first.create, first.status.artifacts_deleted) == ((), (), False)  # kept, to be read

    retry_at = NOW + datetime.timedelta(seconds=purge_policy.RETRY_SECONDS)
    second = modelversion_plan.plan(stored(mv, first), dataclasses.replace(observed), now=retry_at)
    assert second.events == () and second.delete == (JOB,)  # reported once; then replaced
    third = modelversion_plan.plan(stored(mv, second), seen(stored(mv, second)), now=retry_at)
    assert len(third.create) == 1 and ready(third.status.wire())["status"] == "True"


def test_a_job_that_wrote_no_message_reports_the_job_controllers_reason():
    mv = retired()
    failed = job("Failed", reason="DeadlineExceeded", message="Job was active longer than specified deadline")
    result = modelversion_plan.plan(mv, seen(mv, job=failed), now=NOW)
    assert "failed: mlkube.purge: ran longer than 600 s;" in result.status.message


def pinned(version):
    return {
        "metadata": {"name": "churn-pinned", "namespace": "ml"},
        "spec": {"projectRef": "churn", "model": {"version": version}},
    }


def test_a_retired_version_that_is_protected_again_keeps_its_artifacts_and_stays_retired():
    approve = {"state": "Approved", "reason": "the audit needs it"}
    cases = {
        "it is the champion": (retired(), {"project_": project(champion=1)}),
        "it is served by churn-prod": (retired(), {"deployments": [deployment_serving(1)]}),
        "a ModelDeployment pins it (spec.model.version)": (retired(), {"deployments": [pinned(1)]}),
        "it is approved": (retired(approval=approve), {}),
        "it carries alias audit": (retired(aliases=["audit"], status={"aliases": ["audit"]}), {}),
    }
    for why, (mv, observed) in cases.items():
        result = modelversion_plan.plan(mv, seen(mv, **observed), now=NOW + datetime.timedelta(days=30))
        assert (result.create, result.status.artifacts_deleted, result.status.retired_at) == ((), False, RETIRED_AT), why
        assert ready(result.status.wire())["message"].endswith(f"; its artifacts are kept: {why}")
        # A purge Job already under way when the version became protected is stopped.
        running = modelversion_plan.plan(mv, seen(mv, job=job(), **observed), now=NOW)
        assert running.delete == (JOB,) and not running.status.artifacts_deleted, why


def test_no_job_for_a_version_that_is_not_retired():
    mv = model_version(1)
    mv["metadata"]["uid"] = "u"
    result = modelversion_plan.plan(mv, seen(mv, project_=project(champion=1)), now=NOW + datetime.timedelta(days=30))
    assert result.create == () and result.status.retired_at is None


def test_artifacts_outside_the_projects_runs_are_never_deleted_and_the_version_says_why():
    mv = retired()
    mv["spec"]["artifactUri"] = "s3://bucket/elsewhere/r1/"  # e.g. the project's storage moved since
    result = modelversion_plan.plan(mv, seen(mv), now=NOW)
    message = (
        "The artifacts of version 1 at s3://bucket/elsewhere/r1/ are not inside the project's s3://bucket/churn/runs/ "
        "(spec.storage.uri): they are not deleted; remove them by hand if nothing else needs them"
    )
    assert result.create == () and result.events == (plans.warning("ArtifactsOutsideStorage", message),)
    assert ready(result.status.wire())["reason"] == "ArtifactsOutsideStorage"
    assert modelversion_plan.plan(stored(mv, result), seen(stored(mv, result)), now=NOW).events == ()


def test_the_job_waits_for_the_projects_credentials_secret():
    mv = retired()
    result = modelversion_plan.plan(mv, seen(mv, secret_missing=True), now=NOW)
    assert result.create == () and ready(result.status.wire())["reason"] == "SecretNotFound"
    assert "Secret 'churn-s3' (MLProject churn spec.storage.credentialsSecret) does not exist" in result.status.message
