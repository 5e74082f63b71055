"""The A/B test's sequential test (mSPRT): its likelihood ratio against a numerical integration of
the normal mixture (scipy), its always-valid p-value carried across passes in the report, and
its point: under the null, looking on every pass keeps the false-positive rate at 5 %, where
looking at the fixed-horizon p-value on every pass does not."""

import math
import re

import numpy as np
import pytest
from scipy import integrate, stats

from mlkube.api import rolloutstatus
from mlkube.control.policy import abtest, analysis, sequential

TAU = sequential.TAU


def window(*, labeled, correct=0, abs_sum=0.0, sq_sum=0.0):
    return analysis.Window(
        requests=labeled,
        errors=0,
        buckets=((5.0, labeled), (math.inf, labeled)),
        compared=0,
        agreed=0,
        labeled=labeled,
        correct=correct,
        abs_error_sum=abs_sum,
        squared_error_sum=sq_sum,
    )


def arms(a, b, *, stable=3, candidate=4):
    return abtest.Arm(stable, "stable", a), abtest.Arm(candidate, "b", b)


def mixture_likelihood_ratio(difference: float, variance: float, mixing_sd: float) -> float:
    """Lambda = integral of N(D; theta, V) / N(D; 0, V) over theta ~ N(0, mixing_sd^2), by quadrature."""

    def integrand(theta):
        return math.exp((2 * difference * theta - theta * theta) / (2 * variance)) * stats.norm.pdf(theta, 0, mixing_sd)

    posterior_mean = difference * mixing_sd**2 / (variance + mixing_sd**2)  # where the integrand peaks
    reach = 60 * mixing_sd + abs(posterior_mean)
    value, error = integrate.quad(integrand, -reach, reach, points=[posterior_mean], limit=500, epsabs=0, epsrel=1e-11)
    assert error <= 1e-8 * value
    return value


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb"),
    [(84, 100, 91, 100), (40, 50, 38, 50), (336, 400, 375, 412), (39, 40, 18, 40), (700, 1000, 590, 600), (160, 200, 166, 200)],
)
def test_the_accuracy_p_value_is_one_over_the_mixture_likelihood_ratio(xa, na, xb, nb):
    pooled = (xa + xb) / (na + nb)
    variance = pooled * (1 - pooled) * (1 / na + 1 / nb)  # of the difference, under the null
    mixing_sd = TAU * math.sqrt(pooled * (1 - pooled))  # tau in units of one prediction's sd
    expected = min(1.0, 1 / mixture_likelihood_ratio(xb / nb - xa / na, variance, mixing_sd))
    report = abtest.report(
        *arms(window(labeled=na, correct=xa), window(labeled=nb, correct=xb)), task="classification", min_labeled=20
    )
    got = report.sequential
    assert (got.method, got.tau) == ("mSPRT", TAU)
    assert got.always_valid_p_value == pytest.approx(expected, rel=1e-3)  # status keeps 4 significant digits
    z = abtest.two_proportion_z(xa, na, xb, nb)
    assert sequential.p_value(z, na, nb) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_the_mae_p_value_is_one_over_the_mixture_likelihood_ratio(seed):
    rng = np.random.default_rng(seed)
    a, b = np.abs(rng.normal(0, 1.0, 40 + 30 * seed)), np.abs(rng.normal(0.3, 1.4, 60 + 20 * seed))
    variance = a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)  # Welch's, of the difference of mean |e|
    per_prediction = variance / (1 / len(a) + 1 / len(b))
    expected = min(1.0, 1 / mixture_likelihood_ratio(b.mean() - a.mean(), variance, TAU * math.sqrt(per_prediction)))
    t = stats.ttest_ind(b, a, equal_var=False).statistic
    assert sequential.p_value(t, len(a), len(b)) == pytest.approx(expected, rel=1e-9)
    stable = window(labeled=len(a), abs_sum=a.sum(), sq_sum=(a**2).sum())
    candidate = window(labeled=len(b), abs_sum=b.sum(), sq_sum=(b**2).sum())
    report = abtest.report(*arms(stable, candidate), task="regression", min_labeled=20)
    assert report.sequential.always_valid_p_value == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(("n", "difference", "sigma"), [(50, 0.1, 0.4), (400, 0.03, 0.35), (2000, -0.5, 2.0)])
def test_equal_arms_give_the_papers_closed_form(n, difference, sigma):
    # Johari, Pekelis, Walsh: sqrt(2s^2/(2s^2 + n t^2)) exp(n^2 t^2 D^2 / (4 s^2 (2s^2 + n t^2))), t = tau * s
    s2, t2 = sigma**2, (TAU * sigma) ** 2
    expected = 0.5 * math.log(2 * s2 / (2 * s2 + n * t2)) + n * n * t2 * difference**2 / (4 * s2 * (2 * s2 + n * t2))
    z = difference / math.sqrt(2 * s2 / n)
    assert sequential.log_likelihood_ratio(z, n, n) == pytest.approx(expected, rel=1e-12)


def test_edges_and_bad_input():
    assert sequential.p_value(0.0, 50, 50) == 1.0  # no difference: Lambda < 1, capped
    assert sequential.p_value(math.inf, 5, 5) == 0.0  # two constant samples that differ
    assert sequential.always_valid(None, 0.3) == 0.3 and sequential.always_valid(0.2, 0.3) == 0.2
    with pytest.raises(ValueError, match="at least one observation"):
        sequential.log_likelihood_ratio(1.0, 0, 5)
    with pytest.raises(ValueError, match="tau must be positive"):
        sequential.log_likelihood_ratio(1.0, 5, 5, tau=0)
    with pytest.raises(ValueError, match=re.escape("within 0..1")):
        sequential.always_valid(0.2, 1.5)


