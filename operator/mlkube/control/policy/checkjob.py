"""What a drift-check Job says about one analysis: still running, its result, or why there is none.

Pure functions over the Job and its pods as the API returns them (the answer is the check
container's termination message, contract ``api.driftcheck``); no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import pydantic

from mlkube.api import driftcheck, errors
from mlkube.control.manifests import drift
from mlkube.control.policy import jobstate


@dataclasses.dataclass(frozen=True)
class CheckState:
    """One check Job: ``Running`` (created, not finished), ``Succeeded`` with the ``result``, or
    ``Failed`` with a ``message`` saying why. ``checked_at`` is the time of its check (RFC 3339)."""

    phase: Literal["Running", "Succeeded", "Failed"]
    result: driftcheck.DriftCheckResult | None = None
    message: str = ""
    checked_at: str | None = None


def state(job: dict[str, Any], pods: Sequence[dict[str, Any]]) -> CheckState:
    """The state of the check ``job`` from the Job and its pods."""
    complete, failed = jobstate.condition(job, "Complete"), jobstate.condition(job, "Failed")
    if not complete and not failed:
        return CheckState("Running")
    ended = drift.check_time_of(job)
    message = (jobstate.termination(pods, drift.CONTAINER) or {}).get("message", "")
    answer = _answer(message)
    if complete and isinstance(answer, driftcheck.DriftCheckResult):
        return CheckState("Succeeded", result=answer, checked_at=ended)
    if isinstance(answer, driftcheck.DriftCheckError):
        return CheckState("Failed", message=f"{drift.COMMAND[-1]}: {answer.error}", checked_at=ended)
    if isinstance(answer, str):
        return CheckState("Failed", message=f"{drift.COMMAND[-1]}: unexpected answer: {answer}", checked_at=ended)
    if failed and failed.get("reason") == "DeadlineExceeded":
        detail = f"ran longer than {drift.DEADLINE_SECONDS} s; shrink spec.window.size"
        return CheckState("Failed", message=f"{drift.COMMAND[-1]}: {detail}", checked_at=ended)
    detail = (
        jobstate.last_line(message) or (failed or {}).get("message") or "the check wrote no answer to its termination message"
    )
    return CheckState("Failed", message=f"{drift.COMMAND[-1]}: {detail}", checked_at=ended)


def _answer(message: str) -> driftcheck.DriftCheckResult | driftcheck.DriftCheckError | str | None:
    """The check's answer, why it is not one (str), or None when the message is not JSON (a log tail)."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        return driftcheck.DriftCheckError.model_validate_json(message)
    except pydantic.ValidationError:
        pass
    try:
        return driftcheck.DriftCheckResult.model_validate_json(message)
    except pydantic.ValidationError as invalid:
        return errors.describe(invalid, root="result")
