"""Rollout analysis: the router's counters over an interval, judged against the thresholds.

The router exposes cumulative per-version counters (``GET /mlkube/stats``); the controller keeps
a snapshot from the start of the current step and judges the difference. A candidate's errors
are its own failures (``serverErrors``: 5xx and unreachable), not clients' bad requests (4xx),
which every version answers alike. The quality counters (ground truth scored against the
version's predictions: ``labeled``, ``correct``, error sums) are windowed the same way; they count
feedback that arrived within the window.

``judge`` decides each gate on a confidence interval at ``analysis.confidence`` (``intervals``):

- error rate (``maxErrorRate``) and agreement (``minAgreement``): Wilson score intervals. A gate
  fails only when its whole interval is past the threshold, passes only when its whole interval
  is within, and otherwise keeps the window Inconclusive: more requests narrow the interval.
- latency p99 (``maxLatencyP99``, only when set): the order-statistic interval of the p99 from the router's
  latency histogram, exact and distribution-free. It fails when the p99 lies above the threshold
  at that confidence and passes when it lies at or below. Fewer requests than
  ``intervals.min_samples`` cannot show that a p99 is low at all (368 at 0.95: with fewer, even
  a sample with no slow request does not rule out 1 % of slow ones), so below that count the
  latency gate only fails, on proof, and does not hold the verdict: requiring an upper bound
  would turn every rollout of a low-traffic model into a pause, and one slow request among fifty
  (a cold cache) is not evidence of a slow version.

- estimated performance (``estimatedPerformance``, only when set): the label-free CBPE estimate of
  the version's accuracy or ROC AUC from the probabilities it served (``cbpe``), judged on its
  interval against the version's test metric minus ``maxDrop``; with ``minSamples`` labeled
  predictions in the window, their real metric is judged instead (``Estimation``).

Passing also needs ``minRequests`` requests (and compared predictions, with an agreement gate).
Below that the window is Inconclusive, except that the error gate fails early when the verdict at
``minRequests`` is already certain: the errors so far would fail it even if every other request
succeeded. That adds no false failure to the look at ``minRequests``; failing on the interval of
a handful of requests would (one error among the first three is "certain" at 95 %).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mlkube.api import base, rolloutstatus
from mlkube.api import strategy as strategy_api
from mlkube.control.policy import cbpe, intervals

SHADOW_MIN_AGREEMENT = 0.9
COMPARING = ("Canary", "Shadow")  # the strategies whose router compares the candidate's predictions with the stable's
LATENCY_QUANTILE = 0.99


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
    scored: int = 0
    confidence_sum: float = 0.0
    score_counts: tuple[int, ...] = ()  # positive-class probability histogram (binary classifiers)
    score_sums: tuple[float, ...] = ()
    labeled_score_counts: tuple[int, ...] = ()  # labeled rows per bin of the same histogram
    labeled_score_positives: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Estimation:
    """The estimatedPerformance gate as it applies to the watched version."""

    gate: strategy_api.EstimatedPerformance
    metric: str
    """accuracy or roc_auc."""
    test_value: float | None
    """The version's test metric; None when unavailable."""
    unavailable: str | None = None
    """Why the gate cannot judge this version (then it keeps the analysis Inconclusive)."""

    @property
    def threshold(self) -> float | None:
        return None if self.test_value is None else round(self.test_value - self.gate.max_drop, 6)


_QUALITY = ("labeled", "correct", "abs_error_sum", "squared_error_sum")
_QUALITY_WIRE = {
    "labeled": "labeled",
    "correct": "correct",
    "abs_error_sum": "absErrorSum",
    "squared_error_sum": "squaredErrorSum",
}


def snapshot(stats: dict[str, Any], version: int) -> rolloutstatus.AnalysisBaseline:
    """The counters of ``version`` worth keeping in status as the start of a window."""
    counters = stats.get("versions", {}).get(str(version), {})
    return rolloutstatus.AnalysisBaseline(
        start_time=stats.get("startTime"),
        requests=counters.get("requests", 0),
        errors=counters.get("serverErrors", counters.get("errors", 0)),
        buckets=[b["count"] for b in counters.get("latency", {}).get("buckets", [])],
        compared=counters.get("agreement", {}).get("compared", 0),
        agreed=counters.get("agreement", {}).get("agreed", 0),
        **{field: counters.get("quality", {}).get(key, 0) for field, key in _QUALITY_WIRE.items()},
        scored=counters.get("scores", {}).get("scored", 0),
        confidence_sum=counters.get("scores", {}).get("confidenceSum", 0.0),
        score_counts=counters.get("scores", {}).get("bins", []),
        score_sums=counters.get("scores", {}).get("binSums", []),
        labeled_score_counts=counters.get("scores", {}).get("labeledBins", []),
        labeled_score_positives=counters.get("scores", {}).get("labeledPositives", []),
    )


