"""The drift statistics on plain numpy arrays: one function per method, and their scales.

Owns the numbers: Kolmogorov-Smirnov and chi-square (p-values), Wasserstein distance (normalised
by the reference's standard deviation), Jensen-Shannon distance and the Population Stability
Index. Each agrees with scipy's reference implementation (``scipy.stats.ks_2samp``,
``scipy.stats.chi2_contingency(correction=False)``, ``scipy.stats.wasserstein_distance``,
``scipy.spatial.distance.jensenshannon``); the unit tests hold them to it. Kolmogorov-Smirnov
and Wasserstein (``drift_wasserstein``) take sorted samples, the bucket methods (PSI,
Jensen-Shannon, chi-square) counts per bucket: ``drift.DriftDetector`` prepares the reference
once at ``fit`` and each window column once (one sort). Must not know about DataFrames, columns or spec
fields.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from mlkube.ml import drift_wasserstein

P_VALUE_METHODS = frozenset({"ks", "chi2"})
DISTANCE_METHODS = frozenset({"psi", "jensenshannon", "wasserstein"})
METHODS = P_VALUE_METHODS | DISTANCE_METHODS
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
CATEGORICAL_ONLY = frozenset({"chi2"})

# Per-method defaults when the user gives no threshold. p-values: the usual 5% level (Evidently's
# too). Wasserstein (in reference standard deviations) and Jensen-Shannon (natural log, range
# 0..0.83): Evidently's 0.1. PSI: 0.2, inside the conventional "significant shift" band 0.1-0.25
# and the value the API examples use.
DEFAULT_THRESHOLDS = {"ks": 0.05, "chi2": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}

# PSI is undefined for a bucket that is empty on one side (log of zero). Such a proportion is
# replaced by this value, a bucket holding 0.01% of the rows: large enough that one empty bucket
# does not dominate the index, small enough that a bucket that truly emptied still shows.
PSI_EPSILON = 1e-4

# Wasserstein is divided by the reference's standard deviation, floored here so that a constant
# reference column gives a large finite score rather than a division by zero (Evidently's floor).
MIN_NORMALISING_STD = 1e-3

# Above this sample size scipy's ks_2samp switches from the exact distribution to Smirnov's
# asymptotic one; we switch at the same size so that both agree everywhere.
KS_EXACT_MAX_N = 10_000

# p-values are floored here before taking logarithms (a p-value of exactly 0 is a real result).
_SMALLEST_P = 1e-300


def ks_p_value(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value, as ``scipy.stats.ks_2samp(method="auto")``.

    The statistic D = sup |F_ref - F_cur| is attained at a reference value or just left of one:
    between two reference values F_ref is constant and F_cur only grows. So D needs the current
    CDF at the reference points only, 2n binary searches into the sorted window instead of a
    merge of both samples.
    """
    n, m = len(reference_sorted), len(current_sorted)
    if max(n, m) <= KS_EXACT_MAX_N:
        return float(stats.ks_2samp(reference_sorted, current_sorted).pvalue)
    ref_right = np.searchsorted(reference_sorted, reference_sorted, side="right") / n
    ref_left = np.searchsorted(reference_sorted, reference_sorted, side="left") / n
    cur_right = np.searchsorted(current_sorted, reference_sorted, side="right") / m
    cur_left = np.searchsorted(current_sorted, reference_sorted, side="left") / m
    d = max(np.abs(ref_right - cur_right).max(), np.abs(ref_left - cur_left).max())
    effective_n = round(n * m / (n + m))
    return float(np.clip(stats.kstwo.sf(d, effective_n), 0.0, 1.0))


def wasserstein_normalised(reference_sorted: np.ndarray, current_sorted: np.ndarray, reference_std: float) -> float:
    """Wasserstein distance in units of the reference's standard deviation (one threshold fits all columns)."""
    return drift_wasserstein.sorted_distance(reference_sorted, current_sorted) / max(reference_std, MIN_NORMALISING_STD)


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two bucket histograms, as scipy's ``jensenshannon``."""
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    mixture = (p + q) / 2
    divergence = (special.rel_entr(p, mixture).sum() + special.rel_entr(q, mixture).sum()) / 2
    return float(math.sqrt(max(divergence, 0.0)))


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population Stability Index sum((cur - ref) * ln(cur / ref)) over buckets, empty ones at PSI_EPSILON."""
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    return float(((q - p) * np.log(q / p)).sum())


def chi2_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Chi-square test of homogeneity on the 2 x buckets table, without Yates' correction.

    A two-sample test: unlike a goodness-of-fit test against the reference's frequencies, it
    does not pretend the reference proportions are exact, and a bucket empty in the reference
    (a category never seen) has a finite expected count. Buckets empty on both sides are dropped.
    """
    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    return float(stats.chi2.sf(statistic, table.shape[1] - 1))


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """p-value methods drift below the threshold (a significance level); distances at or above it."""
    if method in P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def severity(method: str, score: float, threshold: float) -> float:
    """How far past its threshold a score is, on one scale for every method: 1.0 at the threshold.

    Distances: score / threshold. p-values: log(p) / log(threshold), so p = threshold**2 counts
    twice as severe as p = threshold. Used to rank features, never to decide drift.
    """
    if method in P_VALUE_METHODS:
        return math.log(max(score, _SMALLEST_P)) / math.log(threshold)
    return score / threshold
