"""Replay before promote, decided: what a replay Job answered, and the verdict on its counts.

``run`` reads a replay Job and its pods as the API returns them (the answer is the container's
termination message, contract ``api.replay``, read the way ``checkjob`` reads a drift check's).
``judge`` turns the counts into ``status.replay`` with the analysis' statistics
(``intervals.wilson`` at ``analysis.confidence``), so a replay is decided as a live window is:

- errors (``maxErrorRate``): Failing when the whole interval of the error rate lies above the
  threshold, Passing when it lies at or below (0 errors against 0 passes); otherwise Inconclusive.
- agreement (``minAgreement``, when set): Failing when the whole interval lies below, Passing when
  it lies at or above (every prediction agreeing against 1 passes); otherwise Inconclusive.
- quality against feedback is reported beside them, never gated (the replay has no threshold
  for it; the live A/B report and the analysis judge quality).

A replay with nothing to replay (no captured request the stable version answered), or one that
could not run, is Inconclusive: it has no evidence against the candidate, and replaying again
would find no more of it. Failing is the only verdict that stops a rollout.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import pydantic

from mlkube.api import errors
from mlkube.api import replay as replay_api
from mlkube.control.manifests import replay as replay_manifests
from mlkube.control.policy import intervals, jobstate


@dataclasses.dataclass(frozen=True)
class Run:
    """One replay Job: ``Running`` (created, not finished), ``Succeeded`` with the ``result``, or
    ``Failed`` with a ``message`` saying why there is none."""

    phase: Literal["Running", "Succeeded", "Failed"]
    result: replay_api.ReplayResult | None = None
    message: str = ""


def run(job: dict[str, Any], pods: Sequence[dict[str, Any]]) -> Run:
    """The state of the replay ``job`` from the Job and its pods."""
    complete, failed = jobstate.condition(job, "Complete"), jobstate.condition(job, "Failed")
    if not complete and not failed:
        return Run("Running")
    message = (jobstate.termination(pods, replay_manifests.CONTAINER) or {}).get("message", "")
    answer = _answer(message)
    if complete and isinstance(answer, replay_api.ReplayResult):
        return Run("Succeeded", result=answer)
    if isinstance(answer, replay_api.ReplayError):
        return Run("Failed", message=answer.error)
    if isinstance(answer, str):
        return Run("Failed", message=f"unexpected answer: {answer}")
    if failed and failed.get("reason") == "DeadlineExceeded":
        return Run("Failed", message=f"ran longer than {replay_manifests.DEADLINE_SECONDS} s")
    detail = jobstate.last_line(message) or (failed or {}).get("message") or "no answer in its termination message"
    return Run("Failed", message=detail)


def _answer(message: str) -> replay_api.ReplayResult | replay_api.ReplayError | str | None:
    """The replay's answer, why it is not one (str), or None when the message is not JSON (a log tail)."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        return replay_api.ReplayError.model_validate_json(message)
    except pydantic.ValidationError:
        pass
    try:
        return replay_api.ReplayResult.model_validate_json(message)
    except pydantic.ValidationError as invalid:
        return errors.describe(invalid, root="result")


def judge(
    result: replay_api.ReplayResult,
    settings: replay_api.Replay,
    *,
    version: int,
    stable: int,
    metric: replay_api.QualityMetric | None,
    confidence: float,
) -> replay_api.ReplayStatus:
    """The verdict on candidate ``version``'s replay of requests ``stable`` answered (see the
    module docstring); ``message`` names the figures."""
    n, k = result.requests, result.errors
    level = f"{confidence * 100:g}%"
    quality = _quality(result, metric)
    if n == 0:
        why = (
            f"no captured request answered by version {stable} to replay; "
            "spec.logging must capture traffic for a replay to judge anything"
        )
        if result.skipped:
            why = f"none of the {result.skipped} captured requests of version {stable} could be replayed (bodies stored cut)"
        return replay_api.ReplayStatus(version=version, verdict="Inconclusive", message=why, quality=quality)
    failed: list[str] = []
    pending: list[str] = []
    error_interval = intervals.wilson(k, n, confidence=confidence)
    limit = settings.max_error_rate
    figures = f"({k} of {n} replayed requests; {level} interval {_span(error_interval)})"
    if error_interval[0] > limit:
        example = f"; first: {result.first_error}" if result.first_error else ""
        failed.append(f"errorRate {k / n:.3g} > maxErrorRate {limit:g} {figures}{example}")
    elif not (error_interval[1] <= limit or (k == 0 and limit == 0)):
        pending.append(f"errorRate {k / n:.3g} undecided against maxErrorRate {limit:g} {figures}")
    agreement_interval = intervals.wilson(result.agreed, result.compared, confidence=confidence)
    if settings.min_agreement is not None:
        bound, a, c = settings.min_agreement, result.agreed, result.compared
        if agreement_interval is None:
            pending.append("no replayed prediction could be compared with the recorded one")
        else:
            figures = f"({a} of {c} predictions; {level} interval {_span(agreement_interval)})"
            if agreement_interval[1] < bound:
                failed.append(f"agreement {a / c:.3g} < minAgreement {bound:g} {figures}")
            elif not (agreement_interval[0] >= bound or (a == c and bound == 1)):
                pending.append(f"agreement {a / c:.3g} undecided against minAgreement {bound:g} {figures}")
    verdict = "Failing" if failed else ("Inconclusive" if pending else "Passing")
    return replay_api.ReplayStatus(
        version=version,
        requests=n,
        errors=k,
        error_rate=round(k / n, 4),
        error_rate_interval=_rounded(error_interval),
        agreement=round(result.agreed / result.compared, 4) if result.compared else None,
        compared=result.compared,
        agreement_interval=_rounded(agreement_interval),
        quality=quality,
        verdict=verdict,
        message=_summary(result, version=version, stable=stable, quality=quality, checks=failed or pending),
    )


def unanswered(version: int, why: str) -> replay_api.ReplayStatus:
    """The Inconclusive verdict of a replay that gave no answer (``why``)."""
    return replay_api.ReplayStatus(version=version, verdict="Inconclusive", message=f"the replay could not run: {why}")


def _quality(result: replay_api.ReplayResult, metric: replay_api.QualityMetric | None) -> replay_api.ReplayQuality | None:
    if metric is None or result.labeled == 0:
        return None
    return replay_api.ReplayQuality(
        metric=metric,
        labeled=result.labeled,
        candidate=round(result.candidate_score / result.labeled, 4),
        stable=round(result.stable_score / result.labeled, 4),
    )


def _summary(
    result: replay_api.ReplayResult,
    *,
    version: int,
    stable: int,
    quality: replay_api.ReplayQuality | None,
    checks: list[str],
) -> str:
    """``Version 3 on 200 captured requests of version 2: <checks>; agreement ..., accuracy ...``."""
    parts = list(checks)
    if not checks:
        parts.append(f"{result.errors} errors")
        if result.compared:
            parts.append(f"agreement {result.agreed / result.compared:.3g} ({result.agreed} of {result.compared})")
    if quality is not None:
        parts.append(
            f"{quality.metric} {quality.candidate:.3g} against {quality.stable:.3g} for version {stable} "
            f"on {quality.labeled} labeled requests"
        )
    if result.budget_exhausted:
        parts.append("the time budget ended the replay early")
    return f"version {version} on {result.requests} captured requests of version {stable}: " + "; ".join(parts)


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


def _span(interval: tuple[float, float]) -> str:
    return f"{interval[0]:.3g}-{interval[1]:.3g}"
