"""Each drift statistic against scipy's reference implementation, on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from mlkube.ml import drift_methods, drift_wasserstein


def _samples(kind: str, n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0, 1, n), rng.normal(0.3, 1.2, m)
    if kind == "same":
        return rng.normal(0, 1, n), rng.normal(0, 1, m)
    if kind == "ties":
        return rng.integers(0, 4, n).astype(float), rng.integers(0, 6, m).astype(float)
    if kind == "counts":  # many ties over a wide range: cells holding a single value
        return rng.poisson(12, n).astype(float), rng.poisson(12.5, m).astype(float)
    if kind == "far_from_zero":  # sums of raw values would cancel most digits
        return rng.normal(1e9, 1, n), rng.normal(1e9 + 0.1, 1, m)
    if kind == "heavy_tail":
        return rng.lognormal(0, 2, n), rng.lognormal(0.2, 2, m)
    if kind == "resampled":  # the window repeats reference values exactly
        reference = rng.normal(0, 1, n)
        return reference, reference[rng.integers(0, n, m)]
    if kind == "constant":
        return np.full(n, 3.0), np.full(m, 3.0)
    raise AssertionError(kind)


KINDS = ["normal", "same", "ties", "counts", "far_from_zero", "heavy_tail", "resampled", "constant"]
SIZES = [(1, 1), (1, 7), (7, 3), (50, 50), (200, 1500), (3000, 400), (997, 10_007), (20_000, 60_000)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("n", "m"), SIZES)
def test_wasserstein_equals_scipy(kind, n, m):
    reference, current = _samples(kind, n, m, seed=n + m)
    expected = stats.wasserstein_distance(reference, current)
    assert drift_wasserstein.distance(reference, current) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_wasserstein_ignores_order_and_normalises_by_reference_std():
    reference, current = _samples("normal", 5000, 8000, seed=1)
    shuffled = np.random.default_rng(2).permutation(current)
    raw = stats.wasserstein_distance(reference, current)
    assert drift_wasserstein.distance(np.sort(reference), shuffled) == pytest.approx(raw, rel=1e-9)
    normalised = drift_methods.wasserstein_normalised(np.sort(reference), np.sort(current), float(reference.std()))
    assert normalised == pytest.approx(raw / reference.std(), rel=1e-9)
    assert drift_methods.wasserstein_normalised(np.ones(10), np.full(10, 2.0), 0.0) == pytest.approx(1 / 1e-3)


@pytest.mark.parametrize("kind", ["normal", "same", "ties", "heavy_tail", "resampled"])
@pytest.mark.parametrize(("n", "m"), [(7, 3), (50, 50), (200, 1500), (3000, 400), (12_000, 30_000), (20_000, 9_000)])
def test_ks_p_value_equals_scipy_exact_and_asymptotic(kind, n, m):
    reference, current = _samples(kind, n, m, seed=n * m)
    expected = stats.ks_2samp(reference, current).pvalue
    actual = drift_methods.ks_p_value(np.sort(reference), np.sort(current))
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-300)


def _counts(seed: int, buckets: int, zeros: tuple[int, ...] = ()) -> np.ndarray:
    counts = np.random.default_rng(seed).integers(1, 500, buckets)
    counts[list(zeros)] = 0
    return counts


@pytest.mark.parametrize(("ref_zeros", "cur_zeros"), [((), ()), ((3,), ()), ((), (0, 1)), ((2,), (4,))])
def test_jensen_shannon_equals_scipy(ref_zeros, cur_zeros):
    reference, current = _counts(1, 6, ref_zeros), _counts(2, 6, cur_zeros)
    expected = distance.jensenshannon(reference, current)
    assert drift_methods.jensen_shannon(reference, current) == pytest.approx(expected, rel=1e-12)
    assert drift_methods.jensen_shannon(reference, reference * 3) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(("ref_zeros", "cur_zeros"), [((), ()), ((5,), ()), ((), (0,)), ((2,), (2,))])
def test_chi2_p_value_equals_scipy_contingency_test(ref_zeros, cur_zeros):
    reference, current = _counts(3, 6, ref_zeros), _counts(4, 6, cur_zeros)
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]  # scipy refuses a bucket empty on both sides
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert drift_methods.chi2_p_value(reference, current) == pytest.approx(expected, rel=1e-9)


def test_chi2_of_a_single_bucket_is_no_evidence():
    assert drift_methods.chi2_p_value(np.array([10, 0]), np.array([99, 0])) == 1.0


def test_psi_matches_its_definition_and_fills_empty_buckets_with_epsilon():
    reference = np.array([50, 30, 20, 0])
    current = np.array([25, 25, 25, 25])
    p = np.array([0.5, 0.3, 0.2, drift_methods.PSI_EPSILON])
    q = np.full(4, 0.25)
    assert drift_methods.psi(reference, current) == pytest.approx(((q - p) * np.log(q / p)).sum(), rel=1e-12)
    assert drift_methods.psi(reference, reference * 10) == pytest.approx(0.0, abs=1e-12)
    assert drift_methods.psi(reference, current) == pytest.approx(drift_methods.psi(current, reference), rel=1e-12)


@pytest.mark.parametrize(
    ("method", "threshold", "score", "drifted"),
    [
        ("ks", 0.05, 0.049, True),
        ("ks", 0.05, 0.05, False),
        ("chi2", 0.01, 0.2, False),
        ("wasserstein", 0.1, 0.1, True),
        ("psi", 0.2, 0.19, False),
        ("jensenshannon", 0.1, 0.5, True),
    ],
)
def test_p_values_drift_below_and_distances_at_or_above_the_threshold(method, threshold, score, drifted):
    assert drift_methods.is_drifted(method, score, threshold) is drifted


def test_severity_is_one_at_the_threshold_on_every_scale():
    assert drift_methods.severity("ks", 0.05, 0.05) == pytest.approx(1.0)
    assert drift_methods.severity("ks", 0.05**2, 0.05) == pytest.approx(2.0)
    assert drift_methods.severity("chi2", 0.0, 0.05) > 100
    assert drift_methods.severity("wasserstein", 0.3, 0.1) == pytest.approx(3.0)


def test_chi2_on_two_buckets_equals_the_two_proportion_z_test_evidently_uses():
    reference, current = np.array([30, 70]), np.array([45, 55])
    pooled = (30 + 45) / 200
    z = (0.30 - 0.45) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert drift_methods.chi2_p_value(reference, current) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
