"""CBPE from the router's histogram against direct computations on synthetic scores: the estimate
matches the realised metric when the probabilities are calibrated, is low for an uncertain
candidate, and (what it cannot tell) overstates an overconfident one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from mlkube.control.policy import cbpe
from mlkube.serving import scores

SEEDS = range(5)


def histogram(p: np.ndarray) -> tuple[list[int], list[float]]:
    """What the router accumulates for these positive-class probabilities."""
    counted = scores.Scores()
    for value in p:
        counted.add(confidence=max(value, 1 - value), positive=float(value))
    return counted.counts, counted.sums


def direct_cbpe_auc(p: np.ndarray) -> float:
    """NannyML's construction on the raw scores: expected TP and FP summed over every distinct threshold."""
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    tps, fps = np.cumsum(ranked), np.cumsum(1 - ranked)
    last = np.r_[np.diff(ranked) != 0, True]  # one point per distinct score
    tpr = np.r_[0, tps[last] / tps[-1]]
    fpr = np.r_[0, fps[last] / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def calibrated(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Scores from a logistic model and labels drawn with exactly those probabilities."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(0, 2.5, n)))
    return p, rng.random(n) < p


@pytest.mark.parametrize("seed", SEEDS)
def test_the_binned_estimate_equals_the_direct_construction_and_the_realised_auc(seed):
    p, y = calibrated(seed)
    counts, sums = histogram(p)
    estimate = cbpe.expected_roc_auc(counts, sums)
    assert estimate == pytest.approx(direct_cbpe_auc(p), abs=0.003)  # 100 bins cost less than 0.003
    assert abs(estimate - metrics.roc_auc_score(y, p)) < 0.03  # sampling of 4000 labels, not bias
    positives, negatives = cbpe.expected_counts(counts, sums)
    assert (positives, negatives) == pytest.approx((p.sum(), (1 - p).sum()))


@pytest.mark.parametrize("seed", SEEDS)
def test_expected_accuracy_is_the_realised_accuracy_of_calibrated_scores(seed):
    p, y = calibrated(seed)
    confidence = np.maximum(p, 1 - p)
    estimate = cbpe.expected_accuracy(len(p), float(confidence.sum()))
    realised = float(np.mean((p >= 0.5) == y))
    assert abs(estimate - realised) < 0.025
    lower, upper = cbpe.accuracy_interval(len(p), float(confidence.sum()), confidence=0.95)
    assert lower < estimate < upper


def test_the_auc_interval_covers_the_realised_auc_at_its_level():
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        p = 1 / (1 + np.exp(-rng.normal(0, 1.5, 300)))
        y = rng.random(300) < p
        counts, sums = histogram(p)
        auc = cbpe.expected_roc_auc(counts, sums)
        lower, upper = cbpe.roc_auc_interval(auc, *cbpe.expected_counts(counts, sums), confidence=0.95)
        covered += lower <= metrics.roc_auc_score(y, p) <= upper
    assert covered >= 180  # Hanley-McNeil is conservative for the realised AUC: about 95 % or more


def test_a_candidate_whose_confidence_collapses_is_estimated_low():
    rng = np.random.default_rng(3)
    healthy = 1 / (1 + np.exp(-rng.normal(0, 3, 500)))
    collapsed = 0.5 + rng.uniform(-0.08, 0.08, 500)  # near-coin-flip scores on shifted traffic
    for p, low, high in ((healthy, 0.8, 0.95), (collapsed, 0.45, 0.56)):
        counts, sums = histogram(p)
        auc = cbpe.expected_roc_auc(counts, sums)
        accuracy = cbpe.expected_accuracy(len(p), float(np.maximum(p, 1 - p).sum()))
        assert low < auc < high and low < accuracy < high, (auc, accuracy)


def test_what_cbpe_cannot_tell_an_overconfident_candidate_looks_better_than_it_is():
    rng = np.random.default_rng(5)
    true_p = 1 / (1 + np.exp(-rng.normal(0, 1, 4000)))
    y = rng.random(4000) < true_p
    served = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))  # same ranking, far too confident
    counts, sums = histogram(served)
    assert cbpe.expected_roc_auc(counts, sums) - metrics.roc_auc_score(y, served) > 0.1
    assert cbpe.expected_accuracy(len(served), float(np.maximum(served, 1 - served).sum())) - np.mean((served >= 0.5) == y) > 0.1


def test_degenerate_histograms():
    assert cbpe.expected_roc_auc([0, 0], [0.0, 0.0]) is None
    assert cbpe.expected_roc_auc([3, 0], [0.0, 0.0]) is None  # every row scored 0: no expected positive
    assert cbpe.expected_accuracy(0, 0.0) is None and cbpe.accuracy_interval(0, 0.0, confidence=0.95) is None
    with pytest.raises(ValueError, match="one entry per bin"):
        cbpe.expected_roc_auc([1], [0.5, 0.5])


@pytest.mark.parametrize("seed", SEEDS)
def test_the_realised_auc_of_binned_labels_is_sklearns_on_the_bin_centres(seed):
    p, y = calibrated(seed, n=1000)
    counted = scores.Scores()
    for value, truth in zip(p, y):
        counted.add_label(positive=float(value), is_positive=bool(truth))
    centres = (np.minimum((p * scores.BINS).astype(int), scores.BINS - 1) + 0.5) / scores.BINS
    expected = metrics.roc_auc_score(y, centres)  # rows within a bin tie, as the histogram sees them
    assert cbpe.realised_roc_auc(counted.labeled_counts, counted.labeled_positives) == pytest.approx(expected, abs=1e-12)
    assert cbpe.realised_roc_auc([2, 0], [2, 0]) is None  # no negative
