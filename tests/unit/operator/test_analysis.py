"""Analysis windows from the router's cumulative counters, and verdicts."""

from mlkube.api import deployment
from mlkube.control.policy import analysis

BOUNDS = (1, 5, 10, 100, "+Inf")


def stats(requests, errors, counts, *, compared=0, agreed=0, start=1.0):
    cumulative, total = [], 0
    for bound, n in zip(BOUNDS, counts):
        total += n
        cumulative.append({"le": bound, "count": total})
    return {
        "startTime": start,
        "versions": {
            "2": {
                "requests": requests,
                "errors": errors,
                "latency": {"buckets": cumulative},
                "agreement": {"compared": compared, "agreed": agreed},
            }
        },
    }


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


def test_clients_bad_requests_are_not_the_candidates_errors():
    doc = stats(100, 30, [100, 0, 0, 0, 0])
    doc["versions"]["2"]["serverErrors"] = 0  # 30 requests were 400s: missing features, say
    result = analysis.judge(analysis.window(doc, 2, None), THRESHOLDS, needs_agreement=False)
    assert (result.verdict, result.error_rate) == ("Passing", 0.0)
    doc["versions"]["2"]["serverErrors"] = 3
    assert analysis.judge(analysis.window(doc, 2, None), THRESHOLDS, needs_agreement=False).verdict == "Failing"


def test_a_failing_verdict_names_each_broken_threshold():
    bad = analysis.window(stats(100, 5, [50, 0, 0, 50, 0], compared=100, agreed=70), 2, None)
    result = analysis.judge(bad, THRESHOLDS, needs_agreement=True)
    assert result.verdict == "Failing" and result.compared == 100
    assert result.failed_checks == [
        "errorRate 0.05 > maxErrorRate 0.01 (5 of 100 requests)",
        "latencyP99 100ms > maxLatencyP99 50ms",
        "agreement 0.7 < minAgreement 0.9 (70 of 100 predictions)",
    ]
    assert (
        analysis.judge(
            analysis.window(stats(100, 0, [100, 0, 0, 0, 0]), 2, None), THRESHOLDS, needs_agreement=False
        ).failed_checks
        == []
    )


def test_quality_counters_are_windowed_like_the_traffic():
    def with_quality(doc, labeled, correct, abs_sum, sq_sum):
        doc["versions"]["2"]["quality"] = {
            "labeled": labeled,
            "correct": correct,
            "absErrorSum": abs_sum,
            "squaredErrorSum": sq_sum,
        }
        return doc

    before = analysis.snapshot(with_quality(stats(100, 0, [100, 0, 0, 0, 0]), 10, 8, 1.5, 2.5), 2)
    assert (before.labeled, before.correct, before.abs_error_sum, before.squared_error_sum) == (10, 8, 1.5, 2.5)
    w = analysis.window(with_quality(stats(150, 0, [150, 0, 0, 0, 0]), 30, 20, 4.0, 7.0), 2, before)
    assert (w.labeled, w.correct, w.abs_error_sum, w.squared_error_sum) == (20, 12, 2.5, 4.5)
    stored = {k: v for k, v in before.wire().items() if k not in ("labeled", "correct", "absErrorSum", "squaredErrorSum")}
    old_baseline = deployment.AnalysisBaseline.model_validate(stored)  # written by a router without quality counters
    assert analysis.window(with_quality(stats(150, 0, [150, 0, 0, 0, 0]), 30, 20, 4.0, 7.0), 2, old_baseline).labeled == 30
    assert analysis.window(stats(150, 0, [150, 0, 0, 0, 0]), 2, None).labeled == 0  # a router without quality counters
