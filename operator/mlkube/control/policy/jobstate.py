"""What a trainer Job and its pods say about a TrainingJob: phase, times, progress, result.

Pure functions over the objects the API returns; no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Sequence
from typing import Any

import pydantic

from mlkube.api import trainer, training
from mlkube.control.manifests import meta

PROGRESS_PREFIX = "MLKUBE_PROGRESS "
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclasses.dataclass(frozen=True)
class JobState:
    """The trainer Job as the TrainingJob reports it."""

    phase: str  # Pending | Running | Succeeded | Failed
    reason: str
    message: str
    start_time: str | None = None
    completion_time: str | None = None
    result: trainer.TrainerResult | None = None


def condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The Job's condition ``type_`` (Complete, Failed) when it is True."""
    return _condition(job, type_)


def _condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions", []):
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def has_started(job: dict[str, Any] | None) -> bool:
    """Whether the Job controller has picked the Job up (a start time or a condition): only then
    can it have pods worth reading."""
    status = (job or {}).get("status") or {}
    return bool(status.get("startTime") or status.get("conditions"))


def leaders(pods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that write the run's result and progress: index 0 of an Indexed Job of trial pods
    (the others only run trials), every pod of a plain Job."""
    return [p for p in pods if ((p["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION) or "0") == "0"]


def newest(pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recently created pod (the one whose log tells the current progress)."""
    return max(pods, key=_created, default=None)


def _created(pod: dict[str, Any]) -> str:
    return pod["metadata"].get("creationTimestamp", "")


def termination(pods: Sequence[dict[str, Any]], container: str) -> dict[str, Any] | None:
    """The terminated state of ``container`` in the newest pod that has one (a trainer's, a drift check's)."""
    for pod in sorted(pods, key=_created, reverse=True):
        for status in (pod.get("status") or {}).get("containerStatuses", []):
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") == container and terminated:
                return terminated
    return None


def _result(terminated: dict[str, Any] | None) -> trainer.TrainerResult | str | None:
    """The trainer's result, or why its termination message is not one (None when there is none)."""
    if not terminated or not terminated.get("message", "").lstrip().startswith("{"):
        return None  # no result, or the log tail the kubelet fell back to (FallbackToLogsOnError)
    try:
        return trainer.TrainerResult.model_validate_json(terminated["message"])
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        return f"{'.'.join(map(str, first['loc'])) or 'result'}: {first['msg']}"


def last_line(text: str) -> str:
    """The last non-blank line of ``text`` (a log tail's most telling line)."""
    return _last_line(text)


def _last_line(text: str) -> str:
    """The last line of a log tail that is not a progress line (what the trainer last said)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith(PROGRESS_PREFIX)]
    return lines[-1] if lines else ""


def failure_message(terminated: dict[str, Any] | None, failed: dict[str, Any], *, retries: int | None) -> str:
    """Why a trainer Job failed without a result, in words a user can act on.

    A trainer killed by a signal (exit code 128 + n: the OOM killer, an eviction, a person) says
    so and how many retries were used; otherwise the last thing the trainer printed (never its
    progress lines), else the Job controller's message.
    """
    code = (terminated or {}).get("exitCode") or 0
    used_up = f" and spec.retries ({retries}) is used up" if retries is not None else ""
    if (terminated or {}).get("reason") == "OOMKilled":
        return (
            f"The trainer ran out of memory (OOMKilled, exit code {code}){used_up}: "
            "raise spec.resources.limits.memory or lower the data size or spec.tuning.parallelism"
        )
    if code >= 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = "an unknown signal"
        return f"The trainer was killed by signal {code - 128} ({name}, exit code {code}){used_up}: {failed.get('message', '')}".rstrip(
            ": "
        )
    detail = _last_line((terminated or {}).get("message", "")) or failed.get("message", "")
    return f"The trainer failed: {detail}"


def observe(job: dict[str, Any] | None, pods: Sequence[dict[str, Any]], *, container: str, timeout: str) -> JobState:
    """The state of a trainer Job from the Job and its pods (the result from index 0's pods when the
    Job has trial pods; a failure message from any pod when index 0 left none)."""
    if job is None:
        return JobState("Pending", "JobNotCreated", "The trainer Job does not exist yet")
    status = job.get("status") or {}
    start = status.get("startTime")
    terminated = termination(leaders(pods), container)
    result = _result(terminated)
    if isinstance(result, str):
        return JobState(
            "Failed",
            "InvalidResult",
            f"The trainer's result does not follow the trainer contract (see the README): {result}",
            start,
            status.get("completionTime"),
        )
    if _condition(job, "Complete"):
        if result is None or not result.ok:
            return JobState(
                "Failed",
                "NoResult",
                "The trainer exited 0 but wrote no result to its termination message; "
                "it must follow the trainer contract (see the README)",
                start,
                status.get("completionTime"),
            )
        return JobState("Succeeded", "Trained", "The trainer wrote a model version", start, status.get("completionTime"), result)
    failed = _condition(job, "Failed")
    if failed:
        ended = failed.get("lastTransitionTime")
        if failed.get("reason") == "DeadlineExceeded":
            return JobState(
                "Failed",
                "DeadlineExceeded",
                f"The trainer ran longer than spec.timeout ({timeout}); raise spec.timeout or lower spec.tuning.maxTrials",
                start,
                ended,
            )
        if result is not None and result.message:
            return JobState("Failed", result.reason or "TrainingFailed", result.message, start, ended, result)
        terminated = terminated or termination(pods, container)
        spec = job.get("spec") or {}
        message = failure_message(terminated, failed, retries=spec.get("backoffLimitPerIndex", spec.get("backoffLimit")))
        return JobState("Failed", failed.get("reason") or "JobFailed", message, start, ended)
    if status.get("active") or any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return JobState("Running", "Training", "The trainer is running", start)
    if queue := meta.queue_of(job):
        return JobState("Pending", "Queued", queued_message(queue), start)
    return JobState("Pending", "JobPending", _pending_message(pods), start)


def queued_message(queue: str) -> str:
    """What a user reads while a Job waits for Kueue's admission."""
    return (
        f"Waiting for Kueue to admit the Job in LocalQueue {queue!r} (it stays suspended until then; "
        f"kubectl get workloads shows its place)"
    )


def _pending_message(pods: Sequence[dict[str, Any]]) -> str:
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses", []):
            waiting = (status.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                return f"{waiting.get('reason')}: {waiting.get('message', '')}".strip()
    return "Waiting for the trainer pod to start"


def progress(log_text: str) -> training.Progress | None:
    """The progress block from a trainer log: the stage of the last progress line, the trial
    counts and best score of the last line that had trials (later stages report none)."""
    lines = []
    for line in log_text.splitlines():
        if line.startswith(PROGRESS_PREFIX):
            try:
                lines.append(json.loads(line[len(PROGRESS_PREFIX) :]))
            except ValueError:
                continue
    if not lines:
        return None
    trials = next((data for data in reversed(lines) if data.get("trialsTotal")), lines[-1])
    done, total = trials.get("trialsCompleted", 0), trials.get("trialsTotal", 0)
    best = trials.get("bestScore")
    eta = trials.get("etaSeconds")
    return training.Progress(
        workers=trials.get("workers"),
        eta_seconds=int(eta) if isinstance(eta, (int, float)) else None,
        trials_completed=done,
        trials_total=total,
        summary=f"{done}/{total}",
        best_score=round(float(best), 6) if best is not None else None,
        stage=lines[-1].get("stage") or None,
    )
