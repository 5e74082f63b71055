"""The A/B test report: the stable version and the candidate side by side, and which is better.

``report`` takes both versions' analysis windows (the router's counters since the test began,
see ``analysis.window``) and returns what status shows: per version its requests, error rate,
latency p50/p99 and quality on the ground truth clients sent back (accuracy for a
classification project, mean absolute error and RMSE for regression), then the difference
(candidate minus stable) and a two-sided test of it:

- accuracy: the two-proportion z-test with the pooled proportion, p = erfc(|z| / sqrt 2);
- mae: Welch's t-test on the absolute errors (their variance from the sum of squared errors,
  since |e|^2 = e^2), p from Student's t distribution with the Welch-Satterthwaite degrees of
  freedom via the regularized incomplete beta function (``intervals.regularized_beta``).

A version wins when p < ``SIGNIFICANCE`` and each arm has at least ``min_labeled`` labeled
predictions (at least 2); otherwise there is no winner and the conclusion says why.

Pure: no I/O, no clock; plain ``math``, because the operator does not load the ML stack (no
scipy: the unit tests check these p-values against it).
"""

from __future__ import annotations

import dataclasses
import math

from mlkube.api import deployment
from mlkube.control.policy import analysis, intervals

SIGNIFICANCE = 0.05


@dataclasses.dataclass(frozen=True)
class Arm:
    """One version's window in the test."""

    version: int
    role: str  # "stable" | "b"
    window: analysis.Window


def report(stable: Arm, candidate: Arm, *, task: str, min_labeled: int) -> deployment.ABTestReport:
    """The report on ``candidate`` against ``stable``; ``task`` is the project's problem.task."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task: expected classification or regression, got {task!r}")
    metric = "accuracy" if task == "classification" else "mae"
    a, b = stable.window, candidate.window
    rows = [_version(arm, metric) for arm in (stable, candidate)]
    va, vb = rows[0].value, rows[1].value
    if metric == "accuracy":
        p_value = two_proportion_p_value(a.correct, a.labeled, b.correct, b.labeled)
    else:
        p_value = welch_p_value(
            (a.labeled, a.abs_error_sum, a.squared_error_sum), (b.labeled, b.abs_error_sum, b.squared_error_sum)
        )
    difference = None if va is None or vb is None else round(vb - va, 4)
    needed = max(min_labeled, 2)
    winner, conclusion = None, ""
    if a.labeled < needed or b.labeled < needed:
        conclusion = (
            f"not enough labeled feedback: {a.labeled} (version {stable.version}) and {b.labeled} "
            f"(version {candidate.version}) of {needed} needed"
        )
    elif p_value is not None and p_value < SIGNIFICANCE and _value(b, metric) != _value(a, metric):
        candidate_better = (_value(b, metric) > _value(a, metric)) == (metric == "accuracy")
        best, other = (candidate, stable) if candidate_better else (stable, candidate)
        winner = best.version
        best_row, other_row = (rows[1], rows[0]) if candidate_better else (rows[0], rows[1])
        conclusion = (
            f"version {best.version} beats {other.version} on {metric}: {best_row.value:.3g} vs "
            f"{other_row.value:.3g} (p={p_value:.2g}, {best.window.labeled}/{other.window.labeled} labeled)"
        )
    else:
        shown = "n/a" if p_value is None else f"{p_value:.2g}"
        conclusion = (
            f"no significant difference on {metric}: version {candidate.version} {_shown(vb)} vs "
            f"{stable.version} {_shown(va)} (p={shown} >= {SIGNIFICANCE:g}, {b.labeled}/{a.labeled} labeled)"
        )
    return deployment.ABTestReport(
        versions=rows,
        metric=metric,
        difference=difference,
        p_value=None if p_value is None else float(f"{p_value:.4g}"),
        winner=winner,
        conclusion=conclusion,
    )


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None without a row in each arm."""
    if n_a <= 0 or n_b <= 0:
        return None
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError(f"successes must lie within 0..n: {successes_a}/{n_a}, {successes_b}/{n_b}")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:  # every row right (or wrong) in both arms: no difference
        return 1.0
    z = (successes_b / n_b - successes_a / n_a) / se
    return math.erfc(abs(z) / math.sqrt(2))


def welch_p_value(a: tuple[int, float, float], b: tuple[int, float, float]) -> float | None:
    """Two-sided p-value of Welch's t-test from each sample's (n, sum, sum of squares); None
    unless each has at least 2 values."""
    (na, sa, qa), (nb, sb, qb) = a, b
    if na < 2 or nb < 2:
        return None
    mean_a, mean_b = sa / na, sb / nb
    var_a, var_b = max(qa - sa * sa / na, 0.0) / (na - 1), max(qb - sb * sb / nb, 0.0) / (nb - 1)
    ea, eb = var_a / na, var_b / nb
    if ea + eb == 0:  # constant samples: a difference in means is certain, none is none
        return 1.0 if mean_a == mean_b else 0.0
    t = (mean_b - mean_a) / math.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea * ea / (na - 1) + eb * eb / (nb - 1))
    return student_t_two_sided(t, df)


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return min(1.0, max(0.0, intervals.regularized_beta(df / 2, 0.5, df / (df + t * t))))


def _value(w: analysis.Window, metric: str) -> float | None:
    if not w.labeled:
        return None
    return w.correct / w.labeled if metric == "accuracy" else w.abs_error_sum / w.labeled


def _version(arm: Arm, metric: str) -> deployment.ABTestVersion:
    w = arm.window
    p50, p99 = analysis.quantile_ms(w.buckets, 0.5), analysis.quantile_ms(w.buckets, 0.99)
    value = _value(w, metric)
    rmse = round(math.sqrt(w.squared_error_sum / w.labeled), 4) if w.labeled and metric == "mae" else None
    return deployment.ABTestVersion(
        version=arm.version,
        role=arm.role,
        requests=w.requests,
        error_rate=round(w.errors / w.requests, 4) if w.requests else None,
        latency_p50_ms=None if p50 in (None, math.inf) else p50,
        latency_p99_ms=None if p99 in (None, math.inf) else p99,
        labeled=w.labeled,
        metric=metric,
        value=None if value is None else round(value, 4),
        rmse=rmse,
    )


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
