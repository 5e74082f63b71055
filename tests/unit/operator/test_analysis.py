"""Analysis windows from the router's cumulative counters, and verdicts."""

from mlkube import analysis
from mlkube.api import deployment

BOUNDS = (1, 5, 10, 100, "+Inf")


def stats(requests, errors, counts, *, compared=0, agreed=0, start=1.0):
    cumulative, total = [], 0
    for bound, n in zip(BOUNDS, counts):
        total += n
        cumulative.append({"le": bound, "count": total})
    return {"startTime": start, "versions": {"2": {"requests": requests, "errors": errors,
            "latency": {"buckets": cumulative}, "agreement": {"compared": compared, "agreed": agreed}}}}


THRESHOLDS = deployment.Analysis(minRequests=50, maxErrorRate=0.01, maxLatencyP99="50ms", minAgreement=0.9)


def test_window_is_the_difference_since_the_snapshot():
    before = analysis.snapshot(stats(100, 1, [100, 0, 0, 0, 0]), 2)
    w = analysis.window(stats(300, 3, [250, 40, 10, 0, 0]), 2, before)
    assert (w.requests, w.errors) == (200, 2)
    assert analysis.quantile_ms(w.buckets, 0.99) == 10.0


def test_router_restart_starts_a_new_window():
    before = analysis.snapshot(stats(1000, 0, [1000, 0, 0, 0, 0]), 2)
    w = analysis.window(stats(10, 0, [10, 0, 0, 0, 0], start=2.0), 2, before)
    assert w.requests == 10


def test_verdicts():
    ok = analysis.window(stats(100, 0, [100, 0, 0, 0, 0]), 2, None)
    assert analysis.judge(ok, THRESHOLDS, needs_agreement=False).verdict == "Passing"
    few = analysis.window(stats(10, 0, [10, 0, 0, 0, 0]), 2, None)
    assert analysis.judge(few, THRESHOLDS, needs_agreement=False).verdict == "Inconclusive"
    errors = analysis.window(stats(100, 5, [100, 0, 0, 0, 0]), 2, None)
    result = analysis.judge(errors, THRESHOLDS, needs_agreement=False)
    assert (result.verdict, result.error_rate) == ("Failing", 0.05)
    slow = analysis.window(stats(100, 0, [50, 0, 0, 50, 0]), 2, None)
    assert analysis.judge(slow, THRESHOLDS, needs_agreement=False).verdict == "Failing"
    disagree = analysis.window(stats(100, 0, [100, 0, 0, 0, 0], compared=100, agreed=70), 2, None)
    result = analysis.judge(disagree, THRESHOLDS, needs_agreement=True)
    assert (result.verdict, result.agreement) == ("Failing", 0.7)


def test_many_errors_fail_before_the_sample_is_complete():
    early = analysis.window(stats(20, 10, [20, 0, 0, 0, 0]), 2, None)
    assert analysis.judge(early, THRESHOLDS, needs_agreement=False).verdict == "Failing"
