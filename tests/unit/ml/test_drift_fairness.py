"""Bias drift, pure: group metrics on a captured window against the model card's test-split values."""

import numpy as np
import pandas as pd

from mlkube.api import monitor
from mlkube.ml import drift_fairness

CARD = {
    "fairness": {
        "sensitiveFeatures": ["sex"],
        "favorableOutcome": "yes",
        "groups": {
            "sex": {
                "F": {"count": 200, "selection_rate": 0.3, "tpr": 0.7, "fpr": 0.1},
                "M": {"count": 300, "selection_rate": 0.35, "tpr": 0.75, "fpr": 0.12},
            }
        },
        "metrics": {"disparate_impact": 0.857143},
    }
}
SPEC = monitor.BiasDrift(max_drop=0.1, min_group_samples=30)


def window(rates: dict[str, float], *, rows: int = 200, labeled: bool = False, seed: int = 0) -> pd.DataFrame:
    """Requests of each group answered favorably at the given rate (exactly), without or with feedback."""
    parts = []
    for group, rate in rates.items():
        favorable = round(rate * rows)
        predicted = ["yes"] * favorable + ["no"] * (rows - favorable)
        parts.append(pd.DataFrame({"sex": group, "__prediction__": predicted, "__target__": predicted if labeled else None}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)


def test_selection_rates_like_the_test_split_are_not_drift():
    result = drift_fairness.check(SPEC, CARD, window({"F": 0.28, "M": 0.36}))
    assert result.drifted is False and result.note is None
    assert result.metrics == {"demographic_parity_difference": 0.08, "disparate_impact": 0.777778}
    assert result.baseline == {"demographic_parity_difference": 0.05, "disparate_impact": 0.857143}


def test_one_groups_falling_selection_rate_is_drift_and_named_first():
    result = drift_fairness.check(SPEC, CARD, window({"F": 0.1, "M": 0.36}))
    assert result.drifted is True
    drifted = [(s.group, s.metric) for s in result.shifts if s.drifted]
    assert ("F", "selection_rate") in drifted and ("", "disparate_impact") in drifted
    assert drift_fairness.summary_sentence(result).startswith("Bias drift: ")
    assert "selection_rate of sex=F fell from 0.300 to 0.100" in drift_fairness.summary_sentence(result)


def labeled(group: str, *, tpr: float, fpr: float, rows: int = 100) -> pd.DataFrame:
    """``rows`` favorable and ``rows`` unfavorable labeled requests of ``group`` answered at these rates."""
    hits, false_alarms = round(tpr * rows), round(fpr * rows)
    predicted = ["yes"] * hits + ["no"] * (rows - hits) + ["yes"] * false_alarms + ["no"] * (rows - false_alarms)
    return pd.DataFrame({"sex": group, "__prediction__": predicted, "__target__": ["yes"] * rows + ["no"] * rows})


def test_with_feedback_a_falling_tpr_is_drift_and_the_odds_metrics_are_measured():
    rows = pd.concat([labeled("F", tpr=0.4, fpr=0.1), labeled("M", tpr=0.75, fpr=0.12)], ignore_index=True)
    result = drift_fairness.check(SPEC, CARD, rows)
    assert result.metrics["equal_opportunity_difference"] == 0.35
    assert result.metrics["equalized_odds_difference"] == 0.35
    tpr = next(s for s in result.shifts if (s.group, s.metric) == ("F", "tpr"))
    assert (tpr.baseline, tpr.current, tpr.samples, tpr.drifted) == (0.7, 0.4, 100, True)
    steady = pd.concat([labeled("F", tpr=0.68, fpr=0.1), labeled("M", tpr=0.75, fpr=0.12)], ignore_index=True)
    assert drift_fairness.check(SPEC, CARD, steady).drifted is False


def test_groups_with_too_few_requests_and_a_missing_sensitive_column_are_said_not_judged():
    small = drift_fairness.check(SPEC, CARD, window({"F": 0.0, "M": 0.35}, rows=10))
    assert small.drifted is False and "fewer than two groups of 'sex' have 30 requests" in small.note
    absent = window({"F": 0.3, "M": 0.35}).drop(columns=["sex"])
    result = drift_fairness.check(SPEC, CARD, absent)
    assert result.drifted is False and "sensitive feature 'sex' is not in the captured requests" in result.note
    assert "no fairness section" in drift_fairness.check(SPEC, {}, absent).note


def test_predictions_compare_with_the_favorable_outcome_as_text():
    card = {"fairness": {**CARD["fairness"], "favorableOutcome": "1"}}
    rows = window({"F": 0.3, "M": 0.35}).assign(__prediction__=lambda f: np.where(f["__prediction__"] == "yes", 1, 0))
    assert drift_fairness.check(SPEC, card, rows).metrics["demographic_parity_difference"] == 0.05
