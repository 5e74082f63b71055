"""cardpage: the model card for people, rendered from the machine card (sections, plots, escaping)."""

import copy
import html
import re

import pytest

from mlkube.ml import cardpage

EVERY_SECTION = {
    "goal",
    "problem",
    "metrics",
    "performance",
    "importance",
    "data",
    "preprocessing",
    "algorithm",
    "lineage",
    "approvals",
}

COMMON = {
    "schemaVersion": 1,
    "goal": {"description": "Keep customers", "type": "Financial", "kpi": "monthly churn rate"},
    "data": {
        "uri": "s3://datasets/churn.csv",
        "join": [],
        "digest": "sha256:" + "ab" * 32,
        "rows": 4454,
        "columns": 4,
        "profile": {
            "rows": 4454,
            "columns": 4,
            "duplicateRows": 3,
            "missingShare": {"tenure": 0.125, "plan": 0.0, "charges": 0.0, "churned": 0.0},
            "constantColumns": [],
            "typeMismatches": {"charges": "numbers stored as strings"},
            "dtypes": {"tenure": "float64", "plan": "object", "charges": "object", "churned": "object"},
        },
    },
    "processing": {
        "spec": {"scale": "standard", "impute": {"numeric": "median", "categorical": "most_frequent"}},
        "columns": {"numeric": ["tenure", "charges"], "categorical": ["plan"], "binned": []},
        "rows": {"test": 668, "train": 2672, "validation": 668, "loaded": 4454, "feedback": 0, "prepared": 4008},
        "steps": ["features", "model"],
    },
    "featureSchema": [
        {"name": "tenure", "type": "numeric", "dtype": "float64", "nullable": True},
        {"name": "plan", "type": "categorical", "dtype": "object", "categories": ["basic", "pro"], "nullable": True},
    ],
    "featureImportance": {"tenure": 0.61, "plan": 0.27, "charges": 0.12},
    "reference": {"source": "trainingPartition", "rows": 2672, "description": "the training partition (2672 rows)"},
    "tuning": {"strategy": "random", "trialsPlanned": 3, "trials": 3, "complete": 3, "pruned": 0, "cvScore": 0.84},
    "diagnostics": {
        "trialSeconds": {"p50": 0.2, "max": 0.4},
        "peakMemoryMiB": 250.0,
        "overfitting": {"trainScore": 0.9, "validationScore": 0.85, "flagged": False},
        "warnings": ["ConvergenceWarning in logistic_regression (3 trials)"],
    },
    "lineage": {
        "trainingJob": "churn-manual-1",
        "namespace": "ml",
        "uid": "u-1",
        "project": "churn",
        "trigger": "manual",
        "parentVersion": None,
    },
    "createdAt": "2026-12-05T09:41:00Z",
}

CLASSIFICATION = {
    **COMMON,
    "problem": {"task": "classification", "target": "churned", "positiveClass": "yes", "primaryMetric": "roc_auc"},
    "algorithm": "logistic_regression",
    "params": {"C": 0.5},
    "metrics": {
        "validation": {"roc_auc": 0.8512345, "recall": 0.7},
        "test": {"roc_auc": 0.8634567, "recall": 0.7123456, "accuracy": 0.83},
    },
    "successCriteria": [{"metric": "roc_auc", "op": ">=", "threshold": 0.8, "value": 0.8634567, "met": True}],
    "eligible": True,
    "classes": ["no", "yes"],
    "confusionMatrix": {"labels": ["no", "yes"], "matrix": [[500, 38], [52, 78]]},
    "calibration": {
        "of": "positiveClass",
        "positiveClass": "yes",
        "rows": 668,
        "bins": [
            {"low": 0.0, "high": 0.1, "meanPredicted": 0.04, "observed": 0.05, "count": 400},
            {"low": 0.5, "high": 0.6, "meanPredicted": 0.55, "observed": 0.5, "count": 100},
            {"low": 0.9, "high": 1.0, "meanPredicted": 0.93, "observed": 0.9, "count": 168},
        ],
    },
    "comparison": {
        "championVersion": 2,
        "metric": "roc_auc",
        "challenger": 0.8634567,
        "champion": 0.8411111,
        "challengerBetter": True,
        "holdout": "test",
    },
}

REGRESSION = {
    **COMMON,
    "problem": {"task": "regression", "target": "charges", "positiveClass": None, "primaryMetric": "rmse"},
    "algorithm": "ridge",
    "params": {"alpha": 1.0},
    "metrics": {"validation": {"rmse": 56.6, "r2": 0.51}, "test": {"rmse": 53.9172669, "r2": 0.4557641, "mae": 43.1}},
    "successCriteria": [{"metric": "rmse", "op": "<=", "threshold": 50, "value": 53.9172669, "met": False}],
    "eligible": False,
    "residuals": {
        "rows": 88,
        "mean": 4.1,
        "quantiles": {"p25": -30.0, "p5": -81.1, "p50": 3.8, "p75": 42.2, "p95": 89.2},
        "histogram": {"edges": [-150.0, -50.0, 50.0, 150.0], "counts": [10, 60, 18]},
        "points": [[219.0, 140.8], [70.0, 176.3], [202.0, 131.2]],
    },
}

FAIRNESS = {
    "data": {"class_imbalance": {"sex": 0.33}},
    "groups": {"sex": {"Female": {"count": 3210, "selection_rate": 0.11}, "Male": {"count": 6500, "selection_rate": 0.19}}},
    "metrics": {"disparate_impact": 0.62, "equalized_odds_difference": 0.08},
    "criteriaMet": False,
}

