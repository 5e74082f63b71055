"""The Job controller's decisions (batch/v1 semantics for one pod at a time)."""

import datetime

from mlkube.local.runtime import jobs

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def job(**spec):
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train", "namespace": "ml", "uid": "j1"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "t"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main"}]},
            },
            **spec,
        },
        "status": {},
    }


def pod(phase, *, exit_code=None, finished="2026-01-01T11:59:59Z", ready=False):
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if exit_code is not None:
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": exit_code, "finishedAt": finished}}}]
    return {"metadata": {"name": f"train-{phase.lower()}{exit_code}", "uid": "p"}, "status": status}


def conditions(plan):
    return {c["type"]: c["reason"] for c in plan.status.get("conditions", [])}


def test_first_pass_creates_a_labelled_owned_pod_and_defaults_the_selector():
    plan = jobs.plan(job(), [], now=NOW)
    created = plan.create_pod
    assert created["metadata"]["generateName"] == "train-"
    assert created["metadata"]["labels"] == {
        "app": "t",
        "job-name": "train",
        "batch.kubernetes.io/job-name": "train",
        "controller-uid": "j1",
        "batch.kubernetes.io/controller-uid": "j1",
    }
    assert created["metadata"]["ownerReferences"][0]["uid"] == "j1"
    assert plan.selector == {"matchLabels": {"batch.kubernetes.io/controller-uid": "j1"}}
    assert plan.status["startTime"] == "2026-01-01T12:00:00Z"


def test_running_pod_is_counted_and_not_duplicated():
    plan = jobs.plan(job(selector={}), [pod("Running", ready=True)], now=NOW)
    assert plan.create_pod is None
    assert (plan.status["active"], plan.status["ready"]) == (1, 1)


def test_success_completes_the_job():
    plan = jobs.plan(job(), [pod("Succeeded", exit_code=0)], now=NOW)
    assert conditions(plan) == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}
    assert plan.status["succeeded"] == 1 and plan.status["completionTime"]


def test_failures_are_retried_after_the_backoff_delay_then_exceed_the_limit():
    failed_now = pod("Failed", exit_code=1, finished="2026-01-01T12:00:00Z")
    assert jobs.plan(job(backoffLimit=2), [failed_now], now=NOW, retry_base=10).create_pod is None
    later = NOW + datetime.timedelta(seconds=10)
    assert jobs.plan(job(backoffLimit=2), [failed_now], now=later, retry_base=10).create_pod
    three = [pod("Failed", exit_code=1)] * 3
    plan = jobs.plan(job(backoffLimit=2), three, now=NOW)
    assert conditions(plan)["Failed"] == "BackoffLimitExceeded"
    assert plan.status["failed"] == 3 and plan.create_pod is None


def test_active_deadline_fails_and_kills_the_active_pod():
    spec = job(activeDeadlineSeconds=5)
    spec["status"] = {"startTime": "2026-01-01T11:59:50Z"}
    running = pod("Running")
    plan = jobs.plan(spec, [running], now=NOW)
    assert conditions(plan)["Failed"] == "DeadlineExceeded"
    assert plan.delete_pods == [running]


def test_pod_failure_policy_fails_the_job_on_exit_code_2():
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}]}
    plan = jobs.plan(job(backoffLimit=5, podFailurePolicy=policy), [pod("Failed", exit_code=2)], now=NOW)
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "failed with exit code 2 matching FailJob rule at index 0" in failed["message"]


def test_pod_failure_policy_ignore_does_not_count():
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [137]}}]}
    plan = jobs.plan(job(backoffLimit=0, podFailurePolicy=policy), [pod("Failed", exit_code=137)], now=NOW, retry_base=0)
    assert plan.status["failed"] == 0 and plan.create_pod is not None


def test_suspend_deletes_active_pods_and_reports_it():
    running = pod("Running")
    plan = jobs.plan(job(suspend=True), [running], now=NOW)
    assert plan.delete_pods == [running] and plan.create_pod is None
    assert conditions(plan) == {"Suspended": "JobSuspended"}


def test_ttl_after_finished_deletes_the_job():
    finished = job(ttlSecondsAfterFinished=30)
    finished["status"] = {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T11:59:00Z"}]}
    assert jobs.plan(finished, [], now=NOW).delete_job
    finished["spec"]["ttlSecondsAfterFinished"] = 120
    assert not jobs.plan(finished, [], now=NOW).delete_job


def test_parallel_jobs_are_refused_with_a_clear_message():
    plan = jobs.plan(job(parallelism=2), [], now=NOW)
    assert conditions(plan)["Failed"] == "Unsupported" and plan.create_pod is None
