"""The estimatedPerformance gate: windows of the router's scores, verdicts against the version's
test metric minus maxDrop, real labels overriding the estimate, and what it cannot judge."""

from __future__ import annotations

import pytest

from mlkube.api import strategy
from mlkube.control.policy import analysis
from mlkube.serving import scores

GATE = strategy.EstimatedPerformance(metric="accuracy", maxDrop=0.05, minSamples=200)
THRESHOLDS = strategy.Analysis(minRequests=50, maxErrorRate=0.05, estimatedPerformance=GATE)


def stats(rows: list[tuple[float, float | None]], *, labeled=0, correct=0, start=1.0) -> dict:
    """Router stats of version 2 after serving ``rows`` (confidence, positive probability)."""
    counted = scores.Scores()
    for confidence, positive in rows:
        counted.add(confidence=confidence, positive=positive)
    n = len(rows)
    return {
        "startTime": start,
        "versions": {
            "2": {
                "requests": n,
                "serverErrors": 0,
                "latency": {"buckets": [{"le": 10, "count": n}, {"le": "+Inf", "count": n}]},
                "quality": {"labeled": labeled, "correct": correct},
                "scores": counted.as_json(),
            }
        },
    }


def target(gate=GATE, *, task="classification", primary="f1", metrics=None) -> analysis.Estimation:
    return analysis.estimation(
        gate,
        version=2,
        task=task,
        primary_metric=primary,
        test_metrics={"accuracy": 0.95, "roc_auc": 0.97} if metrics is None else metrics,
    )


def judged(doc, estimated=None, baseline=None):
    window = analysis.window(doc, 2, baseline)
    return analysis.judge(window, THRESHOLDS, min_agreement=None, estimated=estimated or target())


def test_a_confident_candidate_passes():
    result = judged(stats([(0.97, None)] * 300))
    assert result.verdict == "Passing" and result.failed_checks == []
    figures = result.estimated_performance
    assert (figures.metric, figures.samples, figures.estimate, figures.test_value, figures.threshold) == (
        "accuracy",
        300,
        0.97,
        0.95,
        0.9,
    )
    assert figures.interval[0] > 0.9


def test_a_candidate_whose_confidence_collapsed_fails_with_the_figures_in_its_reason():
    result = judged(stats([(0.97, None)] * 20 + [(0.55, None)] * 280))
    assert result.verdict == "Failing"
    (reason,) = result.failed_checks
    assert reason.startswith(
        "estimated accuracy 0.578 < 0.9 (test accuracy 0.95 - maxDrop 0.05) (CBPE on 300 predictions; 95% interval"
    )


def test_too_few_scored_predictions_keep_the_window_inconclusive():
    result = judged(stats([(0.5, None)] * 120))
    assert (
        result.verdict == "Inconclusive"
        and "120 of 200 scored predictions for estimatedPerformance" in result.inconclusive_checks
    )


def test_an_estimate_near_the_threshold_is_undecided():
    result = judged(stats([(0.9, None)] * 250))
    assert result.verdict == "Inconclusive"
    assert any(c.startswith("estimated accuracy 0.9 undecided against 0.9") for c in result.inconclusive_checks)


def test_the_window_starts_at_the_baseline():
    before = analysis.snapshot(stats([(0.55, None)] * 300), 2)  # a bad stretch before this step
    after = stats([(0.55, None)] * 300 + [(0.98, None)] * 300)
    result = judged(after, baseline=before)
    assert result.verdict == "Passing" and result.estimated_performance.estimate == 0.98


def test_real_labels_override_the_estimate():
    # Confident probabilities, but the labels say 150 of 250 were right: an overconfident version.
    result = judged(stats([(0.97, None)] * 300, labeled=250, correct=150))
    assert result.verdict == "Failing" and result.failed_checks[0].startswith(
        "labeled accuracy 0.6 < 0.9 (test accuracy 0.95 - maxDrop 0.05) (150 of 250 labeled predictions"
    )
    assert (result.estimated_performance.realised, result.estimated_performance.labeled) == (0.6, 250)


def test_roc_auc_from_the_binary_histogram():
    gate = strategy.EstimatedPerformance(metric="roc_auc", maxDrop=0.05, minSamples=200)
    good = [(max(p, 1 - p), p) for p in [0.02, 0.98] * 150]
    coin = [(max(p, 1 - p), p) for p in [0.45, 0.55] * 150]
    assert judged(stats(good), target(gate)).verdict == "Passing"
    failing = judged(stats(coin), target(gate))
    assert failing.verdict == "Failing" and failing.failed_checks[0].startswith(
        "estimated roc_auc 0.55 < 0.92 (test roc_auc 0.97 - maxDrop 0.05)"
    )
    multiclass = judged(stats([(0.9, None)] * 300), target(gate))
    assert multiclass.verdict == "Inconclusive" and "roc_auc needs a binary classifier's probabilities" in " ".join(
        multiclass.inconclusive_checks
    )


@pytest.mark.parametrize(
    "gate, primary, expected",
    [
        (strategy.EstimatedPerformance(), "roc_auc", "roc_auc"),
        (strategy.EstimatedPerformance(), "f1", "accuracy"),
        (strategy.EstimatedPerformance(metric="accuracy"), "roc_auc", "accuracy"),
    ],
)
def test_the_metric_defaults_to_the_primary_metric_when_it_can_be_estimated(gate, primary, expected):
    assert target(gate, primary=primary).metric == expected


def test_what_the_gate_cannot_judge_is_said():
    regression = judged(stats([(0.9, None)] * 300), target(task="regression"))
    assert regression.verdict == "Inconclusive" and (
        "estimatedPerformance: needs a classifier's probabilities; the project's task is regression"
        in regression.inconclusive_checks
    )
    unmeasured = judged(stats([(0.9, None)] * 300), target(metrics={}))
    assert (
        "estimatedPerformance: version 2 has no test accuracy in the registry to compare with" in unmeasured.inconclusive_checks
    )
    assert analysis.estimation(None, version=2, task="classification", primary_metric="f1", test_metrics={}) is None


def test_windows_without_scores_still_judge_the_other_gates():
    doc = stats([])
    doc["versions"]["2"].pop("scores")
    doc["versions"]["2"].update(requests=100, latency={"buckets": [{"le": 10, "count": 100}, {"le": "+Inf", "count": 100}]})
    result = analysis.judge(analysis.window(doc, 2, None), THRESHOLDS, min_agreement=None)
    assert result.verdict == "Passing" and result.estimated_performance is None


def test_labeled_roc_auc_overrides_the_estimate():
    gate = strategy.EstimatedPerformance(metric="roc_auc", maxDrop=0.05, minSamples=200)
    doc = stats([(max(p, 1 - p), p) for p in [0.02, 0.98] * 150])  # confident: estimated 0.98
    labeled = scores.Scores()
    for i in range(240):  # but the labels say the ranking is a coin flip
        labeled.add_label(positive=0.98 if i % 2 else 0.02, is_positive=i % 4 < 2)
    doc["versions"]["2"]["scores"].update(labeledBins=labeled.labeled_counts, labeledPositives=labeled.labeled_positives)
    result = judged(doc, target(gate))
    assert result.verdict == "Failing" and result.failed_checks[0].startswith(
        "labeled roc_auc 0.5 < 0.92 (test roc_auc 0.97 - maxDrop 0.05) (120 positives in 240 labeled predictions"
    )
    figures = result.estimated_performance
    assert (figures.estimate, figures.realised, figures.labeled) == (0.98, 0.5, 240)
