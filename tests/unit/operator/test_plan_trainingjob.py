"""The TrainingJob plan: pure and complete. What a user sees of each pass: the ServiceAccount and
Job, the status, the Events."""

from __future__ import annotations

import copy
import datetime
import json
import pathlib

import pytest
import yaml

from mlkube.api import kinds
from mlkube.control.manifests import training
from mlkube.control.plans import plan as plans
from mlkube.control.plans import trainingjob

NOW = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
STAMP = "2026-12-05T10:00:00Z"
EXAMPLES = pathlib.Path(__file__).parents[3] / "examples"
JOB = "penguins-manual-1-train"
RESULT = {
    "ok": True,
    "artifactUri": "file:///m/runs/x/",
    "digest": "sha256:abc",
    "algorithm": "random_forest",
    "params": {"n_estimators": 50},
    "metrics": {"validation": {"f1": 0.9}, "test": {"f1": 0.95}},
    "successCriteriaMet": True,
}


def load(name: str) -> dict:
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    doc["metadata"].update(namespace="ml", uid="0123456789abcdef", generation=1)
    return doc


@pytest.fixture
def tj() -> dict:
    return load("trainingjob.yaml")


@pytest.fixture
def mlp() -> dict:
    return load("project.yaml")


def observed(mlp, **kw) -> trainingjob.Observed:
    return trainingjob.Observed(image="img:1", project=mlp, **kw)


def status_of(plan: plans.Plan) -> dict:
    return plan.status.wire()


def ready(status: dict) -> dict:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def job(*, started=True, active=0, condition=None, generation="1") -> dict:
    status = {"startTime": "2026-12-05T09:00:00Z", "active": active} if started else {}
    if condition:
        status["conditions"] = [
            {"type": condition[0], "status": "True", "reason": condition[1], "lastTransitionTime": "2026-12-05T09:30:00Z"}
        ]
        status["completionTime"] = "2026-12-05T09:30:00Z"
    return {
        "metadata": {"name": JOB, "namespace": "ml", "annotations": {training.GENERATION_ANNOTATION: generation}},
        "status": status,
    }


def pod(*, phase="Running", result=None) -> dict:
    state = {"terminated": {"exitCode": 0, "message": json.dumps(result)}} if result else {"running": {}}
    return {
        "metadata": {"name": f"{JOB}-x", "creationTimestamp": "2026-12-05T09:00:01Z"},
        "status": {"phase": phase, "containerStatuses": [{"name": "trainer", "state": state}]},
    }


def started(tj, phase="Pending") -> dict:
    """``tj`` as its first pass left it: the Job recorded."""
    first = trainingjob.plan(tj, observed_first(tj), now=NOW)
    return {**tj, "status": {**first.status.wire(), "phase": phase}}


def observed_first(tj) -> trainingjob.Observed:
    return observed(load("project.yaml"), deployments=({"metadata": {"name": "prod"}, "spec": {"projectRef": "penguins"}},))


def test_the_same_observations_give_the_same_plan(tj, mlp):
    seen = observed(mlp, deployments=({"metadata": {"name": "prod"}, "spec": {"projectRef": "penguins"}},))
    assert trainingjob.plan(copy.deepcopy(tj), seen, now=NOW) == trainingjob.plan(copy.deepcopy(tj), seen, now=NOW)


def test_the_first_pass_creates_the_job_once_and_applies_the_service_account(tj, mlp):
    deployments = (
        {"metadata": {"name": "prod"}, "spec": {"projectRef": "penguins"}},
        {"metadata": {"name": "other"}, "spec": {"projectRef": "elsewhere"}},
    )
    plan = trainingjob.plan(tj, observed(mlp, deployments=deployments), now=NOW)

    spec = training.effective_spec(tj["spec"], mlp["spec"]["training"]["template"])
    mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
    document = training.trainer_input(tj, spec, mlp, mlp_spec, deployments=["prod"], now=NOW)
    assert plan.create == (training.trainer_job(tj, spec, document, project_name="penguins", image="img:1", secret=None),)
    assert plan.apply == (training.trainer_service_account("ml"),)
    assert document.feedback.since == "2026-11-05T10:00:00Z" and document.feedback.deployments == ["prod"]
    status = status_of(plan)
    assert (status["phase"], status["jobName"], status["jobGeneration"]) == ("Pending", JOB, 1)
    assert ready(status) == {
        "type": "Ready",
        "status": "False",
        "reason": "JobPending",
        "message": "Waiting for the trainer pod to start",
        "lastTransitionTime": STAMP,
        "observedGeneration": 1,
    }
    assert plan.events == (plans.info("JobCreated", f"Created Job {JOB}"),)
    assert plan.retry_after is None


