"""Confidence-based performance estimation (CBPE): a classifier's accuracy and ROC AUC expected
from the probabilities it served, without labels.

The idea (as NannyML's CBPE): if a classifier's probabilities are calibrated, a row scored p for
the class it predicts is correct with probability p, and a row scored p for the positive class is
a positive with probability p. So the expected number of correct predictions is the sum of the
predicted classes' probabilities, and at any decision threshold t the expected confusion counts
are

    TP(t) = sum of p over rows with p >= t        FP(t) = sum of (1 - p) over rows with p >= t
    P     = sum of p over all rows                N     = sum of (1 - p) over all rows

so the expected ROC curve is (FP(t)/N, TP(t)/P) over the thresholds, and its area (trapezoids,
ties counted half as in ``roc_auc_score``) the expected ROC AUC.

Here the rows arrive as the router's histogram (``serving.scores``): equal-width bins over [0, 1]
holding the count and the sum of the probabilities. The sums make the expected counts exact; the
bins only limit the thresholds to the bin edges, so rows within one bin are treated as ties (with
100 bins the area moves by well under 0.01 for any realistic spread of scores).

Uncertainty: the intervals are those of the realised metric on as many labeled rows, so the gate
is never quicker to fail than the same gate on real labels would be: Wilson's interval of the
expected correct count among the rows (accuracy), and Hanley and McNeil's standard error of an
AUC with the expected positives and negatives (Radiology 143(1), 1982), normal, clipped to [0, 1].
Neither covers miscalibration, which is what CBPE cannot see (docs/serving.md).

Pure: plain ``math``, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlkube.control.policy import intervals


def expected_accuracy(scored: int, confidence_sum: float) -> float | None:
    """The mean probability of the predicted classes over ``scored`` rows; None without a row."""
    if scored <= 0:
        return None
    return min(max(confidence_sum / scored, 0.0), 1.0)


def accuracy_interval(scored: int, confidence_sum: float, *, confidence: float) -> tuple[float, float] | None:
    """Wilson's interval of an accuracy of ``confidence_sum`` correct in ``scored`` rows."""
    if scored <= 0:
        return None
    return intervals.wilson(min(max(confidence_sum, 0.0), scored), scored, confidence=confidence)


def expected_counts(counts: Sequence[int], sums: Sequence[float]) -> tuple[float, float]:
    """(P, N): the expected positives and negatives of a histogram of positive-class probabilities."""
    positives = float(sum(sums))
    return positives, float(sum(counts)) - positives


def expected_roc_auc(counts: Sequence[int], sums: Sequence[float]) -> float | None:
    """The expected ROC AUC of a histogram of positive-class probabilities (``counts[i]`` rows in bin
    i, ``sums[i]`` the sum of their probabilities; bins in increasing order of probability). None
    when the expected positives or negatives are 0 (every row scored exactly 0 or exactly 1)."""
    if len(counts) != len(sums):
        raise ValueError(f"counts and sums must have one entry per bin, got {len(counts)} and {len(sums)}")
    return _area(counts, sums)


def realised_roc_auc(counts: Sequence[int], positives: Sequence[int]) -> float | None:
    """The ROC AUC of labeled rows in the same bins (``positives[i]`` of the ``counts[i]`` rows in
    bin i were positives): the same curve with the real counts, rows within a bin tied. None
    without a positive or without a negative."""
    if len(counts) != len(positives):
        raise ValueError(f"counts and positives must have one entry per bin, got {len(counts)} and {len(positives)}")
    return _area(counts, [float(p) for p in positives])


def _area(counts: Sequence[int], sums: Sequence[float]) -> float | None:
    """The area under the curve whose points are (FP/N, TP/P) at each bin's lower edge, from the
    highest bin down; ``sums[i]`` is bin i's (expected or real) number of positives."""
    positives, negatives = expected_counts(counts, sums)
    if positives <= 0 or negatives <= 0:
        return None
    area, tp, fp = 0.0, 0.0, 0.0
    for count, total in zip(reversed(counts), reversed(sums)):  # thresholds from the highest bin down
        if count <= 0:
            continue
        next_tp, next_fp = tp + total, fp + (count - total)
        area += (next_fp - fp) * (tp + next_tp) / 2  # trapezoid between two points of the curve
        tp, fp = next_tp, next_fp
    return min(max(area / (positives * negatives), 0.0), 1.0)


def roc_auc_interval(auc: float, positives: float, negatives: float, *, confidence: float) -> tuple[float, float] | None:
    """The normal interval of an AUC ``auc`` on ``positives`` and ``negatives`` rows by Hanley and
    McNeil's standard error; None when either is below 1."""
    if positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    half = intervals.z_value(confidence) * math.sqrt(max(variance, 0.0))
    return max(auc - half, 0.0), min(auc + half, 1.0)
