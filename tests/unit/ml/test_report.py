"""The drift report page: self-contained, every feature drawn, valid SVG, names escaped."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from mlkube.ml import drift, drift_performance, report


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 3000),
            "income": rng.lognormal(10, 0.5, 3000),
            "<plan & co>": rng.choice(["basic", "pro"], 3000, p=[0.7, 0.3]),
        }
    )
    current = pd.DataFrame(
        {
            "age": rng.normal(46, 10, 2000),
            "income": rng.lognormal(10, 0.5, 2000),
            "<plan & co>": rng.choice(["basic", "pro", "enterprise"], 2000, p=[0.5, 0.3, 0.2]),
        }
    )
    current.loc[:99, "income"] = np.nan
    return reference, current


def _render(**extra) -> tuple[str, drift.DriftResult]:
    reference, current = _tables()
    importance = {"age": 0.5, "income": 0.3, "<plan & co>": 0.2}
    result = drift.DriftDetector(importance=importance).fit(reference).score(current)
    return report.render(result, reference=reference, current=current, title="churn <drift>", **extra), result


def _svgs(page: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def test_the_page_is_self_contained():
    page, _ = _render()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"<script|<link|<img|src=|url\(", page)
    assert set(re.findall(r"https?://[^'\"]+", page)) == {"http://www.w3.org/2000/svg"}


def test_every_feature_has_its_row_score_and_plot():
    page, result = _render()
    svgs = _svgs(page)
    assert len(svgs) == len(result.features)
    for feature in result.features:
        assert f"{feature.method} {feature.score:.4g} / threshold {feature.threshold:.4g}" in page.replace("&lt;", "<")
    bars = {
        feature.name: len(svg.findall("{http://www.w3.org/2000/svg}rect")) for feature, svg in zip(result.ranked(), svgs)
    }  # plots follow the ranking
    assert bars == {"age": 2 * report.HISTOGRAM_BINS, "income": 2 * report.HISTOGRAM_BINS, "<plan & co>": 6}
    assert page.count("<tr class='drifted'>") == len(result.drifted) == 2


def test_category_bars_include_unseen_categories_and_shares_sum_to_one():
    reference, current = _tables()
    labels, ref_share, cur_share = report.category_shares(reference["<plan & co>"], current["<plan & co>"])
    assert labels == ["basic", "pro", "enterprise"]
    assert ref_share.sum() == pytest.approx(1.0) and cur_share.sum() == pytest.approx(1.0)
    assert ref_share[2] == 0 and cur_share[2] == pytest.approx(0.2, abs=0.03)


def test_numeric_histograms_share_bins_and_count_missing_out():
    reference, current = _tables()
    edges, ref_share, cur_share = report.histograms(reference["income"], current["income"])
    assert len(edges) == report.HISTOGRAM_BINS + 1
    assert ref_share.sum() == pytest.approx(1.0) and cur_share.sum() == pytest.approx(1.0)


def test_names_are_escaped():
    page, _ = _render()
    assert "<plan & co>" not in page and "&lt;plan &amp; co&gt;" in page
    assert "<title>churn &lt;drift&gt;</title>" in page


def test_the_subtitle_says_what_the_reference_is_under_the_title():
    page, _ = _render(subtitle="Reference: the newest 300 of the 500 labelled requests <recalibrated>.")
    assert (
        "<h1>churn &lt;drift&gt;</h1>\n<p>Reference: the newest 300 of the 500 labelled requests &lt;recalibrated&gt;.</p>"
        in page
    )
    assert "<p>Reference" not in _render()[0]


def test_performance_history_is_drawn_with_baseline_and_limit():
    performance = drift_performance.PerformanceDrift("roc_auc", 0.86, 0.78, 0.08, 0.05, 400, True)
    history = [("day 1", 0.86), ("day 2", 0.83), ("day 3", 0.78)]
    page, _ = _render(performance_history=history, performance=performance)
    assert "Performance over time (roc_auc)" in page and "degraded" in page
    chart = _svgs(page)[-1]
    line = chart.find("{http://www.w3.org/2000/svg}polyline")
    assert len(line.get("points").split()) == 3
    assert "Performance over time" not in _render()[0]


def test_a_column_without_values_in_the_window_still_renders():
    reference, current = _tables()
    current["age"] = np.nan
    result = drift.DriftDetector().fit(reference).score(current)
    page = report.render(result, reference=reference, current=current, title="t")
    assert "compared on missingness" in page and len(_svgs(page)) == 3


def test_prediction_drift_gets_its_verdict_and_plot_when_the_tables_hold_predictions():
    reference, current = _tables()
    reference["__prediction__"] = np.where(reference.age > 40, "churn", "stay")
    current["__prediction__"] = np.where(current.age > 40, "churn", "stay")
    result = drift.DriftDetector().fit(reference).score(current)
    prediction = drift.prediction_drift(reference["__prediction__"], current["__prediction__"])
    page = report.render(result, reference=reference, current=current, title="t", prediction=prediction)
    assert "<h2>Predictions</h2>" in page and f"Prediction drift: psi {prediction.score:.4g}" in page
    assert len(_svgs(page)) == len(result.features) + 1