def window(stats: dict[str, Any], version: int, baseline: rolloutstatus.AnalysisBaseline | None) -> Window:
    """Traffic of ``version`` since ``baseline``; a restarted router (new startTime) starts from zero."""
    now = snapshot(stats, version)
    if baseline is None or baseline.start_time != now.start_time or baseline.requests > now.requests:
        baseline = rolloutstatus.AnalysisBaseline()
    bounds = [b["le"] for b in stats.get("versions", {}).get(str(version), {}).get("latency", {}).get("buckets", [])]
    before = baseline.buckets or [0] * len(now.buckets)
    buckets = tuple(
        (float("inf") if bound == "+Inf" else float(bound), count - previous)
        for bound, count, previous in zip(bounds, now.buckets, before)
    )
    since = {
        key: getattr(now, key) - getattr(baseline, key)
        for key in ("requests", "errors", "compared", "agreed", *_QUALITY, "scored", "confidence_sum")
    }
    histograms = {
        key: _difference(getattr(now, key), getattr(baseline, key))
        for key in ("score_counts", "score_sums", "labeled_score_counts", "labeled_score_positives")
    }
    return Window(buckets=buckets, **histograms, **since)


def _difference(now: list, before: list) -> tuple:
    """Per bin ``now - before`` (a baseline without the histogram counts zeros)."""
    if len(before) != len(now):
        before = [0] * len(now)
    return tuple(a - b for a, b in zip(now, before))


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


def min_agreement(strategy: strategy_api.Strategy) -> float | None:
    """The agreement gate of ``strategy``: ``analysis.minAgreement`` where the router compares the
    candidate's predictions with the stable version's (Canary, Shadow), 0.9 for a Shadow that
    leaves it unset; None: no agreement gate."""
    if strategy.type not in COMPARING:
        return None
    if strategy.analysis.min_agreement is not None:
        return strategy.analysis.min_agreement
    return SHADOW_MIN_AGREEMENT if strategy.type == "Shadow" else None


def estimation(
    gate: strategy_api.EstimatedPerformance | None,
    *,
    version: int,
    task: str,
    primary_metric: str,
    test_metrics: dict[str, float] | None,
) -> Estimation | None:
    """The estimatedPerformance gate for ``version`` of a project with ``task`` and
    ``primary_metric``, whose registry entry holds ``test_metrics`` (None: not in the registry);
    None when the gate is not set. The metric is the gate's, else the primary metric when it is
    accuracy or roc_auc, else accuracy."""
    if gate is None:
        return None
    metric = gate.metric or (primary_metric if primary_metric in ("accuracy", "roc_auc") else "accuracy")
    if task != "classification":
        return Estimation(gate, metric, None, f"needs a classifier's probabilities; the project's task is {task}")
    value = (test_metrics or {}).get(metric)
    if value is None:
        return Estimation(gate, metric, None, f"version {version} has no test {metric} in the registry to compare with")
    return Estimation(gate, metric, float(value))


def judge(
    traffic: Window,
    thresholds: strategy_api.Analysis,
    *,
    min_agreement: float | None,
    estimated: Estimation | None = None,
) -> rolloutstatus.AnalysisResult:
    """The verdict on a candidate's window: Failing when an interval is past its threshold,
    Passing when every gate's interval is within and the window holds ``minRequests`` requests,
    Inconclusive otherwise (``inconclusiveChecks`` says why). ``min_agreement`` None: no agreement
    gate (see ``min_agreement``); ``estimated`` None: no estimatedPerformance gate."""
    need = max(thresholds.min_requests, 1)
    failed: list[str] = []
    pending: list[str] = [] if traffic.requests >= need else [f"{traffic.requests} of {need} requests"]
    error_interval = _error_gate(traffic, thresholds, need=need, failed=failed, pending=pending)
    p99_interval = _latency_gate(traffic, thresholds, need=need, failed=failed, pending=pending)
    agreement_interval = None
    if min_agreement is not None:
        agreement_interval = _agreement_gate(
            traffic, min_agreement, need=need, confidence=thresholds.confidence, failed=failed, pending=pending
        )
    estimate = None
    if estimated is not None:
        estimate = _estimate_gate(traffic, estimated, confidence=thresholds.confidence, failed=failed, pending=pending)
    error_rate = traffic.errors / traffic.requests if traffic.requests else None
    agreement = traffic.agreed / traffic.compared if traffic.compared else None
    p99 = quantile_ms(traffic.buckets, LATENCY_QUANTILE)
    return rolloutstatus.AnalysisResult(
        requests=traffic.requests,
        error_rate=None if error_rate is None else round(error_rate, 4),
        error_rate_interval=_rounded(error_interval),
        latency_p99_ms=None if p99 in (None, math.inf) else p99,
        latency_p99_interval_ms=None
        if p99_interval is None
        else [p99_interval[0], None if p99_interval[1] in (None, math.inf) else p99_interval[1]],
        agreement=None if agreement is None else round(agreement, 4),
        agreement_interval=_rounded(agreement_interval),
        compared=traffic.compared,
        verdict="Failing" if failed else ("Inconclusive" if pending else "Passing"),
        failed_checks=failed,
        inconclusive_checks=[] if failed else pending,
        estimated_performance=estimate,
    )


