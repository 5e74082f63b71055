"""The intervals rollout analysis decides on, against scipy's reference values.

statsmodels is not installed in this environment; scipy provides the same references:
``binomtest(...).proportion_ci(method="wilson")`` is the Wilson score interval and ``binom`` the exact
binomial distribution behind the order-statistic interval of a quantile.
"""

import bisect
import itertools
import math
import random
import re

import pytest
from scipy import special, stats

from mlkube.control.policy import intervals
from mlkube.serving import stats as router_stats

ROUTER_BOUNDS = (*map(float, router_stats.LATENCY_BUCKETS_MS), math.inf)


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
def test_z_matches_scipy(confidence):
    assert intervals.z_value(confidence) == pytest.approx(stats.norm.ppf(0.5 + confidence / 2), rel=1e-12)


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 10), (1, 10), (5, 10), (10, 10), (2, 18), (16, 18), (3, 400), (995, 1000), (12, 100_000)]
)
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, confidence):
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    lower, upper = intervals.wilson(k, n, confidence=confidence)
    assert (lower, upper) == (pytest.approx(reference.low, abs=1e-12), pytest.approx(reference.high, abs=1e-12))


def test_wilson_edges():
    assert intervals.wilson(0, 0, confidence=0.95) is None
    assert intervals.wilson(0, 50, confidence=0.95)[0] == 0.0 and intervals.wilson(50, 50, confidence=0.95)[1] == 1.0
    with pytest.raises(ValueError, match=re.escape("within 0..n")):
        intervals.wilson(11, 10, confidence=0.95)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        intervals.wilson(1, 10, confidence=1.0)


@pytest.mark.parametrize("n", [1, 10, 367, 368, 1000, 100_000])
@pytest.mark.parametrize("p", [0.5, 0.99])
def test_binomial_tails_match_scipy(n, p):
    for k in {0, 1, n // 2, int(n * p) - 3, int(n * p), int(n * p) + 3, n - 1, n}:
        assert intervals.binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-8, abs=1e-300)
        assert intervals.binomial_sf(k, n, p) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-8, abs=1e-300)


@pytest.mark.parametrize(("a", "b", "x"), [(0.5, 0.5, 0.3), (3, 200, 0.01), (990, 11, 0.99), (99_000, 1001, 0.99), (5, 5, 0.5)])
def test_regularized_beta_matches_scipy(a, b, x):
    assert intervals.regularized_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_min_samples_is_where_an_upper_bound_becomes_possible(confidence):
    alpha = (1 - confidence) / 2
    n = intervals.min_samples(0.99, confidence=confidence)
    assert stats.binom.sf(n - 1, n, 0.99) <= alpha < stats.binom.sf(n - 2, n - 1, 0.99)  # P(all n at or below)
    assert intervals.min_samples(0.99, confidence=0.95) == 368


def histogram(latencies):
    """Cumulative (bound, count) over the router's latency buckets, as the router exports them."""
    counts = [0] * len(ROUTER_BOUNDS)
    for value in latencies:
        counts[bisect.bisect_left(ROUTER_BOUNDS, value)] += 1
    return tuple(zip(ROUTER_BOUNDS, itertools.accumulate(counts)))


def order_statistic_ranks(n, q, confidence):
    """From scipy: the largest rank j with P(Binom(n, q) <= j - 1) <= alpha (X_(j) lies above the q
    quantile with probability at most alpha) and the smallest rank k with P(Binom(n, q) >= k) <= alpha
    (X_(k) lies below it with probability at most alpha); None where no rank qualifies."""
    alpha = (1 - confidence) / 2
    k = int(stats.binom.ppf(1 - alpha, n, q)) + 1
    while k > 1 and stats.binom.sf(k - 2, n, q) <= alpha:
        k -= 1
    while k <= n and stats.binom.sf(k - 1, n, q) > alpha:
        k += 1
    j = int(stats.binom.ppf(alpha, n, q)) + 1
    while j > 0 and stats.binom.cdf(j - 1, n, q) > alpha:
        j -= 1
    while j < n and stats.binom.cdf(j, n, q) <= alpha:
        j += 1
    return (j or None), (k if k <= n else None)


@pytest.mark.parametrize(("seed", "n"), [(0, 50), (1, 400), (2, 1000), (3, 3000), (4, 20_000)])
def test_the_quantile_interval_is_the_order_statistic_interval_located_in_the_histogram(seed, n):
    rng = random.Random(seed)
    latencies = sorted(rng.lognormvariate(math.log(20), 1.2) for _ in range(n))
    lower_rank, upper_rank = order_statistic_ranks(n, 0.99, 0.95)
    lower, upper = intervals.quantile_interval(histogram(latencies), 0.99, confidence=0.95)
    # X_(j) is a lower confidence bound of the p99: the p99 lies above the bucket bound just under it.
    expected_lower = max((b for b in ROUTER_BOUNDS if b < latencies[lower_rank - 1]), default=0.0) if lower_rank else 0.0
    assert lower == expected_lower
    if upper_rank is None:
        assert upper is None and n < intervals.min_samples(0.99, confidence=0.95)
    else:  # X_(k) is an upper confidence bound: the p99 lies at or below the bucket bound holding it
        assert upper == min(b for b in ROUTER_BOUNDS if b >= latencies[upper_rank - 1])


@pytest.mark.parametrize("share_within", [0.99, 0.9895])
def test_the_quantile_interval_covers_the_true_p99_at_its_confidence(share_within):
    """Latencies whose p99 sits on a bucket bound (250 ms within, 0.99) or just past it (0.9895
    within 250 ms), where the bucket bounds do not widen the interval: on 400 samples of 2,000
    requests the interval holds the true p99 at least 95 % of the time (each side errs at most
    2.5 % of the time)."""
    sigma = 0.9
    mu = math.log(250) - sigma * stats.norm.ppf(share_within)  # P(latency <= 250 ms) = share_within
    true_p99 = math.exp(mu + sigma * stats.norm.ppf(0.99))
    rng = random.Random(7)
    missed = 0
    for _ in range(400):
        lower, upper = intervals.quantile_interval(
            histogram(rng.lognormvariate(mu, sigma) for _ in range(2000)), 0.99, confidence=0.95
        )
        missed += not (lower < true_p99 <= upper)
    assert 0 < missed <= 20  # the bound is tight, not trivially wide, and holds


def test_the_quantile_interval_edges():
    assert intervals.quantile_interval((), 0.99, confidence=0.95) is None
    assert intervals.quantile_interval(((1.0, 0), (math.inf, 0)), 0.99, confidence=0.95) is None
    slow = ((1.0, 0), (10_000.0, 0), (math.inf, 1000))  # every request beyond the last bound
    assert intervals.quantile_interval(slow, 0.99, confidence=0.95) == (10_000.0, math.inf)
