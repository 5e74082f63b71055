"""The BatchPrediction plan, its Job and its run state: pure and complete. What a user sees of each
pass: the Job (and its ServiceAccount), the status, the Events; a schedule's runs."""

from __future__ import annotations

import copy
import datetime
import json
import pathlib

import pytest
import yaml

from mlkube.api import artifact, kinds, scoring
from mlkube.control.manifests import batch as manifests
from mlkube.control.manifests import meta
from mlkube.control.plans import batchprediction
from mlkube.control.plans import plan as plans
from mlkube.control.policy import shards

NOW = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
STAMP = "2026-12-05T10:00:00Z"
EXAMPLES = pathlib.Path(__file__).parents[3] / "examples"
JOB = "nightly-score"
DIGEST = "sha256:" + "a" * 64


def project() -> dict:
    doc = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
    doc["metadata"].update(namespace="ml", uid="p-uid")
    doc["status"] = {"championVersion": 2}
    return doc


def version(number: int, *, f1: float = 0.95, approval: dict | None = None) -> dict:
    spec = {
        "projectRef": "penguins",
        "version": number,
        "artifactUri": f"file:///m/v{number}/",
        "digest": DIGEST,
        "trainingJob": f"run-{number}",
        "metrics": {"test": {"f1": f1, "accuracy": f1}},
    }
    if approval:
        spec["approval"] = approval
    return {"metadata": {"name": f"penguins-v{number}", "creationTimestamp": "2026-12-01T00:00:00Z"}, "spec": spec}


VERSIONS = (version(1, f1=0.5), version(2))


def bp(**spec) -> dict:
    body = {
        "projectRef": "penguins",
        "model": {"version": 2},
        "input": {"uri": "s3://data/score/", "format": "csv", "credentialsSecret": "s3-creds"},
        "output": {"uri": "s3://data/pred/", "passthrough": ["id"]},
        "parallelism": 3,
        "maxFailedRows": 0.01,
    }
    body.update(spec)
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "BatchPrediction",
        "metadata": {
            "name": "nightly",
            "namespace": "ml",
            "uid": "1a2b3c4d-0000",
            "generation": 1,
            "creationTimestamp": "2026-12-04T00:00:00Z",
        },
        "spec": body,
    }


def observed(**kw) -> batchprediction.Observed:
    defaults = {"image": "img:1", "project": project(), "versions": VERSIONS, "secrets": frozenset({"s3-creds"})}
    return batchprediction.Observed(**{**defaults, **kw})


def started(obj: dict, *, version_: int = 2) -> dict:
    """``obj`` as stored after the pass that created its Job."""
    obj = copy.deepcopy(obj)
    obj["status"] = {"phase": "Pending", "jobName": JOB, "modelVersion": version_, "outputUri": "s3://data/pred/"}
    return obj


def job(*, completed: str = "", active: int = 0, condition: tuple[str, str] | None = None) -> dict:
    status: dict = {"startTime": "2026-12-05T09:00:00Z", "active": active, "completedIndexes": completed}
    if condition:
        status["conditions"] = [
            {"type": condition[0], "status": "True", "reason": condition[1], "lastTransitionTime": "2026-12-05T09:30:00Z"}
        ]
        status["completionTime"] = "2026-12-05T09:30:00Z"
    return {
        "metadata": {"name": JOB, "namespace": "ml", "annotations": {manifests.VERSION_ANNOTATION: "2"}},
        "spec": {"backoffLimit": 3},
        "status": status,
    }


def pod(index: int, *, phase: str = "Succeeded", result: dict | None = None, code: int = 0, message: str = "") -> dict:
    if result is not None:
        message = json.dumps(result)
    state = {"terminated": {"exitCode": code, "message": message}} if phase in ("Succeeded", "Failed") else {"running": {}}
    return {
        "metadata": {
            "name": f"{JOB}-{index}-x",
            "creationTimestamp": f"2026-12-05T09:00:0{index}Z",
            "annotations": {manifests.INDEX_ANNOTATION: str(index)},
        },
        "status": {"phase": phase, "containerStatuses": [{"name": manifests.CONTAINER, "state": state}]},
    }


