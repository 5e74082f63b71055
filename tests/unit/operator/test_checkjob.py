"""Reading a drift-check Job: running, its result from the termination message, or why there is none."""

import json

import pytest

from mlkube.control.policy import checkjob

RESULT = {"phase": "Healthy", "samples": 300, "summary": "No drift.", "datasetDrift": False, "driftShare": 0.0}


def job(condition=None, reason=""):
    status = {"startTime": "2026-11-24T12:00:00Z", "active": 0 if condition else 1}
    if condition:
        status["completionTime"] = "2026-11-24T12:00:07Z" if condition == "Complete" else None
        status["conditions"] = [
            {"type": condition, "status": "True", "reason": reason, "message": "m", "lastTransitionTime": "2026-11-24T12:00:08Z"}
        ]
    return {"metadata": {"name": "m-check-1", "annotations": {"mlkube.io/check-time": "2026-11-24T12:00:00Z"}}, "status": status}


def pod(message, created="1"):
    terminated = {"exitCode": 0, "message": message}
    return {
        "metadata": {"creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "driftcheck", "state": {"terminated": terminated}}]},
    }


def test_a_job_that_has_not_finished_is_running_whatever_its_pods_say():
    assert checkjob.state(job(), [pod(json.dumps(RESULT))]) == checkjob.CheckState("Running")


def test_a_complete_job_answers_with_the_result_in_its_termination_message_and_the_time_of_its_check():
    state = checkjob.state(job("Complete"), [pod(json.dumps(RESULT))])
    assert state.phase == "Succeeded" and state.result.samples == 300 and state.checked_at == "2026-11-24T12:00:00Z"


@pytest.mark.parametrize(
    ("condition", "reason", "message", "expected"),
    [
        (
            "Failed",
            "BackoffLimitExceeded",
            json.dumps({"error": "IntegrityError: v1: digest mismatch"}),
            "mlkube.driftcheck: IntegrityError: v1: digest mismatch",
        ),
        (
            "Failed",
            "BackoffLimitExceeded",
            "Traceback (most recent call last):\n  ...\nMemoryError",
            "mlkube.driftcheck: MemoryError",
        ),
        ("Failed", "DeadlineExceeded", "", "mlkube.driftcheck: ran longer than 600 s; shrink spec.window.size"),
        (
            "Complete",
            "",
            json.dumps({"phase": "Healthy"}),
            "mlkube.driftcheck: unexpected answer: result.samples: Field required",
        ),
        ("Complete", "", "", "mlkube.driftcheck: the check wrote no answer to its termination message"),
    ],
)
def test_a_check_without_a_result_fails_with_what_went_wrong(condition, reason, message, expected):
    state = checkjob.state(job(condition, reason), [pod(message)])
    assert state.phase == "Failed" and state.result is None
    assert state.message.startswith(expected), state.message
    assert state.checked_at == "2026-11-24T12:00:00Z"
