"""The A/B test's sequential test: a mixture sequential probability ratio test (mSPRT) whose
always-valid p-value may be looked at on every pass without inflating the false-positive rate.

Reference: R. Johari, L. Pekelis, D. Walsh, "Always Valid Inference: Bringing Sequential
Analysis to A/B Testing" (arXiv:1512.04922, 2015; with P. Koomen in Operations Research 70(3),
2022), the normal-mixture mSPRT for a difference of two means.

The statistic. After n_A and n_B labeled predictions the difference of the metric's means
(candidate minus stable) D is approximately normal around the true difference theta, with
variance V = sigma^2 * h, where h = 1/n_A + 1/n_B and sigma^2 is the per-prediction variance
(``abtest`` estimates it from the data: the pooled p(1-p) for accuracy; for mae the Welch
variance, sigma^2 = V / h). Mixing the alternative theta ~ N(0, tau^2 sigma^2), the likelihood
ratio against theta = 0 is

    Lambda_n = integral N(D; theta, V) / N(D; 0, V) dN(theta; 0, tau^2 sigma^2)
             = sqrt(h / (h + tau^2)) * exp(z^2 tau^2 / (2 (h + tau^2))),      z = D / sqrt(V),

so it depends on the data only through the fixed-horizon test statistic z and the arm sizes.
With n_A = n_B = n (h = 2/n) this is the paper's
sqrt(2 sigma^2 / (2 sigma^2 + n tau'^2)) exp(n^2 tau'^2 D^2 / (4 sigma^2 (2 sigma^2 + n tau'^2)))
with tau' = tau sigma. Under theta = 0, Lambda is a nonnegative martingale with mean 1 in the
information time 1/V (whatever the split, as long as it does not depend on the outcomes), so
by Ville's inequality P(Lambda_n >= 1/alpha for some n) <= alpha: the always-valid p-value

    p_n = min(1, min over the passes m <= n of 1 / Lambda_m)

is below alpha at some pass with probability at most alpha however often it is looked at.
sigma^2 is a plug-in estimate, so the guarantee is asymptotic (the paper's section on
unknown variance); the test is only consulted once each arm has ``analysis.minRequests``
labeled predictions, and a simulation under the null in the unit tests checks the
false-positive rate.

``TAU`` is the mixing standard deviation in units of sigma: the effect sizes the test is quickest
to detect are around it (accuracy 0.80 against 0.88 differs by about 0.2 sigma, sigma ~ 0.37).
The test keeps its false-positive guarantee for any tau; tau only trades speed on small effects
against speed on large ones.

Pure: plain ``math``, no I/O, no clock (the operator loads no scipy; the unit tests compare
Lambda with a numerical integration of the mixture).
"""

from __future__ import annotations

import math

METHOD = "mSPRT"
TAU = 0.2


def log_likelihood_ratio(z: float, n_a: int, n_b: int, *, tau: float = TAU) -> float:
    """log Lambda of the normal-mixture SPRT for a difference whose standardized statistic is
    ``z`` after ``n_a`` and ``n_b`` observations (infinite for an infinite ``z``: a difference
    between two constant samples)."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError(f"each arm needs at least one observation, got n_a={n_a}, n_b={n_b}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if math.isinf(z):
        return math.inf
    h, t2 = 1 / n_a + 1 / n_b, tau * tau
    return 0.5 * math.log(h / (h + t2)) + 0.5 * z * z * t2 / (h + t2)


def p_value(z: float, n_a: int, n_b: int, *, tau: float = TAU) -> float:
    """1 / Lambda of this look alone, capped at 1 (``always_valid`` takes the running minimum)."""
    log_lambda = log_likelihood_ratio(z, n_a, n_b, tau=tau)
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def always_valid(previous: float | None, current: float) -> float:
    """The always-valid p-value after this look: the smaller of this look's and the previous
    running minimum (None: this is the first look)."""
    if not 0 <= current <= 1 or (previous is not None and not 0 <= previous <= 1):
        raise ValueError(f"p-values lie within 0..1, got previous={previous}, current={current}")
    return current if previous is None else min(previous, current)