def test_the_running_minimum_is_carried_from_the_previous_pass_and_its_winner_stays():
    def look(previous, a, b, **versions):
        return abtest.report(
            *arms(window(**a), window(**b), **versions), task="classification", min_labeled=50, previous=previous
        )

    early = look(None, {"labeled": 30, "correct": 29}, {"labeled": 30, "correct": 15})
    assert early.sequential.always_valid_p_value is None and early.sequential.winner is None
    assert early.sequential.conclusion == "not enough labeled feedback: 30 (version 3) and 30 (version 4) of 50 needed"
    first = look(early, {"labeled": 60, "correct": 57}, {"labeled": 60, "correct": 30})
    assert first.sequential.winner == 3 and first.sequential.always_valid_p_value < 0.001
    assert first.sequential.conclusion == (
        f"version 3 beats 4 on accuracy: 0.95 vs 0.5 (always-valid p={first.sequential.always_valid_p_value:.2g} "
        "< 0.05, mSPRT tau=0.2, 60/60 labeled)"
    )
    # the next pass's counts alone would show no difference: the minimum and the winner stay
    second = look(first, {"labeled": 400, "correct": 300}, {"labeled": 400, "correct": 300})
    assert second.sequential.always_valid_p_value == first.sequential.always_valid_p_value
    assert second.sequential.winner == 3 and second.winner is None
    # a new test (other versions), windows that started anew (a restarted router) or a finished
    # report start the sequential test afresh
    assert look(first, {"labeled": 400, "correct": 300}, {"labeled": 400, "correct": 300}, candidate=5).sequential.winner is None
    restarted = look(first, {"labeled": 55, "correct": 44}, {"labeled": 60, "correct": 48})
    assert restarted.sequential.winner is None and restarted.sequential.always_valid_p_value == 1.0
    assert restarted.sequential.conclusion == "no winner yet on accuracy: always-valid p=1 >= 0.05 (mSPRT tau=0.2, 60/55 labeled)"
    finished = first.model_copy(update={"finished_at": "2026-01-01T00:10:00Z"})
    assert look(finished, {"labeled": 400, "correct": 300}, {"labeled": 400, "correct": 300}).sequential.winner is None


def test_the_sequential_test_is_in_the_reports_status():
    report = abtest.report(
        *arms(window(labeled=40, correct=39), window(labeled=40, correct=17)), task="classification", min_labeled=10
    )
    wire = report.wire()["sequential"]
    assert wire == {
        "method": "mSPRT",
        "tau": 0.2,
        "alwaysValidPValue": wire["alwaysValidPValue"],
        "winner": 3,
        "stoppedEarly": False,
        "conclusion": report.sequential.conclusion,
    }
    assert report.p_value < wire["alwaysValidPValue"] < 0.05  # the price of being valid at every look
    assert rolloutstatus.ABTestReport.model_validate(report.wire()) == report  # it round-trips through status


def simulate_null(task: str, *, tests: int, peeks: int, per_peek: int, min_labeled: int, seed: int):
    """``tests`` A/B tests of two equally good versions (a 70/30 split), each looked at after
    every ``per_peek`` new labels, ``peeks`` times; the share of tests in which the mSPRT (carried
    from pass to pass through the report, as the operator carries it in status) and the
    fixed-horizon p-value (read at every pass) find a winner at some pass."""
    rng = np.random.default_rng(seed)
    total = peeks * per_peek
    if task == "classification":
        outcomes = rng.random((tests, total)) < 0.8  # right or wrong, the same accuracy for both
    else:
        outcomes = np.abs(rng.normal(0.0, 1.0, (tests, total)))  # absolute errors, the same law for both
    to_a = rng.random((tests, total)) < 0.7
    sequential_winners = fixed_winners = 0
    for row, in_a in zip(outcomes, to_a):
        previous, fixed_found = None, False
        for peek in range(1, peeks + 1):
            seen = slice(0, peek * per_peek)
            a_rows, b_rows = row[seen][in_a[seen]], row[seen][~in_a[seen]]
            if task == "classification":
                a, b = (
                    window(labeled=a_rows.size, correct=int(a_rows.sum())),
                    window(labeled=b_rows.size, correct=int(b_rows.sum())),
                )
            else:
                a = window(labeled=a_rows.size, abs_sum=float(a_rows.sum()), sq_sum=float((a_rows**2).sum()))
                b = window(labeled=b_rows.size, abs_sum=float(b_rows.sum()), sq_sum=float((b_rows**2).sum()))
            previous = abtest.report(*arms(a, b), task=task, min_labeled=min_labeled, previous=previous)
            fixed_found = fixed_found or previous.winner is not None
            if previous.sequential.winner is not None and fixed_found:
                break
        sequential_winners += previous.sequential.winner is not None
        fixed_winners += fixed_found
    return sequential_winners / tests, fixed_winners / tests


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_looking_at_every_pass_keeps_the_false_positive_rate_at_alpha(task):
    sequential_rate, fixed_rate = simulate_null(task, tests=2000, peeks=20, per_peek=40, min_labeled=50, seed=7)
    # 2000 tests: the Monte Carlo standard error of a 5 % rate is 0.5 %
    assert sequential_rate <= 0.05 + 0.01, sequential_rate
    assert fixed_rate > 0.15, fixed_rate  # the fixed-horizon p-value peeked at 20 times: several times alpha