NEW_LINEAGE = {
    "data": [{"uri": "s3://datasets/churn.csv", "digest": "sha256:" + "cd" * 32, "rows": 4454}],
    "image": "registry.example/mlkube:0.1.0",
    "mlkubeVersion": "0.1.0",
    "params": {"C": 0.5},
}


def sections(page: str) -> set[str]:
    return set(re.findall(r"<section id='([a-z]+)'>", page))


def text(page: str) -> str:
    """What a reader sees: the page without tags, entities resolved, whitespace collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_a_classification_card_has_every_section_and_its_plots():
    page = cardpage.render(CLASSIFICATION)
    seen = text(page)

    assert sections(page) == EVERY_SECTION
    assert "monthly churn rate" in seen and "Keep customers" in seen
    assert "roc_auc 0.8512 0.8635" in seen  # the primary metric first, validation then test
    assert "0.7123" in seen and "0.8300" in seen
    assert "champion v2" in seen and "0.8411" in seen and "this version is better" in seen
    assert "Confusion matrix" in seen and ">500</text>" in page and ">78</text>" in page
    assert "Calibration (probability of yes, 668 test rows)" in seen and page.count("<circle") == 3
    assert "tenure 12.5%" in seen and "numbers stored as strings" in seen
    assert "loaded feedback prepared train validation test 4454 0 4008 2672 668 668" in seen
    assert "61.0%" in seen  # the largest importance bar
    assert "eligible: meets its success criteria" in seen
    assert "kubectl describe mv -n ml churn-v<N>" in seen


def test_a_regression_card_draws_predicted_against_actual_and_residuals():
    page = cardpage.render(REGRESSION)
    seen = text(page)

    assert sections(page) == EVERY_SECTION
    assert "rmse 56.6000 53.9173" in seen and "0.4558" in seen
    assert "Predicted against actual (3 test rows)" in seen and page.count("<circle") == 3
    assert "Residuals (actual - predicted)" in seen
    assert "mean p5 p25 p50 p75 p95 4.1 -81.1 -30 3.8 42.2 89.2" in seen
    assert "Confusion matrix" not in seen and "Calibration" not in seen
    assert "not eligible: fails rmse" in seen


def test_fairness_and_the_new_lineage_are_shown_when_the_card_has_them():
    card = {**CLASSIFICATION, "fairness": FAIRNESS, "lineage": {**CLASSIFICATION["lineage"], **NEW_LINEAGE}}
    page = cardpage.render(card)
    seen = text(page)

    assert sections(page) == EVERY_SECTION | {"fairness"}
    assert "fairness criteria not met" in seen and "disparate_impact 0.62" in seen
    assert "Groups by sex (test split) group count selection_rate Female 3210 0.11 Male 6500 0.19" in seen
    assert "Training data by sex class imbalance 0.33" in seen
    assert "s3://datasets/churn.csv sha256:" + "cd" * 32 + " 4454" in seen
    assert "registry.example/mlkube:0.1.0" in seen and "mlkubeVersion 0.1.0" in seen
    assert "trainingJob churn-manual-1" in seen


def test_missing_optional_sections_are_left_out():
    assert sections(cardpage.render({"schemaVersion": 1})) == {"approvals"}

    card = copy.deepcopy(REGRESSION)
    for key in ("residuals", "featureImportance", "lineage", "processing", "goal"):
        del card[key]
    page = cardpage.render(card)
    assert sections(page) == EVERY_SECTION - {"performance", "importance", "lineage", "preprocessing", "goal"}
    assert "<svg" not in page
    assert "kubectl describe mv churn-v<N>" not in text(page)  # no project known: a placeholder
    assert "kubectl describe mv <project>-v<N>" in text(page)


HOSTILE = "<script>alert(1)</script>"
QUOTE = "x' onmouseover='alert(1)"


def test_every_card_value_is_escaped():
    card = copy.deepcopy(CLASSIFICATION)
    card["goal"]["description"] = HOSTILE
    card["goal"]["kpi"] = QUOTE
    card["featureImportance"] = {HOSTILE: 0.7, QUOTE: 0.3}
    card["featureSchema"][1]["categories"] = [HOSTILE]
    card["confusionMatrix"]["labels"] = [HOSTILE, QUOTE]
    card["calibration"]["positiveClass"] = HOSTILE
    card["params"] = {HOSTILE: QUOTE}
    card["metrics"]["test"][HOSTILE] = 0.5
    card["lineage"] = {"project": HOSTILE, "namespace": QUOTE, **NEW_LINEAGE, "image": HOSTILE}
    card["fairness"] = {"groups": {HOSTILE: {QUOTE: {HOSTILE: 1}}}, "metrics": {HOSTILE: 0.1}}
    page = cardpage.render(card)

    assert "<script" not in page.lower()
    assert "onmouseover='" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE in text(page)  # shown as text, as written


@pytest.mark.parametrize("card", [CLASSIFICATION, REGRESSION], ids=["classification", "regression"])
def test_the_page_is_self_contained(card):
    page = cardpage.render({**card, "fairness": FAIRNESS, "lineage": NEW_LINEAGE})
    assert not re.search(r"<script|<link|<img|<iframe|src=|url\(|@import|https?://", page, re.IGNORECASE)
    assert set(re.findall(r"href='([^']*)'", page)) <= {f"#{s}" for s in EVERY_SECTION | {"fairness"}}
