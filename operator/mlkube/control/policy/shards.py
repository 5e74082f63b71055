"""What a scoring Job and its pods say about a BatchPrediction run: phase, shards done, rows, why it failed.

Each shard answers in its pod's termination message (``api.scoring.ShardResult``) and reports
progress on its log (``MLKUBE_PROGRESS`` lines); the Job's ``status.completedIndexes`` says which
shards are done even when their pods are gone. The run's counts are the committing shard's totals
when one reported them (summed from every shard's record in storage, the output as written), else
the sum of the shards' results, plus the progress of the shards still running.

Pure functions over the objects the API returns; no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from mlkube.api import scoring
from mlkube.control.manifests import batch, meta
from mlkube.control.policy import jobstate


@dataclasses.dataclass(frozen=True)
class RunState:
    """A run as its BatchPrediction reports it."""

    phase: str  # Pending | Running | Succeeded | Failed
    reason: str
    message: str
    done: int = 0
    rows_scored: int = 0
    rows_failed: int = 0
    reasons: tuple[scoring.Reason, ...] = ()
    start_time: str | None = None
    completion_time: str | None = None


def completed(text: str | None) -> set[int]:
    """The indexes of ``status.completedIndexes`` (``"0-2,4"`` -> {0, 1, 2, 4})."""
    found: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found.update(range(int(first), int(last or first) + 1))
    return found


def results(pods: Sequence[dict[str, Any]]) -> dict[int, scoring.ShardResult]:
    """Each shard's answer, by index, from its pods' termination messages (a succeeded pod's over a
    failed one's, the newest first)."""
    found: dict[int, scoring.ShardResult] = {}
    ranked = sorted(pods, key=lambda p: ((p.get("status") or {}).get("phase") == "Succeeded", _created(p)))
    for pod in ranked:  # later (better) answers replace earlier ones
        index = batch.index_of(pod)
        result = _result(jobstate.termination([pod], batch.CONTAINER))
        if index is not None and result is not None:
            found[index] = result
    return found


def progress(logs: Mapping[int, str]) -> dict[int, tuple[int, int]]:
    """(rows scored, rows failed) of each running shard, from the last progress line of its log."""
    found = {}
    for index, text in logs.items():
        for line in reversed(text.splitlines()):
            if line.startswith(scoring.PROGRESS_PREFIX):
                try:
                    data = json.loads(line[len(scoring.PROGRESS_PREFIX) :])
                    found[index] = (int(data.get("rowsScored", 0)), int(data.get("rowsFailed", 0)))
                except (ValueError, TypeError, AttributeError):
                    continue
                break
    return found


def observe(
    job: dict[str, Any],
    pods: Sequence[dict[str, Any]],
    *,
    logs: Mapping[int, str],
    total: int,
    max_failed_rows: float,
    timeout: str,
) -> RunState:
    """The state of a run of ``total`` shards from its Job, its pods and the log tails of its running shards."""
    status = job.get("status") or {}
    start, done = status.get("startTime"), completed(status.get("completedIndexes"))
    answers = results(pods)
    refused = next((r for i, r in sorted(answers.items()) if not r.ok), None)
    counts = _counts(answers, done, progress({i: t for i, t in logs.items() if i not in done}))
    base = {"done": len(done), "start_time": start, **counts}
    failed = jobstate.condition(job, "Failed")
    if failed:
        ended = failed.get("lastTransitionTime")
        if refused is not None:
            return RunState("Failed", refused.reason or "ScoringFailed", refused.message or "", completion_time=ended, **base)
        if failed.get("reason") == "DeadlineExceeded":
            message = f"The run took longer than spec.timeout ({timeout}); raise spec.timeout or spec.parallelism"
            return RunState("Failed", "DeadlineExceeded", message, completion_time=ended, **base)
        return RunState("Failed", failed.get("reason") or "JobFailed", _failure(job, pods, failed), completion_time=ended, **base)
    if jobstate.condition(job, "Complete"):
        ended = status.get("completionTime")
        scored, rows_failed = counts["rows_scored"], counts["rows_failed"]
        if scoring.too_many_failed(scored, rows_failed, max_failed_rows):
            message = failed_rows_message(scored, rows_failed, max_failed_rows, counts["reasons"])
            return RunState("Failed", "TooManyFailedRows", message, completion_time=ended, **base)
        message = f"Scored {scored} rows in {total} shards" + (f"; {rows_failed} failed validation" if rows_failed else "")
        return RunState("Succeeded", "Scored", message, completion_time=ended, **base)
    if status.get("active") or any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return RunState("Running", "Scoring", f"{len(done)} of {total} shards done", **base)
    if queue := meta.queue_of(job):
        return RunState("Pending", "Queued", jobstate.queued_message(queue), **base)
    return RunState("Pending", "JobPending", _pending_message(pods), **base)


def failed_rows_message(scored: int, failed: int, max_failed_rows: float, reasons: Sequence[scoring.Reason]) -> str:
    """Why a run failed validation: the share, the limit and the most common reason."""
    rows = scored + failed
    common = f"; most common: {reasons[0].reason} ({reasons[0].rows} rows)" if reasons else ""
    return (
        f"{failed} of {rows} rows ({failed / rows:.2%}) failed validation, more than spec.maxFailedRows "
        f"({max_failed_rows:.2%}){common}. Each is in the failures files with its reason; no manifest was written"
    )


def _counts(answers: Mapping[int, scoring.ShardResult], done: set[int], running: Mapping[int, tuple[int, int]]) -> dict[str, Any]:
    """Rows scored and failed and the top reasons: a committing shard's totals, else the finished
    shards' results plus the running shards' progress."""
    totals = next((r.totals for r in answers.values() if r.totals is not None), None)
    if totals is not None:
        return {"rows_scored": totals.rows_scored, "rows_failed": totals.rows_failed, "reasons": tuple(totals.reasons)}
    finished = [r for i, r in answers.items() if i in done and r.ok]
    return {
        "rows_scored": sum(r.rows_scored for r in finished) + sum(s for s, _ in running.values()),
        "rows_failed": sum(r.rows_failed for r in finished) + sum(f for _, f in running.values()),
        "reasons": tuple(scoring.merged(r.reasons for r in finished)),
    }


def _result(terminated: dict[str, Any] | None) -> scoring.ShardResult | None:
    message = (terminated or {}).get("message", "")
    if not message.lstrip().startswith("{"):
        return None  # no answer, or the log tail the kubelet fell back to
    try:
        return scoring.ShardResult.model_validate_json(message)
    except pydantic.ValidationError:
        return None


def _failure(job: dict[str, Any], pods: Sequence[dict[str, Any]], failed: dict[str, Any]) -> str:
    """Why the Job failed without a shard's refusal: the retries used up, and what the last failed pod said."""
    last = next(
        (t for p in sorted(pods, key=_created, reverse=True) if (t := jobstate.termination([p], batch.CONTAINER))),
        None,
    )
    retries = (job.get("spec") or {}).get("backoffLimit")
    said = jobstate.last_line((last or {}).get("message", "")) or failed.get("message", "")
    code = (last or {}).get("exitCode")
    detail = f"the last one exited {code}: {said}" if code is not None else said
    return f"Shard pods failed more often than spec.retries ({retries}) allows; {detail}".rstrip(": ")


def _pending_message(pods: Sequence[dict[str, Any]]) -> str:
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses", []):
            waiting = (status.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                return f"{waiting.get('reason')}: {waiting.get('message', '')}".strip()
    return "Waiting for the shard pods to start"


def _created(pod: dict[str, Any]) -> str:
    return pod["metadata"].get("creationTimestamp", "")
