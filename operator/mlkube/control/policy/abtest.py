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
predictions (at least 2); otherwise there is no winner and the conclusion says why. That
p-value is valid when read once, at the end of the test's duration: read on every pass it would
find a winner between two equal versions far more often than 5 % of the time.

Beside it, ``report.sequential`` is the mSPRT (``sequential``) on the same statistic (z, or
Welch's t), whose always-valid p-value may be read on every pass: the running minimum of its
per-pass p-values, carried from the previous pass's report (``previous``, from status) while
the test and its windows go on (same versions, labeled counts not lower: a router restart starts
the counts, and so the sequential test, afresh). Its winner is the better version at the pass
where that p-value first fell below ``SIGNIFICANCE`` with ``min_labeled`` labels per arm, and
stays; ``strategy.abTest.earlyStop`` lets the rollout end the test on it.

Pure: no I/O, no clock; plain ``math``, because the operator does not load the ML stack (no
scipy: the unit tests check these p-values against it).
"""

from __future__ import annotations

import dataclasses
import math

from mlkube.api import rolloutstatus
from mlkube.control.policy import analysis, intervals, sequential

SIGNIFICANCE = 0.05


@dataclasses.dataclass(frozen=True)
class Arm:
    """One version's window in the test."""

    version: int
    role: str  # "stable" | "b"
    window: analysis.Window


# Tasks whose answers feedback can call right or wrong; clustering has no ground truth, so its A/B
# test runs on the analysis gates and its duration alone, with no report.
JUDGED_TASKS = ("classification", "regression", "anomaly_detection")


def report(
    stable: Arm,
    candidate: Arm,
    *,
    task: str,
    min_labeled: int,
    previous: rolloutstatus.ABTestReport | None = None,
) -> rolloutstatus.ABTestReport:
    """The report on ``candidate`` against ``stable``; ``task`` is the project's problem.task,
    ``previous`` the report of the previous pass (status.abTest), which carries the sequential
    test's running minimum."""
    if task not in JUDGED_TASKS:
        raise ValueError(f"task: expected one of {', '.join(JUDGED_TASKS)}, got {task!r}")
    # An anomaly flag is judged like a class: is it the label the feedback gave?
    metric = "accuracy" if task in ("classification", "anomaly_detection") else "mae"
    a, b = stable.window, candidate.window
    rows = [_version(arm, metric) for arm in (stable, candidate)]
    va, vb = rows[0].value, rows[1].value
    if metric == "accuracy":
        z = two_proportion_z(a.correct, a.labeled, b.correct, b.labeled)
        p_value = None if z is None else _normal_two_sided(z)
    else:
        welch = welch_t((a.labeled, a.abs_error_sum, a.squared_error_sum), (b.labeled, b.abs_error_sum, b.squared_error_sum))
        z = None if welch is None else welch[0]
        p_value = None if welch is None else _t_two_sided(*welch)
    difference = None if va is None or vb is None else round(vb - va, 4)
    needed = max(min_labeled, 2)
    winner, conclusion = None, ""
    if a.labeled < needed or b.labeled < needed:
        conclusion = _too_few(stable, candidate, needed)
    elif p_value is not None and p_value < SIGNIFICANCE and _value(b, metric) != _value(a, metric):
        candidate_better = (_value(b, metric) > _value(a, metric)) == (metric == "accuracy")  # lower mae is better
        best, other = _ranked(stable, candidate, candidate_better=candidate_better)
        winner = best.version
        conclusion = (
            f"version {best.version} beats {other.version} on {metric}: {_value(best.window, metric):.3g} vs "
            f"{_value(other.window, metric):.3g} (p={p_value:.2g}, {best.window.labeled}/{other.window.labeled} labeled)"
        )
    else:
        shown = "n/a" if p_value is None else f"{p_value:.2g}"
        conclusion = (
            f"no significant difference on {metric}: version {candidate.version} {_shown(vb)} vs "
            f"{stable.version} {_shown(va)} (p={shown} >= {SIGNIFICANCE:g}, {b.labeled}/{a.labeled} labeled)"
        )
    return rolloutstatus.ABTestReport(
        versions=rows,
        metric=metric,
        difference=difference,
        p_value=None if p_value is None else float(f"{p_value:.4g}"),
        winner=winner,
        conclusion=conclusion,
        sequential=sequential_test(stable, candidate, z=z, metric=metric, needed=needed, previous=previous),
    )


def sequential_test(
    stable: Arm,
    candidate: Arm,
    *,
    z: float | None,
    metric: str,
    needed: int,
    previous: rolloutstatus.ABTestReport | None,
) -> rolloutstatus.ABTestSequential:
    """The mSPRT after this pass: ``z`` is the standardized difference (candidate minus stable) of
    the fixed-horizon test, ``needed`` the labeled predictions each arm needs before it counts."""
    a, b = stable.window, candidate.window
    carried = _carried(previous, stable, candidate, metric)
    p_value = carried.always_valid_p_value if carried else None
    winner = carried.winner if carried else None
    if a.labeled < needed or b.labeled < needed or z is None:
        return rolloutstatus.ABTestSequential(
            tau=sequential.TAU, always_valid_p_value=p_value, winner=winner, conclusion=_too_few(stable, candidate, needed)
        )
    p_value = sequential.always_valid(p_value, sequential.p_value(z, a.labeled, b.labeled))
    if winner is None and p_value < SIGNIFICANCE:
        winner = candidate.version if (z > 0) == (metric == "accuracy") else stable.version
    label = f"mSPRT tau={sequential.TAU:g}"
    if winner is None:
        conclusion = (
            f"no winner yet on {metric}: always-valid p={p_value:.2g} >= {SIGNIFICANCE:g} "
            f"({label}, {b.labeled}/{a.labeled} labeled)"
        )
    else:
        best, other = _ranked(stable, candidate, candidate_better=winner == candidate.version)
        conclusion = (
            f"version {best.version} beats {other.version} on {metric}: {_value(best.window, metric):.3g} vs "
            f"{_value(other.window, metric):.3g} (always-valid p={p_value:.2g} < {SIGNIFICANCE:g}, {label}, "
            f"{best.window.labeled}/{other.window.labeled} labeled)"
        )
    return rolloutstatus.ABTestSequential(
        tau=sequential.TAU, always_valid_p_value=float(f"{p_value:.4g}"), winner=winner, conclusion=conclusion
    )


def _carried(
    previous: rolloutstatus.ABTestReport | None, stable: Arm, candidate: Arm, metric: str
) -> rolloutstatus.ABTestSequential | None:
    """The previous pass's sequential test if this pass continues it: the same running test of
    the same two versions, on the same metric and mixture, over windows that did not start anew."""
    if previous is None or previous.sequential is None or previous.finished_at is not None or previous.metric != metric:
        return None
    if previous.sequential.method != sequential.METHOD or previous.sequential.tau != sequential.TAU:
        return None
    before = [(v.version, v.labeled) for v in previous.versions]
    now = [(arm.version, arm.window.labeled) for arm in (stable, candidate)]
    if [v for v, _ in before] != [v for v, _ in now] or any(n < m for (_, m), (_, n) in zip(before, now)):
        return None
    return previous.sequential


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None without a row in each arm."""
    z = two_proportion_z(successes_a, n_a, successes_b, n_b)
    return None if z is None else _normal_two_sided(z)


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float | None:
    """z of the pooled two-proportion test of b minus a; None without a row in each arm, 0 when
    every row is right (or wrong) in both arms."""
    if n_a <= 0 or n_b <= 0:
        return None
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError(f"successes must lie within 0..n: {successes_a}/{n_a}, {successes_b}/{n_b}")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:  # every row right (or wrong) in both arms: no difference
        return 0.0
    return (successes_b / n_b - successes_a / n_a) / se


def welch_p_value(a: tuple[int, float, float], b: tuple[int, float, float]) -> float | None:
    """Two-sided p-value of Welch's t-test from each sample's (n, sum, sum of squares); None
    unless each has at least 2 values."""
    welch = welch_t(a, b)
    return None if welch is None else _t_two_sided(*welch)


def welch_t(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[float, float] | None:
    """Welch's t of b minus a and its Welch-Satterthwaite degrees of freedom, from each sample's
    (n, sum, sum of squares); None unless each has at least 2 values. Two constant samples: t is 0
    when their means are equal and infinite otherwise (a certain difference), df infinite."""
    (na, sa, qa), (nb, sb, qb) = a, b
    if na < 2 or nb < 2:
        return None
    mean_a, mean_b = sa / na, sb / nb
    var_a, var_b = max(qa - sa * sa / na, 0.0) / (na - 1), max(qb - sb * sb / nb, 0.0) / (nb - 1)
    ea, eb = var_a / na, var_b / nb
    if ea + eb == 0:
        return (0.0 if mean_a == mean_b else math.copysign(math.inf, mean_b - mean_a)), math.inf
    t = (mean_b - mean_a) / math.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea * ea / (na - 1) + eb * eb / (nb - 1))
    return t, df


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return min(1.0, max(0.0, intervals.regularized_beta(df / 2, 0.5, df / (df + t * t))))


def _normal_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _t_two_sided(t: float, df: float) -> float:
    if math.isinf(df):  # two constant samples
        return 1.0 if t == 0 else 0.0
    return student_t_two_sided(t, df)


def _too_few(stable: Arm, candidate: Arm, needed: int) -> str:
    return (
        f"not enough labeled feedback: {stable.window.labeled} (version {stable.version}) and "
        f"{candidate.window.labeled} (version {candidate.version}) of {needed} needed"
    )


def _ranked(stable: Arm, candidate: Arm, *, candidate_better: bool) -> tuple[Arm, Arm]:
    """(better, worse)."""
    return (candidate, stable) if candidate_better else (stable, candidate)


def _value(w: analysis.Window, metric: str) -> float | None:
    if not w.labeled:
        return None
    return w.correct / w.labeled if metric == "accuracy" else w.abs_error_sum / w.labeled


def _version(arm: Arm, metric: str) -> rolloutstatus.ABTestVersion:
    w = arm.window
    p50, p99 = analysis.quantile_ms(w.buckets, 0.5), analysis.quantile_ms(w.buckets, 0.99)
    value = _value(w, metric)
    rmse = round(math.sqrt(w.squared_error_sum / w.labeled), 4) if w.labeled and metric == "mae" else None
    return rolloutstatus.ABTestVersion(
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