def result(index: int, scored: int, failed: int = 0, reasons=(), totals=None, ok=True, **kw) -> dict:
    body = {"ok": ok, "index": index, "rowsScored": scored, "rowsFailed": failed, **kw}
    body["reasons"] = [{"reason": r, "rows": n} for r, n in reasons]
    if totals is not None:
        body["totals"] = totals
    return body


def ready(plan: plans.Plan) -> dict:
    return next(c for c in plan.status.wire()["conditions"] if c["type"] == "Ready")


# -- the Job -----------------------------------------------------------------------------------


def test_the_job_is_an_indexed_job_of_restricted_token_less_shards_with_the_pinned_digest():
    plan = batchprediction.plan(bp(), observed(), now=NOW)
    (created,) = plan.create
    spec = created["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == ("Indexed", 3, 3, 3)
    assert spec["activeDeadlineSeconds"] == 6 * 3600
    assert created["metadata"]["annotations"] == {manifests.VERSION_ANNOTATION: "2"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "1a2b3c4d-0000"
    pod_spec = spec["template"]["spec"]
    assert (pod_spec["serviceAccountName"], pod_spec["automountServiceAccountToken"]) == ("mlkube-trainer", False)
    (container,) = pod_spec["containers"]
    assert container["command"] == ["python", "-m", "mlkube.batch"]
    assert container["securityContext"] == meta.RESTRICTED
    env = {e["name"]: e for e in container["env"]}
    assert env[artifact.DIGEST_ENV]["value"] == DIGEST
    assert env["AWS_ACCESS_KEY_ID"] == {
        "name": "AWS_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}},
    }
    request = scoring.ScoringRequest.model_validate_json(env[scoring.REQUEST_ENV]["value"])
    assert (request.model.version, request.model.uri, request.shards, request.max_failed_rows) == (2, "file:///m/v2/", 3, 0.01)
    assert (request.run.uid, request.run.started_at, request.output.passthrough) == ("1a2b3c4d-0000", STAMP, ["id"])
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [scoring.EXIT_INVALID_INPUT]
    assert plan.apply == (
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "mlkube-trainer", "namespace": "ml", "labels": {meta.MANAGED_BY: "mlkube"}},
            "automountServiceAccountToken": False,
        },
    )


def test_two_different_secrets_cannot_run_and_say_which():
    plan = batchprediction.plan(bp(output={"uri": "s3://data/pred/", "credentialsSecret": "other"}), observed(), now=NOW)
    assert plan.status.phase == "Failed" and plan.create == ()
    assert plan.status.message == (
        "spec.input.credentialsSecret (s3-creds), spec.output.credentialsSecret (other) differ; "
        "the scoring pods read one set of S3 credentials, so use one Secret for all"
    )
    assert [e.reason for e in plan.events] == ["InvalidSpec"]


# -- starting ------------------------------------------------------------------------------------


def test_a_run_starts_with_its_pinned_version_and_says_so_once():
    plan = batchprediction.plan(bp(), observed(), now=NOW)
    status = plan.status.wire()
    assert {k: status[k] for k in ("phase", "modelVersion", "jobName", "outputUri")} == {
        "phase": "Pending",
        "modelVersion": 2,
        "jobName": JOB,
        "outputUri": "s3://data/pred/",
    }
    assert [(e.reason, e.message) for e in plan.events] == [
        ("Started", f"Scoring s3://data/score/ with version 2 in 3 shards (Job {JOB}) into s3://data/pred/")
    ]
    again = batchprediction.plan(started(bp()), observed(job=job()), now=NOW)
    assert again.create == () and again.events == ()