def test_a_running_pass_lists_every_child_and_announces_the_start_once(tj):
    tj = started(tj)
    running = observed(load("project.yaml"), job=job(active=1), pods=(pod(),))
    plan = trainingjob.plan(tj, running, now=NOW)
    assert plan.apply == (training.trainer_service_account("ml"),) and plan.create == ()
    assert status_of(plan)["phase"] == "Running" and status_of(plan)["startTime"] == "2026-12-05T09:00:00Z"
    assert plan.events == (plans.info("Started", "The trainer is running"),)
    again = trainingjob.plan({**tj, "status": status_of(plan)}, running, now=NOW)
    assert again.apply == plan.apply and again.events == () and again.status == plan.status


def test_progress_comes_from_the_log_while_running(tj):
    tj = started(tj, "Running")
    log = 'MLKUBE_PROGRESS {"trialsCompleted": 3, "trialsTotal": 8, "bestScore": 0.9, "stage": "tuning"}\n'
    plan = trainingjob.plan(tj, observed(load("project.yaml"), job=job(active=1), pods=(pod(),), log=log), now=NOW)
    assert status_of(plan)["progress"] == {
        "trialsCompleted": 3,
        "trialsTotal": 8,
        "bestScore": 0.9,
        "stage": "tuning",
        "summary": "3/8",
    }
    unread = trainingjob.plan(tj, observed(load("project.yaml"), job=job(active=1), pods=(pod(),)), now=NOW)
    assert "progress" not in status_of(unread)


def test_a_job_created_by_a_pass_whose_status_write_was_lost_is_adopted_and_announced_once(tj, mlp):
    tj["metadata"]["generation"] = 2
    plan = trainingjob.plan(tj, observed(mlp, job=job(started=False, generation="1")), now=NOW)
    assert plan.create == ()
    status = status_of(plan)
    assert (status["jobName"], status["jobGeneration"]) == (JOB, 1)
    up_to_date = next(c for c in status["conditions"] if c["type"] == "UpToDate")
    assert (up_to_date["status"], up_to_date["reason"]) == ("False", "SpecChangedAfterStart")
    assert plan.events == (plans.info("JobCreated", f"Created Job {JOB}"),)


def test_success_reports_the_result_and_waits_for_the_registry(tj):
    tj = started(tj, "Running")
    tj["status"]["progress"] = {"trialsCompleted": 6, "trialsTotal": 8, "summary": "6/8"}
    done = observed(load("project.yaml"), job=job(condition=("Complete", "")), pods=(pod(phase="Succeeded", result=RESULT),))
    plan = trainingjob.plan(tj, done, now=NOW)
    status = status_of(plan)
    assert status["phase"] == "Succeeded" and status["completionTime"] == "2026-12-05T09:30:00Z"
    assert (status["bestAlgorithm"], status["bestParams"], status["digest"]) == (
        "random_forest",
        {"n_estimators": 50},
        "sha256:abc",
    )
    assert status["metrics"] == {"validation": {"f1": 0.9}, "test": {"f1": 0.95}} and status["successCriteriaMet"] is True
    assert status["progress"]["summary"] == "8/8" and "modelVersion" not in status
    assert (ready(status)["reason"], ready(status)["status"]) == ("AwaitingRegistration", "False")
    assert plan.events == (plans.info("Succeeded", "Trained random_forest; test metrics {'f1': 0.95}"),)

    mlp = load("project.yaml")
    mlp["status"] = {
        "models": [
            {
                "version": 3,
                "trainingJob": "penguins-manual-1",
                "createdAt": STAMP,
                "artifactUri": "file:///m/runs/x/",
                "digest": "sha256:abc",
            }
        ]
    }
    awaiting = {**tj, "status": status}
    assert trainingjob.awaits_registration(awaiting, mlp) and not trainingjob.awaits_registration(tj, mlp)
    registered = trainingjob.plan(awaiting, observed(mlp, job=done.job, pods=done.pods), now=NOW)
    assert status_of(registered)["modelVersion"] == 3
    assert (
        ready(status_of(registered))["status"] == "True" and ready(status_of(registered))["message"] == "Registered as version 3"
    )
    assert registered.events == (plans.info("Registered", "Registered as version 3"),)


