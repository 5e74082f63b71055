"""The analysis of one rollout window over 100,000 candidate requests: ours against a naive baseline.

One process, the same 100,000 requests in the window (1.5 % server errors, 96 % agreement with the stable
version, log-normal latencies around 20 ms):

- **ours**: what the operator does each pass. The router counted the requests as they passed
  (``serving.stats.Stats``: a handful of integers and a 14-bucket latency histogram); the operator
  parses the router's ``GET /mlkube/stats`` document, takes the window since the step's snapshot
  (``analysis.window``) and judges it (``analysis.judge``): Wilson intervals for the error rate and
  the agreement, the order-statistic interval of the p99 from the histogram (``intervals``), in
  plain ``math``.
- **naive**: recompute from the raw events, with scipy: count errors and agreements over the
  100,000 records, ``scipy.stats.binomtest(...).proportion_ci(method="wilson")`` for both rates,
  and the exact order-statistic interval of the p99 from the sorted latencies and
  ``scipy.stats.binom.ppf``.

Checks that both reach the same verdict on every gate with the same Wilson intervals, and that our
p99 interval (bucket bounds) contains the naive one (exact order statistics). Prints both medians
and the ratio, and ends with one line: ``RESULT analysis_window_ms=... ratio=...`` (ratio: naive
time over ours). Target: under 10 ms.

Run: ``.venv/bin/python benchmarks/analysis.py``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import stats as scipy_stats

from mlkube.api import rolloutstatus, strategy
from mlkube.control.policy import analysis
from mlkube.serving import stats as router_stats

REQUESTS = 100_000  # in the window
BEFORE = 5_000  # counted before the window began (the step's snapshot)
VERSION = 2
THRESHOLDS = strategy.Analysis(minRequests=50, maxErrorRate=0.05, maxLatencyP99="250ms", minAgreement=0.9)


def make_events(seed: int = 11) -> dict[str, np.ndarray]:
    """The candidate's requests in the window, as raw per-request records."""
    rng = np.random.default_rng(seed)
    total = BEFORE + REQUESTS
    return {
        "status": np.where(rng.random(total) < 0.015, 500, 200),
        "latency_ms": rng.lognormal(np.log(20), 0.6, total),
        "agreed": rng.random(total) < 0.96,
    }


def router_document(events: dict[str, np.ndarray]) -> tuple[str, rolloutstatus.AnalysisBaseline]:
    """The router's stats document after counting ``events`` (as it does on the request path), and
    the snapshot taken when the window began (after ``BEFORE`` earlier requests)."""
    counters = router_stats.Stats("bench")
    statuses, latencies, agreed = events["status"].tolist(), events["latency_ms"].tolist(), events["agreed"].tolist()
    for i in range(BEFORE + REQUESTS):
        counters.record(VERSION, "canary", status=statuses[i], latency_ms=latencies[i])
        counters.record_agreement(VERSION, agreed[i])
        if i == BEFORE - 1:
            baseline = analysis.snapshot(json.loads(json.dumps(counters.as_json())), VERSION)
    return json.dumps(counters.as_json()), baseline


def ours(document: str, baseline: rolloutstatus.AnalysisBaseline) -> rolloutstatus.AnalysisResult:
    window = analysis.window(json.loads(document), VERSION, baseline)
    return analysis.judge(window, THRESHOLDS, min_agreement=THRESHOLDS.min_agreement)


def naive(events: dict[str, np.ndarray]) -> dict[str, object]:
    """The same judgement recomputed from the raw records with scipy."""
    status, latency, agreed = (events[k][BEFORE:] for k in ("status", "latency_ms", "agreed"))
    n = len(status)
    errors, agreements = int((status >= 500).sum()), int(agreed.sum())
    confidence = THRESHOLDS.confidence
    error_ci = scipy_stats.binomtest(errors, n).proportion_ci(confidence_level=confidence, method="wilson")
    agreement_ci = scipy_stats.binomtest(agreements, n).proportion_ci(confidence_level=confidence, method="wilson")
    alpha = (1 - confidence) / 2
    ordered = np.sort(latency)
    k = int(scipy_stats.binom.ppf(1 - alpha, n, 0.99)) + 1  # X_(k) bounds the p99 from above
    j = int(scipy_stats.binom.ppf(alpha, n, 0.99))  # X_(j) bounds it from below
    while j > 0 and scipy_stats.binom.cdf(j - 1, n, 0.99) > alpha:
        j -= 1
    p99_low, p99_high = float(ordered[j - 1]), float(ordered[min(k, n) - 1])
    limit_ms = 250.0
    return {
        "error": (float(error_ci.low), float(error_ci.high)),
        "agreement": (float(agreement_ci.low), float(agreement_ci.high)),
        "p99": (p99_low, p99_high),
        "errorRate": "Failing" if error_ci.low > 0.05 else ("Passing" if error_ci.high <= 0.05 else "Inconclusive"),
        "agreementGate": "Failing" if agreement_ci.high < 0.9 else ("Passing" if agreement_ci.low >= 0.9 else "Inconclusive"),
        "latency": "Failing" if p99_low >= limit_ms else ("Passing" if p99_high <= limit_ms else "Inconclusive"),
    }


def median_ms(run: Callable[[], object], *, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    events = make_events()
    document, baseline = router_document(events)
    result, reference = ours(document, baseline), naive(events)
    print(f"window: {result.requests} requests, verdict {result.verdict}")
    print(
        f"  ours : errorRate {result.error_rate_interval} agreement {result.agreement_interval} p99 {result.latency_p99_interval_ms} ms"
    )
    print(
        f"  naive: errorRate {[round(v, 4) for v in reference['error']]} agreement "
        f"{[round(v, 4) for v in reference['agreement']]} p99 {[round(v, 1) for v in reference['p99']]} ms"
    )
    same_intervals = all(
        abs(a - b) < 1e-4
        for a, b in zip([*result.error_rate_interval, *result.agreement_interval], [*reference["error"], *reference["agreement"]])
    )
    low, high = result.latency_p99_interval_ms
    contains = low <= reference["p99"][0] and high is not None and reference["p99"][1] <= high
    verdicts = {reference["errorRate"], reference["agreementGate"], reference["latency"]}
    same_verdict = (result.verdict == "Passing") == (verdicts == {"Passing"})
    if not (same_intervals and contains and same_verdict):
        raise SystemExit(f"the two analyses disagree: {result} vs {reference}")

    ours_ms = median_ms(lambda: ours(document, baseline), repeat=200)
    naive_ms = median_ms(lambda: naive(events), repeat=20)
    ratio = naive_ms / ours_ms
    print(f"ours  (router counters -> window -> judge): median {ours_ms:.3f} ms over 200 runs")
    print(f"naive (raw events + scipy):                median {naive_ms:.3f} ms over 20 runs")
    print(f"ratio naive/ours: {ratio:.1f}x; target: ours under 10 ms ({'met' if ours_ms < 10 else 'missed'})")
    print(f"RESULT analysis_window_ms={ours_ms:.3f} ratio={ratio:.1f}")


if __name__ == "__main__":
    main()
