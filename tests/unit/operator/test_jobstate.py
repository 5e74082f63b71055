"""Reading a trainer Job: phase, failure messages, results and progress."""

import json

from mlkube.control.policy import jobstate


def job(*conditions, active=0):
    return {
        "status": {
            "startTime": "s",
            "completionTime": "c",
            "active": active,
            "conditions": [{"type": t, "status": "True", "reason": r, "lastTransitionTime": "e"} for t, r in conditions],
        }
    }


def pod(message=None, phase="Succeeded", created="1"):
    state = {"terminated": {"exitCode": 0, "message": message}} if message is not None else {"running": {}}
    return {
        "metadata": {"creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": [{"name": "trainer", "state": state}]},
    }


def observe(j, pods):
    return jobstate.observe(j, pods, container="trainer", timeout="1h")


def test_no_job_is_pending():
    assert observe(None, []).phase == "Pending"


def test_running():
    assert observe(job(active=1), [pod(phase="Running")]).phase == "Running"


def test_success_reads_the_result_from_the_termination_message():
    result = {
        "ok": True,
        "artifactUri": "file:///m/",
        "digest": "sha256:x",
        "algorithm": "ridge",
        "metrics": {"validation": {"r2": 0.5}, "test": {"r2": 0.6}},
        "successCriteriaMet": True,
    }
    state = observe(job(("Complete", "")), [pod(json.dumps(result))])
    assert state.phase == "Succeeded" and state.result.digest == "sha256:x" and state.result.metrics.test == {"r2": 0.6}


def test_success_without_a_result_is_a_failure_that_names_the_contract():
    state = observe(job(("Complete", "")), [pod("")])
    assert state.phase == "Failed" and "trainer contract" in state.message


def test_failure_carries_the_trainers_message_not_a_traceback():
    result = {"ok": False, "reason": "DataError", "message": "data.uri: column 'churned' (problem.target) is missing"}
    state = observe(job(("Failed", "PodFailurePolicy")), [pod(json.dumps(result), phase="Failed")])
    assert (state.phase, state.reason) == ("Failed", "DataError") and state.message.startswith("data.uri")
    crashed = observe(job(("Failed", "BackoffLimitExceeded")), [pod("Traceback...\n  File x\nMemoryError: boom", phase="Failed")])
    assert crashed.message == "The trainer failed: MemoryError: boom"


def killed(exit_code, reason="Error"):
    tail = 'MLKUBE_PROGRESS {"stage": "tuning", "trialsCompleted": 0, "trialsTotal": 4}'
    terminated = {"exitCode": exit_code, "reason": reason, "message": tail}
    return {
        "metadata": {"creationTimestamp": "1"},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]},
    }


def test_a_killed_trainer_says_it_was_killed_and_that_the_retries_are_used_up():
    failed = {**job(("Failed", "BackoffLimitExceeded")), "spec": {"backoffLimit": 0}}
    failed["status"]["conditions"][0]["message"] = "Job has reached the specified backoff limit"
    state = observe(failed, [killed(137)])
    assert state.message == (
        "The trainer was killed by signal 9 (SIGKILL, exit code 137) and spec.retries (0) is used up: "
        "Job has reached the specified backoff limit"
    )
    oom = observe(failed, [killed(137, reason="OOMKilled")]).message
    assert oom.startswith("The trainer ran out of memory (OOMKilled, exit code 137) and spec.retries (0) is used up")
    assert "spec.resources.limits.memory" in oom


def test_progress_lines_are_never_the_failure_message():
    state = observe(job(("Failed", "BackoffLimitExceeded")), [killed(1)])
    assert "MLKUBE_PROGRESS" not in state.message


def test_deadline_says_what_to_change():
    state = observe(job(("Failed", "DeadlineExceeded")), [])
    assert state.reason == "DeadlineExceeded" and "spec.timeout (1h)" in state.message


def test_progress_takes_the_last_progress_line():
    log = 'x\nMLKUBE_PROGRESS {"trialsCompleted": 1, "trialsTotal": 8}\nnoise\nMLKUBE_PROGRESS {"trialsCompleted": 3, "trialsTotal": 8, "bestScore": 0.91234567, "stage": "tuning"}\n'
    assert jobstate.progress(log).wire() == {
        "trialsCompleted": 3,
        "trialsTotal": 8,
        "summary": "3/8",
        "bestScore": 0.912346,
        "stage": "tuning",
    }
    assert jobstate.progress("nothing") is None


def test_later_stages_keep_the_trial_counts():
    log = (
        'MLKUBE_PROGRESS {"trialsCompleted": 8, "trialsTotal": 8, "bestScore": 0.9, "stage": "tuning"}\n'
        'MLKUBE_PROGRESS {"trialsCompleted": 0, "trialsTotal": 0, "stage": "writing"}\n'
    )
    assert jobstate.progress(log).wire() == {
        "trialsCompleted": 8,
        "trialsTotal": 8,
        "summary": "8/8",
        "bestScore": 0.9,
        "stage": "writing",
    }


def test_a_result_outside_the_contract_is_named():
    state = observe(job(("Complete", "")), [pod(json.dumps({"ok": True, "metrics": {"test": "high"}}))])
    assert state.reason == "InvalidResult" and "metrics.test" in state.message


def test_a_job_has_started_once_the_job_controller_reports_on_it():
    assert not jobstate.has_started(None) and not jobstate.has_started({"status": {}})
    assert jobstate.has_started({"status": {"startTime": "s"}}) and jobstate.has_started(job(("Failed", "x")))


def test_the_newest_pod_is_the_one_created_last():
    pods = [pod(created="2"), pod(created="3"), pod(created="1")]
    assert jobstate.newest(pods)["metadata"]["creationTimestamp"] == "3" and jobstate.newest([]) is None


def trial_pod(index, message, created="1"):
    p = pod(message, created=created)
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    return p


def test_trial_pods_report_through_index_0():
    result = {"ok": True, "artifactUri": "file:///m/", "digest": "sha256:x", "algorithm": "ridge", "successCriteriaMet": True}
    worker = {"ok": True, "worker": 1, "trials": 4}
    pods = [trial_pod(0, json.dumps(result), created="1"), trial_pod(1, json.dumps(worker), created="2")]
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in jobstate.leaders(pods)] == ["0"]
    state = observe(job(("Complete", "")), pods)
    assert state.phase == "Succeeded" and state.result.digest == "sha256:x"
    assert jobstate.leaders([pod()]) != []  # a plain Job's pod leads


def test_progress_carries_the_workers_and_the_eta():
    log = 'MLKUBE_PROGRESS {"trialsCompleted": 37, "trialsTotal": 60, "bestScore": 0.87, "workers": 4, "etaSeconds": 120, "stage": "tuning"}\n'
    wire = jobstate.progress(log).wire()
    assert wire["workers"] == 4 and wire["etaSeconds"] == 120 and wire["summary"] == "37/60"