def _error_gate(
    traffic: Window, thresholds: strategy_api.Analysis, *, need: int, failed: list[str], pending: list[str]
) -> tuple[float, float] | None:
    k, n, limit, confidence = traffic.errors, traffic.requests, thresholds.max_error_rate, thresholds.confidence
    interval = intervals.wilson(k, n, confidence=confidence)
    if interval is None:
        return None
    upper = interval[1]
    figures = f"({k} of {n} requests; {_level(confidence)} interval {_span(interval)})"
    # Below minRequests: the interval of these errors among minRequests requests, every other one
    # succeeding, is the best the window can still do.
    certain = intervals.wilson(k, max(n, need), confidence=confidence)[0]
    if certain > limit:
        failed.append(f"errorRate {k / n:.3g} > maxErrorRate {limit:g} {figures}")
    elif n >= need and not (upper <= limit or (k == 0 and limit == 0)):
        pending.append(f"errorRate {k / n:.3g} undecided against maxErrorRate {limit:g} {figures}")
    return interval


def _latency_gate(
    traffic: Window, thresholds: strategy_api.Analysis, *, need: int, failed: list[str], pending: list[str]
) -> tuple[float, float | None] | None:
    interval = intervals.quantile_interval(traffic.buckets, LATENCY_QUANTILE, confidence=thresholds.confidence)
    if interval is None or traffic.requests < need or thresholds.max_latency_p99 is None:
        return interval
    lower, upper = interval
    limit_ms = base.parse_duration(thresholds.max_latency_p99).total_seconds() * 1000
    p99 = quantile_ms(traffic.buckets, LATENCY_QUANTILE)
    figures = f"({_level(thresholds.confidence)} interval {_ms(lower)}-{_ms(upper)}; {traffic.requests} requests)"
    point = "over 10s" if p99 == math.inf else f"{p99:g}ms"
    if lower >= limit_ms:
        failed.append(f"latencyP99 {point} > maxLatencyP99 {thresholds.max_latency_p99} {figures}")
    elif upper is not None and upper > limit_ms:
        pending.append(f"latencyP99 {point} undecided against maxLatencyP99 {thresholds.max_latency_p99} {figures}")
    return interval


def _agreement_gate(
    traffic: Window, limit: float, *, need: int, confidence: float, failed: list[str], pending: list[str]
) -> tuple[float, float] | None:
    k, n = traffic.agreed, traffic.compared
    interval = intervals.wilson(k, n, confidence=confidence)
    if n < need:
        pending.append(f"{n} of {need} compared predictions")
        return interval
    lower, upper = interval
    figures = f"({k} of {n} predictions; {_level(confidence)} interval {_span(interval)})"
    if upper < limit:
        failed.append(f"agreement {k / n:.3g} < minAgreement {limit:g} {figures}")
    elif not (lower >= limit or (k == n and limit == 1)):
        pending.append(f"agreement {k / n:.3g} undecided against minAgreement {limit:g} {figures}")
    return interval


