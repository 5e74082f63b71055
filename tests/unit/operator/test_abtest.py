"""The A/B test report: per-version figures, the significance tests (checked against scipy), the winner."""

import math
import re

import pytest
from scipy import stats

from mlkube.control.policy import abtest, analysis

BUCKETS = ((1.0, 10), (5.0, 90), (10.0, 99), (math.inf, 100))


def window(*, labeled=0, correct=0, abs_sum=0.0, sq_sum=0.0, requests=100, errors=0, buckets=BUCKETS):
    return analysis.Window(
        requests=requests,
        errors=errors,
        buckets=buckets,
        compared=0,
        agreed=0,
        labeled=labeled,
        correct=correct,
        abs_error_sum=abs_sum,
        squared_error_sum=sq_sum,
    )


def arms(a: analysis.Window, b: analysis.Window):
    return abtest.Arm(3, "stable", a), abtest.Arm(4, "b", b)


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(84, 100, 91, 100), (40, 50, 38, 50), (336, 400, 375, 412), (3, 9, 9, 9)])
def test_two_proportion_p_value_matches_scipy(xa, na, xb, nb):
    pooled = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    expected = 2 * stats.norm.sf(abs(z))
    assert abtest.two_proportion_p_value(xa, na, xb, nb) == pytest.approx(expected, rel=1e-9)


def test_two_proportion_edges():
    assert abtest.two_proportion_p_value(10, 10, 20, 20) == 1.0  # all correct in both arms
    assert abtest.two_proportion_p_value(0, 0, 5, 10) is None
    with pytest.raises(ValueError, match=re.escape("within 0..n")):
        abtest.two_proportion_p_value(11, 10, 5, 10)


@pytest.mark.parametrize("seed", range(4))
def test_welch_p_value_matches_scipy(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b = np.abs(rng.normal(1.0, 0.8, 30 + seed * 17)), np.abs(rng.normal(1.3, 1.5, 12 + seed * 40))
    expected = stats.ttest_ind(b, a, equal_var=False).pvalue
    got = abtest.welch_p_value((len(a), a.sum(), (a**2).sum()), (len(b), b.sum(), (b**2).sum()))
    assert got == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize(("t", "df"), [(0.0, 3), (2.1, 5), (0.3, 40.5), (-5.0, 3.2), (12.0, 2.0), (1.96, 10_000)])
def test_student_t_matches_scipy(t, df):
    assert abtest.student_t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9, abs=1e-300)


def test_welch_edges():
    assert abtest.welch_p_value((1, 1.0, 1.0), (5, 5.0, 6.0)) is None
    assert abtest.welch_p_value((3, 3.0, 3.0), (3, 3.0, 3.0)) == 1.0
    assert abtest.welch_p_value((3, 3.0, 3.0), (3, 6.0, 12.0)) == 0.0


def test_a_significantly_better_candidate_wins_on_accuracy():
    report = abtest.report(
        *arms(window(labeled=398, correct=334), window(labeled=412, correct=375)), task="classification", min_labeled=50
    )
    stable, candidate = report.versions
    assert (stable.version, stable.role, stable.metric, stable.value) == (3, "stable", "accuracy", 0.8392)
    assert (candidate.requests, candidate.error_rate, candidate.latency_p50_ms, candidate.latency_p99_ms) == (100, 0.0, 5.0, 10.0)
    assert (candidate.labeled, candidate.value, candidate.rmse) == (412, 0.9102, None)
    assert report.winner == 4 and report.difference == pytest.approx(0.071, abs=1e-4) and report.p_value < 0.01
    assert report.conclusion == f"version 4 beats 3 on accuracy: 0.91 vs 0.839 (p={report.p_value:.2g}, 412/398 labeled)"


def test_a_significantly_worse_candidate_makes_the_stable_version_the_winner():
    report = abtest.report(
        *arms(window(labeled=40, correct=39), window(labeled=40, correct=17)), task="classification", min_labeled=10
    )
    assert report.winner == 3 and report.difference == pytest.approx(-0.55)
    assert report.conclusion.startswith("version 3 beats 4 on accuracy: 0.975 vs 0.425 (p=")


def test_no_winner_without_enough_labels_or_without_significance():
    few = abtest.report(
        *arms(window(labeled=12, correct=12), window(labeled=9, correct=1)), task="classification", min_labeled=50
    )
    assert few.winner is None and few.p_value is not None
    assert few.conclusion == "not enough labeled feedback: 12 (version 3) and 9 (version 4) of 50 needed"
    close = abtest.report(
        *arms(window(labeled=100, correct=84), window(labeled=100, correct=86)), task="classification", min_labeled=50
    )
    assert close.winner is None and close.p_value > 0.05
    assert close.conclusion == "no significant difference on accuracy: version 4 0.86 vs 3 0.84 (p=0.69 >= 0.05, 100/100 labeled)"
    empty = abtest.report(*arms(window(requests=0, buckets=()), window()), task="classification", min_labeled=0)
    assert empty.versions[0].error_rate is None and empty.versions[0].value is None and empty.difference is None
    assert empty.conclusion == "not enough labeled feedback: 0 (version 3) and 0 (version 4) of 2 needed"


def test_regression_compares_mean_absolute_errors():
    worse = window(labeled=60, abs_sum=60 * 2.0, sq_sum=60 * 5.0)  # mean |e| 2, variance of |e| about 1
    better = window(labeled=60, abs_sum=60 * 1.2, sq_sum=60 * 1.8)
    report = abtest.report(*arms(worse, better), task="regression", min_labeled=50)
    assert report.metric == "mae" and [v.value for v in report.versions] == [2.0, 1.2]
    assert [v.rmse for v in report.versions] == [pytest.approx(math.sqrt(5.0), abs=1e-4), pytest.approx(math.sqrt(1.8), abs=1e-4)]
    assert report.winner == 4 and report.difference == pytest.approx(-0.8)  # lower is better
    assert report.sequential.winner == 4 and report.sequential.conclusion.startswith("version 4 beats 3 on mae: 1.2 vs 2 (")
    with pytest.raises(ValueError, match="task"):
        abtest.report(*arms(worse, better), task="ranking", min_labeled=50)


def test_the_report_is_valid_status():
    report = abtest.report(
        *arms(window(labeled=40, correct=39), window(labeled=40, correct=17)), task="classification", min_labeled=10
    )
    wire = report.wire()
    assert wire["winner"] == 3 and wire["metric"] == "accuracy" and "pValue" in wire and "finishedAt" not in wire
    assert wire["versions"][1] == {
        "version": 4,
        "role": "b",
        "requests": 100,
        "errorRate": 0.0,
        "latencyP50Ms": 5.0,
        "latencyP99Ms": 10.0,
        "labeled": 40,
        "metric": "accuracy",
        "value": 0.425,
    }


def test_anomaly_flags_are_judged_on_accuracy_and_clustering_is_not_judged():
    report = abtest.report(
        *arms(window(labeled=40, correct=39), window(labeled=40, correct=17)), task="anomaly_detection", min_labeled=10
    )
    assert report.metric == "accuracy" and report.winner == 3
    assert "clustering" not in abtest.JUDGED_TASKS
    with pytest.raises(ValueError, match="task: expected one of classification, regression, anomaly_detection"):
        abtest.report(*arms(window(), window()), task="clustering", min_labeled=10)