def test_the_trainers_lineage_lands_in_the_status(tj):
    lineage = {
        "data": [
            {"uri": "s3://data/penguins.csv", "digest": "sha256:" + "1" * 64, "rows": 344},
            {"uri": "https://example.org/islands.parquet", "digest": "sha256:" + "2" * 64, "rows": 3},
        ],
        "image": "ghcr.io/mlkube/mlkube:0.1.0",
        "mlkubeVersion": "0.1.0",
    }
    tj = started(tj, "Running")
    result = {**RESULT, "lineage": lineage}
    done = observed(load("project.yaml"), job=job(condition=("Complete", "")), pods=(pod(phase="Succeeded", result=result),))
    status = status_of(trainingjob.plan(tj, done, now=NOW))
    assert status["phase"] == "Succeeded" and status["lineage"] == lineage
    assert kinds.TRAININGJOB.parse_status(status).lineage.data[1].rows == 3


def test_a_result_without_lineage_leaves_it_unset(tj):
    tj = started(tj, "Running")
    done = observed(load("project.yaml"), job=job(condition=("Complete", "")), pods=(pod(phase="Succeeded", result=RESULT),))
    status = status_of(trainingjob.plan(tj, done, now=NOW))
    assert status["phase"] == "Succeeded" and "lineage" not in status


def test_a_failed_trainer_fails_the_run_with_its_message(tj):
    tj = started(tj, "Running")
    failure = {"ok": False, "reason": "DataError", "message": "data.uri: column 'churned' (problem.target) is missing"}
    plan = trainingjob.plan(
        tj,
        observed(
            load("project.yaml"), job=job(condition=("Failed", "PodFailurePolicy")), pods=(pod(phase="Failed", result=failure),)
        ),
        now=NOW,
    )
    assert status_of(plan)["phase"] == "Failed" and status_of(plan)["message"] == failure["message"]
    assert ready(status_of(plan))["reason"] == "DataError"
    assert plan.events == (plans.warning("Failed", failure["message"]),)


def test_a_job_deleted_mid_run_fails_the_run_and_is_not_recreated(tj):
    tj = started(tj, "Running")
    plan = trainingjob.plan(tj, observed(load("project.yaml")), now=NOW)
    assert plan.create == ()
    assert status_of(plan)["message"] == f"Job {JOB} was deleted before it finished"
    assert plan.events == (plans.warning("Failed", f"Job {JOB} was deleted before it finished"),)


def test_a_finished_run_only_keeps_its_up_to_date_condition(tj):
    tj = started(tj, "Failed")
    tj["metadata"]["generation"] = 2
    plan = trainingjob.plan(tj, observed(plans.Unresolved("ProjectNotFound", "gone")), now=NOW)
    assert (plan.apply, plan.create, plan.events, plan.retry_after) == ((), (), (), None)
    up_to_date = next(c for c in status_of(plan)["conditions"] if c["type"] == "UpToDate")
    assert up_to_date["message"].startswith("The spec changed after the Job started; the Job runs generation 1, not 2.")
    assert "observedGeneration" not in up_to_date


def test_a_missing_project_waits_with_its_reason_and_creates_nothing(tj):
    missing = plans.Unresolved("ProjectNotFound", "spec.projectRef: MLProject 'penguins' does not exist")
    plan = trainingjob.plan(tj, observed(missing), now=NOW)
    assert plan.create == () and plan.events == ()
    assert (plan.retry_after, plan.retry_reason) == (trainingjob.RETRY_SECONDS, missing.message)
    status = status_of(plan)
    assert (status["phase"], status["message"], ready(status)["reason"]) == ("Pending", missing.message, "ProjectNotFound")


def test_the_credentials_secret_must_exist_before_the_job_is_created(tj, mlp):
    mlp["spec"]["storage"]["credentialsSecret"] = "s3"
    assert trainingjob.start_reads(tj, mlp, job=None) == trainingjob.StartReads(secret="s3", deployments=True)
    waiting = trainingjob.plan(tj, observed(mlp), now=NOW)
    assert waiting.create == () and ready(status_of(waiting))["reason"] == "SecretNotFound"
    assert "Secret 's3' (credentialsSecret) does not exist in namespace 'ml'" in status_of(waiting)["message"]
    plan = trainingjob.plan(tj, observed(mlp, secrets={"s3": frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})}), now=NOW)
    env = plan.create[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})} == {"s3"}
    assert trainingjob.start_reads(started(tj), mlp, job=None) == trainingjob.StartReads()
    assert trainingjob.start_reads(tj, mlp, job=job()) == trainingjob.StartReads()