def _estimate_gate(
    traffic: Window, target: Estimation, *, confidence: float, failed: list[str], pending: list[str]
) -> rolloutstatus.PerformanceEstimate:
    """The estimatedPerformance gate: the real metric once ``minSamples`` labeled predictions are
    in the window, else the CBPE estimate over ``minSamples`` scored ones, each judged on its
    interval against the test value minus ``maxDrop``. The estimate is shown from the first
    scored prediction."""
    metric, need, threshold = target.metric, target.gate.min_samples, target.threshold
    figures = rolloutstatus.PerformanceEstimate(
        metric=metric, samples=traffic.scored, test_value=target.test_value, threshold=threshold, labeled=traffic.labeled
    )
    if target.unavailable is not None or threshold is None:
        pending.append(f"estimatedPerformance: {target.unavailable}")
        return figures
    if metric == "accuracy":
        value = cbpe.expected_accuracy(traffic.scored, traffic.confidence_sum)
        interval = cbpe.accuracy_interval(traffic.scored, traffic.confidence_sum, confidence=confidence)
        rows = traffic.scored
    else:
        rows = sum(traffic.score_counts)
        value = cbpe.expected_roc_auc(traffic.score_counts, traffic.score_sums)
        positives, negatives = cbpe.expected_counts(traffic.score_counts, traffic.score_sums)
        interval = None if value is None else cbpe.roc_auc_interval(value, positives, negatives, confidence=confidence)
    if value is not None:
        figures = figures.model_copy(update={"estimate": round(value, 4), "interval": _rounded(interval)})
    level = _level(confidence)
    against = f"{threshold:.4g} (test {metric} {target.test_value:.4g} - maxDrop {target.gate.max_drop:g})"
    labeled = _labeled(traffic, metric, confidence=confidence)
    if metric == "roc_auc":
        figures = figures.model_copy(update={"labeled": sum(traffic.labeled_score_counts)})
    if labeled is not None and figures.labeled >= need:
        realised, labeled_interval, detail = labeled
        figures = figures.model_copy(update={"realised": round(realised, 4), "interval": _rounded(labeled_interval)})
        what = f"labeled {metric} {realised:.3g}"
        _place(
            labeled_interval,
            threshold,
            what,
            against,
            f"({detail}; {level} interval {_span(labeled_interval)})",
            failed=failed,
            pending=pending,
        )
        return figures
    if traffic.scored < need:
        pending.append(f"{traffic.scored} of {need} scored predictions for estimatedPerformance")
    elif rows < need:  # roc_auc only: most rows had more than two classes
        pending.append(
            f"estimatedPerformance: roc_auc needs a binary classifier's probabilities; {rows} of the "
            f"{traffic.scored} scored predictions had two classes (use metric: accuracy)"
        )
    elif interval is None:
        pending.append(f"estimatedPerformance: the scores of {rows} predictions imply a single class; no roc_auc")
    else:
        detail = f"(CBPE on {rows} predictions; {level} interval {_span(interval)})"
        _place(interval, threshold, f"estimated {metric} {value:.3g}", against, detail, failed=failed, pending=pending)
    return figures


def _labeled(traffic: Window, metric: str, *, confidence: float) -> tuple[float, tuple[float, float], str] | None:
    """(the real metric, its interval, the sample behind it) of the window's labeled predictions;
    None without a figure (no label; roc_auc: one class only)."""
    if metric == "accuracy":
        if traffic.labeled <= 0:
            return None
        interval = intervals.wilson(traffic.correct, traffic.labeled, confidence=confidence)
        return traffic.correct / traffic.labeled, interval, f"{traffic.correct} of {traffic.labeled} labeled predictions"
    realised = cbpe.realised_roc_auc(traffic.labeled_score_counts, traffic.labeled_score_positives)
    if realised is None:
        return None
    rows, positives = sum(traffic.labeled_score_counts), sum(traffic.labeled_score_positives)
    interval = cbpe.roc_auc_interval(realised, positives, rows - positives, confidence=confidence)
    if interval is None:
        return None
    return realised, interval, f"{positives} positives in {rows} labeled predictions"


def _place(
    interval: tuple[float, float],
    threshold: float,
    what: str,
    against: str,
    detail: str,
    *,
    failed: list[str],
    pending: list[str],
) -> None:
    """Failing when the whole interval lies below ``threshold``, undecided when it holds it."""
    if interval[1] < threshold:
        failed.append(f"{what} < {against} {detail}")
    elif interval[0] < threshold:
        pending.append(f"{what} undecided against {against} {detail}")


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


def _span(interval: tuple[float, float]) -> str:
    return f"{interval[0]:.3g}-{interval[1]:.3g}"


def _ms(bound: float | None) -> str:
    if bound is None:
        return "unbounded"
    return "over 10s" if bound == math.inf else f"{bound:g}ms"


def _level(confidence: float) -> str:
    return f"{confidence * 100:g}%"