def test_track_champion_records_the_champion_at_start():
    plan = batchprediction.plan(bp(model={"track": "champion"}), observed(), now=NOW)
    assert plan.status.model_version == 2
    assert plan.create[0]["metadata"]["annotations"][manifests.VERSION_ANNOTATION] == "2"
    # The champion moving later does not change the run: the Job's version is the run's.
    mlp = project()
    mlp["status"]["championVersion"] = 1
    later = batchprediction.plan(started(bp(model={"track": "champion"})), observed(project=mlp, job=job()), now=NOW)
    assert later.status.model_version == 2


def test_a_version_that_is_not_eligible_is_refused_until_approved():
    plan = batchprediction.plan(bp(model={"version": 1}), observed(), now=NOW)
    assert plan.create == () and plan.status.phase == "Pending" and plan.retry_after
    assert ready(plan)["reason"] == "VersionNotEligible"
    assert "version 1 does not meet the success criteria" in ready(plan)["message"]
    approved = (version(1, f1=0.5, approval={"state": "Approved", "reason": "a person looked"}), version(2))
    assert batchprediction.plan(bp(model={"version": 1}), observed(versions=approved), now=NOW).create


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secrets": frozenset()}, "SecretNotFound"),
        ({"project": plans.Unresolved("ProjectNotFound", "spec.projectRef: ...")}, "ProjectNotFound"),
    ],
)
def test_a_run_waits_for_what_it_references(change, reason):
    plan = batchprediction.plan(bp(), observed(**change), now=NOW)
    assert plan.create == () and ready(plan)["reason"] == reason and plan.retry_after