@pytest.mark.parametrize(
    "change, field",
    [
        (
            lambda tj, mlp: (
                tj["spec"]["preprocessing"].update(split={"test": 0.5}),  # each valid alone, not merged
                mlp["spec"]["training"]["template"]["preprocessing"].update(split={"validation": 0.6}),
            ),
            "spec.preprocessing.split: test + validation must be below 1",
        ),
        (
            lambda tj, mlp: (
                mlp["spec"]["storage"].update(credentialsSecret="a"),
                mlp["spec"]["data"].update(credentialsSecret="b"),
            ),
            "data.credentialsSecret (b) and spec.storage.credentialsSecret (a) differ",
        ),
    ],
)
def test_an_invalid_spec_fails_the_run_naming_the_field(tj, mlp, change, field):
    change(tj, mlp)
    plan = trainingjob.plan(tj, observed(mlp, secrets={"a": frozenset(), "b": frozenset()}), now=NOW)
    status = status_of(plan)
    assert status["phase"] == "Failed" and status["message"].startswith(field)
    assert ready(status)["reason"] == "InvalidSpec" and plan.create == () and plan.apply == ()
    assert plan.events == (plans.warning("InvalidSpec", status["message"]),)
    assert trainingjob.plan({**tj, "status": status}, observed(mlp), now=NOW).events == ()


# -- Kueue ---------------------------------------------------------------------------------------


def test_a_queued_run_is_created_suspended_in_its_queue_and_says_it_waits_for_admission(tj, mlp):
    mlp["spec"]["queueName"] = "team-a"
    tj["spec"]["queueName"] = "gpu-queue"
    [created] = trainingjob.plan(tj, observed(mlp), now=NOW).create
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue", "the run's own queue wins"
    assert created["spec"]["suspend"] is True

    del tj["spec"]["queueName"]
    [created] = trainingjob.plan(tj, observed(mlp), now=NOW).create
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a", "else the project's"

    waiting = {**created, "status": {}}
    status = status_of(trainingjob.plan(tj, observed(mlp, job=waiting), now=NOW))
    assert status["phase"] == "Pending" and ready(status)["reason"] == "Queued"
    assert "LocalQueue 'team-a'" in ready(status)["message"]

    admitted = {**created, "spec": {**created["spec"], "suspend": False}, "status": {"startTime": STAMP, "active": 1}}
    assert status_of(trainingjob.plan(tj, observed(mlp, job=admitted, pods=(pod(),)), now=NOW))["phase"] == "Running"


def test_without_a_queue_the_job_is_neither_labelled_nor_suspended(tj, mlp):
    [created] = trainingjob.plan(tj, observed(mlp), now=NOW).create
    assert "kueue.x-k8s.io/queue-name" not in created["metadata"]["labels"] and "suspend" not in created["spec"]


def test_a_queue_name_that_cannot_be_a_label_value_is_refused_naming_the_field(tj, mlp):
    tj["spec"]["queueName"] = "Team_A"
    status = status_of(trainingjob.plan(tj, observed(mlp), now=NOW))
    assert status["phase"] == "Failed" and "queueName" in ready(status)["message"]


def test_trial_pods_get_the_operators_study_database_or_are_refused_without_one(tj, mlp):
    tj["spec"]["tuning"] = {"workers": 2}
    plan = trainingjob.plan(tj, observed(mlp, study_storage="sqlite:////state/studies.db"), now=NOW)
    (job,) = plan.create
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2

    plan = trainingjob.plan(tj, observed(mlp), now=NOW)
    status = status_of(plan)
    assert plan.create == () and status["phase"] == "Failed" and ready(status)["reason"] == "InvalidSpec"
    assert "tuning.workers: 2" in status["message"] and "tuning.storage.secretRef" in status["message"]


def test_a_study_database_secret_must_exist_with_its_key_before_the_job_is_created(tj, mlp):
    tj["spec"]["tuning"] = {"workers": 2, "storage": {"secretRef": {"name": "studies", "key": "url"}}}
    assert trainingjob.start_reads(tj, mlp, job=None).study_secret == "studies"

    for secrets, problem in (({}, "does not exist in namespace 'ml'"), ({"studies": frozenset({"uri"})}, "has no key 'url'")):
        plan = trainingjob.plan(tj, observed(mlp, secrets=secrets), now=NOW)
        status = status_of(plan)
        assert plan.create == () and status["phase"] == "Pending" and ready(status)["reason"] == "SecretNotFound"
        assert status["message"].startswith("spec.tuning.storage.secretRef: Secret 'studies' " + problem)

    (job,) = trainingjob.plan(tj, observed(mlp, secrets={"studies": frozenset({"url"})}), now=NOW).create
    [env] = [e for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "MLKUBE_STUDY_STORAGE"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "studies", "key": "url"}
