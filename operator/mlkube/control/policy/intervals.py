"""Confidence intervals the rollout analysis decides on, in plain ``math``.

Owns:

- ``wilson``: the Wilson score interval of a proportion (errors among requests, agreements among
  comparisons). Unlike the normal (Wald) interval it stays inside [0, 1] and keeps close to its
  nominal coverage for small samples and for proportions near 0 or 1, which is where rollout gates
  live (an error rate of 0 to 5 %).
- ``quantile_interval``: a distribution-free interval for a quantile (the latency p99) from a
  histogram's cumulative counts, by order statistics: the number of requests at or below a bound
  b is Binomial(n, F(b)) whatever the latency distribution, so exact binomial tails say which
  bucket bounds the quantile lies above and below.
- the binomial tails and the regularized incomplete beta function behind them (the A/B test's
  Student t uses the same function).

Every interval is two-sided at ``confidence``: each bound errs with probability at most
(1 - confidence) / 2, so a gate that fails only when the whole interval is past its threshold
fails a candidate that meets it at most that often per look.

Pure: no I/O. The operator does not load scipy; the unit tests check these values against it.
"""

from __future__ import annotations

import math
import statistics


def z_value(confidence: float) -> float:
    """The standard normal quantile of a two-sided interval at ``confidence`` (1.96 at 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, *, confidence: float) -> tuple[float, float] | None:
    """The Wilson score interval (lower, upper) of ``successes`` in ``n``; None without a trial."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie within 0..n, got {successes} of {n}")
    z = z_value(confidence)
    p, z2n = successes / n, z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return regularized_beta(n - k, k + 1, 1 - p)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return regularized_beta(k, n - k + 1, p)


def min_samples(q: float, *, confidence: float) -> int:
    """The fewest observations that can bound the ``q`` quantile from above at ``confidence``:
    below it, even a sample whose every value lies under a bound does not show, at that
    confidence, that the quantile does (368 for the p99 at 0.95)."""
    alpha = (1 - confidence) / 2
    return math.ceil(math.log(alpha) / math.log(q) - 1e-9)


def quantile_interval(
    buckets: tuple[tuple[float, int], ...], q: float, *, confidence: float
) -> tuple[float, float | None] | None:
    """(lower, upper) bounds of the ``q`` quantile from cumulative ``(upper bound, count)`` buckets
    (the last bound inf); None without an observation.

    The quantile lies above ``lower`` (the largest bound b whose count is too low for F(b) >= q:
    P(Binomial(n, q) <= count) <= alpha; 0 when none is) and at or below ``upper`` (the smallest
    bound whose count is too high for F(b) < q: P(Binomial(n, q) >= count) <= alpha). That is the
    order-statistic interval located in the histogram: X_(k) <= b exactly when count(b) >= k.
    ``upper`` is inf when the bound lies in the last, unbounded bucket, and None when the sample
    is smaller than ``min_samples``: no count can then rule out that the quantile lies beyond
    every observation.
    """
    n = buckets[-1][1] if buckets else 0
    if n <= 0:
        return None
    alpha = (1 - confidence) / 2
    lower = 0.0
    # P(Binomial(n, q) <= c) is at least 1/2 for c >= the median (ceil(nq) at the most): skip those.
    for bound, count in reversed(buckets):
        if count < math.ceil(n * q) and binomial_cdf(count, n, q) <= alpha:
            lower = bound
            break
    if n < min_samples(q, confidence=confidence):
        return lower, None
    upper = math.inf
    for bound, count in buckets:
        if count > math.floor(n * q) and binomial_sf(count, n, q) <= alpha:
            upper = bound
            break
    return lower, upper


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), by the continued fraction of Numerical Recipes (6.4), modified Lentz."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h