def test_the_drift_monitor_decides_where_a_sample_of_rows_goes():
    dmon = {"metadata": {"name": "penguins-drift", "namespace": "ml"}, "spec": {"deploymentRef": "prod", "window": {"size": 500}}}
    mdep = {"spec": {"projectRef": "penguins"}}
    spec = bp(monitor={"driftMonitorRef": "penguins-drift"})
    plan = batchprediction.plan(spec, observed(monitor=(dmon, mdep)), now=NOW)
    env = {e["name"]: e.get("value") for e in plan.create[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    capture = scoring.ScoringRequest.model_validate_json(env[scoring.REQUEST_ENV]).capture
    assert capture == scoring.Capture(
        uri="file:///tmp/mlkube-demo/models/penguins", namespace="ml", deployment="prod", project="penguins", rows=500
    )
    missing = batchprediction.plan(spec, observed(monitor=plans.Unresolved("DriftMonitorNotFound", "...")), now=NOW)
    assert missing.create == () and ready(missing)["reason"] == "DriftMonitorNotFound"
    other = batchprediction.plan(spec, observed(monitor=(dmon, {"spec": {"projectRef": "credit"}})), now=NOW)
    assert other.status.phase == "Failed" and "of project 'credit', not of 'penguins'" in other.status.message


# -- running and finishing -----------------------------------------------------------------------


def test_running_shows_shards_done_and_rows_so_far():
    pods = (pod(0, result=result(0, 400)), pod(1, phase="Running"), pod(2, phase="Running"))
    logs = {1: 'MLKUBE_PROGRESS {"rowsScored": 100, "rowsFailed": 1}\n', 2: "starting\n"}
    plan = batchprediction.plan(started(bp()), observed(job=job(completed="0", active=2), pods=pods, logs=logs), now=NOW)
    status = plan.status.wire()
    assert (status["phase"], status["shards"], status["rowsScored"], status["rowsFailed"]) == (
        "Running",
        {"done": 1, "total": 3},
        500,
        1,
    )
    assert ready(plan) | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "False",
        "reason": "Scoring",
        "message": "1 of 3 shards done",
        "observedGeneration": 1,
        "lastTransitionTime": None,
    }


def test_a_completed_run_sums_the_shards_and_the_committing_totals_win():
    reasons = [("feature 'bill_length_mm' expects a number", 2)]
    totals = {
        "rowsScored": 1000,
        "rowsFailed": 2,
        "reasons": [{"reason": reasons[0][0], "rows": 2}],
        "manifest": "_manifest.json",
    }
    pods = (
        pod(0, result=result(0, 400, 2, reasons)),
        pod(1, result=result(1, 300)),
        pod(2, result=result(2, 300, totals=totals)),
    )
    stored = started(bp())
    stored["status"]["phase"] = "Running"
    plan = batchprediction.plan(
        stored, observed(job=job(completed="0-2", condition=("Complete", "CompletionsReached")), pods=pods), now=NOW
    )
    status = plan.status.wire()
    assert (status["phase"], status["rowsScored"], status["rowsFailed"], status["shards"]) == (
        "Succeeded",
        1000,
        2,
        {"done": 3, "total": 3},
    )
    assert status["failureReasons"] == [{"reason": "feature 'bill_length_mm' expects a number", "rows": 2}]
    assert status["completionTime"] == "2026-12-05T09:30:00Z"
    assert ready(plan)["status"] == "True"
    assert [(e.reason, e.message) for e in plan.events] == [
        ("Succeeded", "Scored 1000 rows with version 2 into s3://data/pred/; 2 rows failed validation")
    ]


def test_past_max_failed_rows_the_run_fails_naming_the_most_common_reason():
    reasons = [("feature 'bill_length_mm' expects a number", 30), ("feature 'sex' is null", 5)]
    pods = (pod(0, result=result(0, 300, 35, reasons)), pod(1, result=result(1, 300)), pod(2, result=result(2, 300)))
    stored = started(bp())
    plan = batchprediction.plan(
        stored, observed(job=job(completed="0-2", condition=("Complete", "CompletionsReached")), pods=pods), now=NOW
    )
    assert plan.status.phase == "Failed" and ready(plan)["reason"] == "TooManyFailedRows"
    assert plan.status.message.startswith(
        "35 of 935 rows (3.74%) failed validation, more than spec.maxFailedRows (1.00%); "
        "most common: feature 'bill_length_mm' expects a number (30 rows)"
    )
    assert [e.type for e in plan.events] == ["Warning"]


def test_a_shard_that_refuses_fails_the_run_with_its_words():
    refusal = {"ok": False, "index": 1, "reason": "OutputExists", "message": "output.uri: s3://data/pred/ holds ..."}
    pods = (pod(0, phase="Running"), pod(1, phase="Failed", code=2, result=refusal))
    plan = batchprediction.plan(started(bp()), observed(job=job(condition=("Failed", "PodFailurePolicy")), pods=pods), now=NOW)
    assert (plan.status.phase, ready(plan)["reason"], plan.status.message) == ("Failed", "OutputExists", refusal["message"])


def test_retries_used_up_say_what_the_last_pod_said():
    pods = (pod(0, phase="Failed", code=137, message="Killed"),)
    plan = batchprediction.plan(
        started(bp()), observed(job=job(condition=("Failed", "BackoffLimitExceeded")), pods=pods), now=NOW
    )
    assert plan.status.message == "Shard pods failed more often than spec.retries (3) allows; the last one exited 137: Killed"


def test_a_job_deleted_mid_run_fails_it_and_a_finished_run_stays_as_it_is():
    plan = batchprediction.plan(started(bp()), observed(job=None), now=NOW)
    assert (plan.status.phase, ready(plan)["reason"]) == ("Failed", "JobDeleted") and plan.create == ()
    done = started(bp())
    done["status"] = plan.status.wire()
    assert batchprediction.plan(done, observed(job=None), now=NOW) == plans.Plan(status=plan.status)


def test_completed_indexes_and_merged_reasons():
    assert shards.completed("0-2,4,7-8") == {0, 1, 2, 4, 7, 8} and shards.completed("") == set()
    merged = scoring.merged(
        [[scoring.Reason(reason="b", rows=2)], [scoring.Reason(reason="a", rows=2), scoring.Reason(reason="b", rows=1)]]
    )
    assert [(r.reason, r.rows) for r in merged] == [("b", 3), ("a", 2)]


# -- schedules -----------------------------------------------------------------------------------


def scheduled(**status) -> dict:
    obj = bp(
        schedule="0 2 * * *",
        input={"uri": "s3://data/score/{date}/", "format": "csv"},
        output={"uri": "s3://data/pred/{date}/"},
        successfulRunsHistoryLimit=1,
    )
    obj["status"] = status
    return obj


def run(name: str, phase: str | None) -> dict:
    return {"metadata": {"name": name, "namespace": "ml"}, "status": {"phase": phase} if phase else {}}


def test_a_due_tick_creates_one_run_named_after_it_with_the_date_in_its_uris():
    plan = batchprediction.plan(scheduled(lastScheduleTime="2026-12-04T02:00:00Z"), observed(project=None), now=NOW)
    (created,) = plan.create
    assert created["metadata"]["name"] == "nightly-sched-202612050200"
    assert created["metadata"]["labels"][manifests.SCHEDULE_LABEL] == "nightly"
    assert created["metadata"]["ownerReferences"][0]["name"] == "nightly"
    assert created["spec"]["input"]["uri"] == "s3://data/score/2026-12-05/"
    assert created["spec"]["output"]["uri"] == "s3://data/pred/2026-12-05/"
    assert "schedule" not in created["spec"] and "successfulRunsHistoryLimit" not in created["spec"]
    kinds.BATCHPREDICTION.parse_spec(created["spec"])
    status = plan.status.wire()
    assert (status["lastScheduleTime"], status["nextScheduleTime"], status["lastRun"], status["phase"]) == (
        "2026-12-05T02:00:00Z",
        "2026-12-06T02:00:00Z",
        "nightly-sched-202612050200",
        "Pending",
    )
    assert [e.reason for e in plan.events] == ["RunCreated"]
    quiet = batchprediction.plan(scheduled(lastScheduleTime="2026-12-05T02:00:00Z"), observed(project=None), now=NOW)
    assert quiet.create == () and quiet.events == ()


def test_a_schedule_mirrors_its_latest_run_and_prunes_beyond_the_history_limits():
    runs = (
        run("nightly-sched-202612020200", "Succeeded"),
        run("nightly-sched-202612030200", "Failed"),
        run("nightly-sched-202612040200", "Succeeded"),
    )
    runs[2]["status"].update(rowsScored=1000, modelVersion=2)
    plan = batchprediction.plan(scheduled(lastScheduleTime="2026-12-05T02:00:00Z"), observed(project=None, runs=runs), now=NOW)
    assert [ref.name for ref in plan.delete] == ["nightly-sched-202612020200"]
    status = plan.status.wire()
    assert (status["lastRun"], status["phase"], status["rowsScored"]) == ("nightly-sched-202612040200", "Succeeded", 1000)


def test_a_queued_run_waits_suspended_in_the_projects_queue_unless_it_names_its_own():
    owned = observed(project={**project(), "spec": {**project()["spec"], "queueName": "batch-low"}})
    [created] = batchprediction.plan(bp(), owned, now=NOW).create
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "batch-low" and created["spec"]["suspend"]
    [created] = batchprediction.plan(bp(queueName="nightly"), owned, now=NOW).create
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "nightly"

    waiting = {**job(), "metadata": created["metadata"], "spec": created["spec"], "status": {}}
    plan = batchprediction.plan(started(bp(queueName="nightly")), observed(job=waiting), now=NOW)
    assert plan.status.phase == "Pending" and ready(plan)["reason"] == "Queued"
    assert "Waiting for Kueue to admit the Job in LocalQueue 'nightly'" in ready(plan)["message"]
