"""Concept drift: the primary metric on labelled traffic against the test-set baseline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from mlkube.api import monitor
from mlkube.ml import drift_performance


def _labelled(n: int, *, error_rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["no", "yes"], n)
    wrong = rng.random(n) < error_rate
    return truth, np.where(wrong, np.where(truth == "yes", "no", "yes"), truth)


def test_an_accuracy_drop_beyond_max_drop_is_concept_drift():
    truth, predicted = _labelled(1000, error_rate=0.3)
    result = drift_performance.performance("accuracy", truth, predicted, baseline=0.9, max_drop=0.05)
    assert result.current == pytest.approx(metrics.accuracy_score(truth, predicted))
    assert result.drop == pytest.approx(0.9 - result.current) and result.drifted
    assert not drift_performance.performance("accuracy", truth, predicted, baseline=0.72, max_drop=0.05).drifted


def test_binary_metrics_are_about_the_positive_class():
    truth, predicted = _labelled(1000, error_rate=0.2, seed=1)
    default = drift_performance.performance("recall", truth, predicted, baseline=0.8, max_drop=0.1)
    assert default.current == pytest.approx(metrics.recall_score(truth, predicted, pos_label="yes"))
    other = drift_performance.performance("recall", truth, predicted, baseline=0.8, max_drop=0.1, positive_class="no")
    assert other.current == pytest.approx(metrics.recall_score(truth, predicted, pos_label="no"))


def test_a_rise_of_a_lower_is_better_metric_is_a_drop():
    rng = np.random.default_rng(0)
    truth = rng.normal(50, 10, 500)
    predicted = truth + rng.normal(0, 5, 500)
    result = drift_performance.performance("rmse", truth, predicted, baseline=3.0, max_drop=1.0)
    assert result.current == pytest.approx(metrics.root_mean_squared_error(truth, predicted))
    assert result.drop == pytest.approx(result.current - 3.0) and result.drifted


def test_roc_auc_needs_probabilities_and_uses_the_positive_column():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 800)
    positive = np.clip(0.35 * truth + rng.uniform(0, 0.65, 800), 0, 1)
    probabilities = np.column_stack([1 - positive, positive])
    result = drift_performance.performance("roc_auc", truth, probabilities, baseline=0.95, max_drop=0.02, classes=[0, 1])
    assert result.current == pytest.approx(metrics.roc_auc_score(truth, positive)) and result.drifted
    labels = (positive > 0.5).astype(int)
    labels_only = drift_performance.performance("roc_auc", truth, labels, baseline=0.95, max_drop=0.02)
    assert labels_only.current is None and not labels_only.drifted
    assert "without class probabilities" in labels_only.note


def test_status_fits_the_api():
    truth, predicted = _labelled(300, error_rate=0.1)
    status = drift_performance.performance("f1", truth, predicted, baseline=0.9, max_drop=0.05).to_status()
    performance = monitor.Performance.model_validate(status)
    assert performance.samples == 300 and performance.current == pytest.approx(status["current"])
    assert (
        monitor.Performance.model_validate(
            drift_performance.performance("f1", [], [], baseline=0.9, max_drop=0.05).to_status()
        ).current
        is None
    )


def test_bad_input_says_what_to_pass():
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        drift_performance.performance("accuracy", [1, 0, 1], [1, 0], baseline=0.9, max_drop=0.1)
    with pytest.raises(ValueError, match="need `classes`"):
        drift_performance.performance("roc_auc", [1, 0], np.ones((2, 2)) / 2, baseline=0.9, max_drop=0.1)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        drift_performance.performance("auc", [1, 0], [1, 0], baseline=0.9, max_drop=0.1)


def test_the_positive_class_is_matched_by_its_text_as_the_spec_gives_it():
    truth, predicted = np.array([1, 0, 1, 1, 0, 0]), np.array([1, 0, 0, 1, 1, 0])
    result = drift_performance.performance("precision", truth, predicted, baseline=0.9, max_drop=0.1, positive_class="1")
    assert result.current == pytest.approx(metrics.precision_score(truth, predicted, pos_label=1))
    with pytest.raises(ValueError, match="positiveClass: 'yes' is none of the classes"):
        drift_performance.performance("precision", truth, predicted, baseline=0.9, max_drop=0.1, positive_class="yes")


def test_a_named_class_of_several_is_scored_against_the_rest_as_in_training():
    truth = np.array(["a", "b", "c", "c", "b", "a", "c", "c"])
    predicted = np.array(["a", "c", "c", "b", "b", "a", "c", "a"])
    named = drift_performance.performance("recall", truth, predicted, baseline=0.9, max_drop=0.1, positive_class="c")
    assert named.current == pytest.approx(metrics.recall_score(truth == "c", predicted == "c"))
    macro = drift_performance.performance("recall", truth, predicted, baseline=0.9, max_drop=0.1)
    assert macro.current == pytest.approx(metrics.recall_score(truth, predicted, average="macro"))
