"""Rollout analysis: the router's counters over an interval, judged against the thresholds.

The router exposes cumulative per-version counters (``GET /mlkube/stats``); the controller keeps
a snapshot from the start of the current step and judges the difference. A candidate's errors
are its own failures (``serverErrors``: 5xx and unreachable), not clients' bad requests (4xx),
which every version answers alike. The quality counters (ground truth scored against the
version's predictions: ``labeled``, ``correct``, error sums) are windowed the same way; they count
feedback that arrived within the window. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlkube.api import base, deployment


@dataclasses.dataclass(frozen=True)
class Window:
    """One version's traffic since the snapshot."""

    requests: int
    errors: int
    buckets: tuple[tuple[float, int], ...]  # cumulative (upper bound in ms, count), last bound inf
    compared: int
    agreed: int
    labeled: int = 0
    correct: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0


_QUALITY = ("labeled", "correct", "abs_error_sum", "squared_error_sum")
_QUALITY_WIRE = {
    "labeled": "labeled",
    "correct": "correct",
    "abs_error_sum": "absErrorSum",
    "squared_error_sum": "squaredErrorSum",
}


def snapshot(stats: dict[str, Any], version: int) -> deployment.AnalysisBaseline:
    """The counters of ``version`` worth keeping in status as the start of a window."""
    counters = stats.get("versions", {}).get(str(version), {})
    return deployment.AnalysisBaseline(
        start_time=stats.get("startTime"),
        requests=counters.get("requests", 0),
        errors=counters.get("serverErrors", counters.get("errors", 0)),
        buckets=[b["count"] for b in counters.get("latency", {}).get("buckets", [])],
        compared=counters.get("agreement", {}).get("compared", 0),
        agreed=counters.get("agreement", {}).get("agreed", 0),
        **{field: counters.get("quality", {}).get(key, 0) for field, key in _QUALITY_WIRE.items()},
    )


def window(stats: dict[str, Any], version: int, baseline: deployment.AnalysisBaseline | None) -> Window:
    """Traffic of ``version`` since ``baseline``; a restarted router (new startTime) starts from zero."""
    now = snapshot(stats, version)
    if baseline is None or baseline.start_time != now.start_time or baseline.requests > now.requests:
        baseline = deployment.AnalysisBaseline()
    bounds = [b["le"] for b in stats.get("versions", {}).get(str(version), {}).get("latency", {}).get("buckets", [])]
    before = baseline.buckets or [0] * len(now.buckets)
    buckets = tuple(
        (float("inf") if bound == "+Inf" else float(bound), count - previous)
        for bound, count, previous in zip(bounds, now.buckets, before)
    )
    since = {key: getattr(now, key) - getattr(baseline, key) for key in ("requests", "errors", "compared", "agreed", *_QUALITY)}
    return Window(buckets=buckets, **since)


def quantile_ms(buckets: tuple[tuple[float, int], ...], q: float) -> float | None:
    """The upper bound of the latency bucket holding the ``q`` quantile (as Prometheus' histogram_quantile bounds it)."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    for bound, count in buckets:
        if count >= rank:
            return bound
    return buckets[-1][0]


def judge(traffic: Window, thresholds: deployment.Analysis, *, needs_agreement: bool) -> deployment.AnalysisResult:
    """The verdict on a candidate's window: Inconclusive below minRequests, Failing past any threshold.

    Errors fail a candidate even before the sample is large enough to pass it, as soon as they
    exceed what ``maxErrorRate`` allows in ``minRequests`` requests.
    """
    error_rate = traffic.errors / traffic.requests if traffic.requests else None
    p99 = quantile_ms(traffic.buckets, 0.99)
    agreement = traffic.agreed / traffic.compared if traffic.compared else None
    max_latency_ms = base.parse_duration(thresholds.max_latency_p99).total_seconds() * 1000
    enough = traffic.requests >= thresholds.min_requests and (not needs_agreement or traffic.compared >= thresholds.min_requests)
    failed = []
    if (
        error_rate is not None
        and error_rate > thresholds.max_error_rate
        and (enough or traffic.errors > thresholds.max_error_rate * max(thresholds.min_requests, 1))
    ):
        failed.append(
            f"errorRate {error_rate:.3g} > maxErrorRate {thresholds.max_error_rate:g} "
            f"({traffic.errors} of {traffic.requests} requests)"
        )
    if enough and p99 is not None and p99 > max_latency_ms:
        shown = "over 10s" if p99 == float("inf") else f"{p99:g}ms"
        failed.append(f"latencyP99 {shown} > maxLatencyP99 {thresholds.max_latency_p99}")
    if (
        enough
        and needs_agreement
        and agreement is not None
        and traffic.compared >= thresholds.min_requests
        and agreement < thresholds.min_agreement
    ):
        failed.append(
            f"agreement {agreement:.3g} < minAgreement {thresholds.min_agreement:g} "
            f"({traffic.agreed} of {traffic.compared} predictions)"
        )
    verdict = "Failing" if failed else ("Passing" if enough else "Inconclusive")
    return deployment.AnalysisResult(
        requests=traffic.requests,
        error_rate=None if error_rate is None else round(error_rate, 4),
        latency_p99_ms=None if p99 in (None, float("inf")) else p99,
        agreement=None if agreement is None else round(agreement, 4),
        compared=traffic.compared,
        verdict=verdict,
        failed_checks=failed,
    )
