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
    (created,) = plan.create_pods
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
    assert plan.create_pods == []
    assert (plan.status["active"], plan.status["ready"]) == (1, 1)


def test_success_completes_the_job():
    plan = jobs.plan(job(), [pod("Succeeded", exit_code=0)], now=NOW)
    assert conditions(plan) == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}
    assert plan.status["succeeded"] == 1 and plan.status["completionTime"]


def test_failures_are_retried_after_the_backoff_delay_then_exceed_the_limit():
    failed_now = pod("Failed", exit_code=1, finished="2026-01-01T12:00:00Z")
    assert jobs.plan(job(backoffLimit=2), [failed_now], now=NOW, retry_base=10).create_pods == []
    later = NOW + datetime.timedelta(seconds=10)
    assert jobs.plan(job(backoffLimit=2), [failed_now], now=later, retry_base=10).create_pods
    three = [pod("Failed", exit_code=1)] * 3
    plan = jobs.plan(job(backoffLimit=2), three, now=NOW)
    assert conditions(plan)["Failed"] == "BackoffLimitExceeded"
    assert plan.status["failed"] == 3 and plan.create_pods == []


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
    assert plan.status["failed"] == 0 and plan.create_pods != []


def test_suspend_deletes_active_pods_and_reports_it():
    running = pod("Running")
    plan = jobs.plan(job(suspend=True), [running], now=NOW)
    assert plan.delete_pods == [running] and plan.create_pods == []
    assert conditions(plan) == {"Suspended": "JobSuspended"}


def test_ttl_after_finished_deletes_the_job():
    finished = job(ttlSecondsAfterFinished=30)
    finished["status"] = {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T11:59:00Z"}]}
    assert jobs.plan(finished, [], now=NOW).delete_job
    finished["spec"]["ttlSecondsAfterFinished"] = 120
    assert not jobs.plan(finished, [], now=NOW).delete_job


def test_parallel_jobs_are_refused_with_a_clear_message():
    plan = jobs.plan(job(parallelism=2), [], now=NOW)
    assert conditions(plan)["Failed"] == "Unsupported" and plan.create_pods == []


def indexed_pod(index, phase, *, exit_code=None, finished="2026-01-01T11:59:59Z"):
    body = pod(phase, exit_code=exit_code, finished=finished)
    body["metadata"] = {"name": f"train-{index}-{phase.lower()}", "annotations": {jobs.INDEX_KEY: str(index)}}
    return body


def test_an_indexed_job_starts_the_lowest_missing_indexes_up_to_parallelism():
    plan = jobs.plan(job(completionMode="Indexed", completions=4, parallelism=2), [], now=NOW)
    assert [p["metadata"]["generateName"] for p in plan.create_pods] == ["train-0-", "train-1-"]
    first = plan.create_pods[0]
    assert first["metadata"]["annotations"][jobs.INDEX_KEY] == "0" and first["metadata"]["labels"][jobs.INDEX_KEY] == "0"
    assert first["spec"]["containers"][0]["env"][0] == {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
    }
    pods = [indexed_pod(0, "Succeeded", exit_code=0), indexed_pod(1, "Running")]
    plan = jobs.plan(job(completionMode="Indexed", completions=4, parallelism=2), pods, now=NOW)
    assert [p["metadata"]["generateName"] for p in plan.create_pods] == ["train-2-"]
    assert (plan.status["completedIndexes"], plan.status["succeeded"], plan.status["active"]) == ("0", 1, 1)
    assert "conditions" not in plan.status or not conditions(plan)


def test_a_failed_index_is_retried_after_the_delay_and_the_job_completes_when_every_index_has():
    spec = {"completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimit": 2}
    pods = [indexed_pod(0, "Succeeded", exit_code=0), indexed_pod(1, "Failed", exit_code=137), indexed_pod(2, "Running")]
    plan = jobs.plan(job(**spec), pods, now=NOW, retry_base=10)
    assert plan.create_pods == [] and plan.status["failed"] == 1
    later = NOW + datetime.timedelta(seconds=11)
    assert [p["metadata"]["generateName"] for p in jobs.plan(job(**spec), pods, now=later, retry_base=10).create_pods] == [
        "train-1-"
    ]
    pods = [indexed_pod(0, "Succeeded", exit_code=0), indexed_pod(1, "Failed", exit_code=137)]
    pods += [indexed_pod(1, "Succeeded", exit_code=0), indexed_pod(2, "Succeeded", exit_code=0)]
    plan = jobs.plan(job(**spec), pods, now=NOW)
    assert conditions(plan) == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}
    assert (plan.status["completedIndexes"], plan.status["succeeded"]) == ("0-2", 3)
    assert jobs.compressed({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"


def test_an_indexed_job_past_its_backoff_limit_fails_and_stops_its_shards():
    spec = {"completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimit": 0}
    running = indexed_pod(2, "Running")
    plan = jobs.plan(job(**spec), [indexed_pod(1, "Failed", exit_code=1), running], now=NOW)
    assert conditions(plan)["Failed"] == "BackoffLimitExceeded" and plan.delete_pods == [running] and plan.create_pods == []
