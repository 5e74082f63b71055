"""The drift report: one self-contained HTML page per analysis (inline CSS and SVG, no scripts).

Shows the verdict and the explanation, a table of every feature (importance, method, score,
threshold, missing and unseen shares), a reference-versus-current plot per feature (histograms
on shared bins for numeric columns, bar charts of category shares for categorical ones), and
the labelled-traffic metric over time when given. Binning is numpy only; the charts are drawn
as SVG here. Owns presentation only: it recomputes no drift statistic and writes no file.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlkube.api import base, monitor
from mlkube.ml import drift, drift_performance

HISTOGRAM_BINS = 30
MAX_CATEGORIES_DRAWN = 12
WIDTH, HEIGHT, MARGIN = 560, 170, 28
REFERENCE_COLOUR, CURRENT_COLOUR = "#8a94a6", "#d9480f"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#1f2933;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{padding:.7rem 1rem;border-radius:6px;margin:1rem 0;background:#e6f4ea}
.verdict.drift{background:#fde8e1}
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .5rem;border-bottom:1px solid #e4e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}tr.drifted td{background:#fff4ef}
.feature{display:inline-block;vertical-align:top;margin:.6rem 1rem .6rem 0}
.feature h3{font-size:1rem;margin:.2rem 0}.muted{color:#616e7c}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#52606d}
"""


def render(
    result: drift.DriftResult,
    *,
    reference: Mapping[str, pd.Series],
    current: Mapping[str, pd.Series],
    title: str,
    subtitle: str | None = None,
    performance_history: Sequence[tuple[str, float]] | None = None,
    performance: drift_performance.PerformanceDrift | None = None,
    prediction: drift.FeatureDrift | None = None,
    bias: monitor.BiasDriftResult | None = None,
) -> str:
    """The report page. ``reference`` and ``current``: a column per compared feature (a DataFrame,
    or a mapping when columns differ in length, as a text column's words do); ``subtitle``: a line
    under the title (what the reference rows are).
    ``performance_history``: (time label, metric value) pairs, oldest first.

    ``prediction`` (from ``drift.prediction_drift``) adds its verdict, and its distribution when
    the tables hold the prediction column; ``performance`` adds the concept-drift verdict; ``bias``
    (``drift_fairness.check``) adds the group metrics against their test-split values.
    """
    ranked = result.ranked()
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>",
        f"<p>{_e(subtitle)}</p>" if subtitle else "",
        f"<p class='muted'>{result.n_reference:,} reference rows, {result.n_current:,} current rows, "
        f"{len(result.features)} features</p>",
        _verdict(result, prediction, performance, bias),
        "<h2>Features</h2>",
        _feature_table(ranked),
        "<h2>Distributions</h2><p class='legend'>"
        f"<span style='background:{REFERENCE_COLOUR}'></span>reference"
        f"<span style='background:{CURRENT_COLOUR}'></span>current</p>",
    ]
    for feature in ranked:
        parts.append(_feature_plot(feature, reference[feature.name], current[feature.name]))
    if prediction is not None and prediction.name in reference and prediction.name in current:
        parts += ["<h2>Predictions</h2>", _feature_plot(prediction, reference[prediction.name], current[prediction.name])]
    if performance_history:
        parts.append(_performance_section(performance_history, performance))
    if bias is not None:
        parts.append(_bias_section(bias))
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict(
    result: drift.DriftResult,
    prediction: drift.FeatureDrift | None,
    performance: drift_performance.PerformanceDrift | None,
    bias: monitor.BiasDriftResult | None = None,
) -> str:
    drifting = (
        result.dataset_drift
        or (prediction is not None and prediction.drifted)
        or (performance is not None and performance.drifted)
        or (bias is not None and bias.drifted)
    )
    lines = [
        f"<strong>{_e(result.explanation())}</strong>",
        f"Drifted share {result.drift_share:.0%}; the dataset drifts at {result.dataset_share:.0%}.",
    ]
    if prediction is not None:
        lines.append(
            f"Prediction drift: {prediction.method} {_number(prediction.score)} "
            f"(threshold {_number(prediction.threshold)}): {'drifted' if prediction.drifted else 'stable'}."
        )
    if performance is not None:
        current = "unknown" if performance.current is None else _number(performance.current)
        lines.append(
            f"Performance: {_e(performance.metric)} {current} on {performance.samples:,} labelled requests, "
            f"baseline {_number(performance.baseline)}, allowed drop {_number(performance.max_drop)}: "
            f"{'degraded' if performance.drifted else 'within bounds'}."
            + (f" {_e(performance.note)}" if performance.note else "")
        )
    if bias is not None:
        moved = [s for s in bias.shifts if s.drifted]
        lines.append(
            "Fairness: "
            + (f"{len(moved)} group metric(s) moved past the allowed drop." if moved else "group metrics within bounds.")
            + (f" {_e(bias.note)}." if bias.note else "")
        )
    return f"<div class='verdict{' drift' if drifting else ''}'>{'<br>'.join(lines)}</div>"


def _bias_section(bias: monitor.BiasDriftResult) -> str:
    """The group and summary metrics that moved most, against the version's test split."""
    rows = "".join(
        f"<tr class='{'drifted' if s.drifted else ''}'><td>{_e(s.feature)}</td><td>{_e(s.group or 'all groups')}</td>"
        f"<td>{_e(s.metric)}</td><td>{_number(s.baseline)}</td><td>{_number(s.current)}</td><td>{s.samples:,}</td>"
        f"<td>{'yes' if s.drifted else 'no'}</td></tr>"
        for s in bias.shifts
    )
    table = (
        "<table><tr><th>feature</th><th>group</th><th>metric</th><th>test split</th><th>window</th><th>requests</th>"
        f"<th>drifted</th></tr>{rows}</table>"
        if rows
        else "<p class='muted'>no group had enough requests to be judged</p>"
    )
    note = f"<p class='muted'>{_e(bias.note)}</p>" if bias.note else ""
    return f"<h2>Fairness</h2>{table}{note}"


def _feature_table(features: list[drift.FeatureDrift]) -> str:
    header = (
        "<table><tr><th>feature</th><th>importance</th><th>method</th><th>score</th><th>threshold</th>"
        "<th>drifted</th><th>missing ref / cur</th><th>unseen</th></tr>"
    )
    rows = []
    for f in features:
        importance = "" if f.importance is None else f"{f.importance:.3f}"
        unseen = f"{f.unseen_current:.1%}" if f.kind == "categorical" else ""
        note = f" <span class='muted'>({_e(f.note)})</span>" if f.note else ""
        rows.append(
            f"<tr class='{'drifted' if f.drifted else ''}'><td>{_e(f.name)}{note}</td><td>{importance}</td>"
            f"<td>{f.method}</td><td>{_number(f.score)}</td><td>{_number(f.threshold)}</td>"
            f"<td>{'yes' if f.drifted else 'no'}</td>"
            f"<td>{f.missing_reference:.1%} / {f.missing_current:.1%}</td><td>{unseen}</td></tr>"
        )
    return header + "".join(rows) + "</table>"


def _feature_plot(feature: drift.FeatureDrift, reference: pd.Series, current: pd.Series) -> str:
    if feature.kind == "numeric":
        labels, ref_share, cur_share = histograms(reference, current)
    else:
        labels, ref_share, cur_share = category_shares(reference, current)
    verdict = "drifted" if feature.drifted else "stable"
    caption = f"{feature.method} {_number(feature.score)} / threshold {_number(feature.threshold)}: {verdict}"
    return (
        f"<div class='feature'><h3>{_e(feature.name)}</h3><div class='muted'>{caption}</div>"
        f"{_bars_svg(labels, ref_share, cur_share, numeric=feature.kind == 'numeric')}</div>"
    )


def histograms(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Shares per bin on equal bins spanning both samples' 0.5%-99.5% range (outliers in the end bins)."""
    ref = _finite(reference)
    cur = _finite(current)
    both = [values for values in (ref, cur) if values.size]
    if not both:
        return [], np.zeros(0), np.zeros(0)
    lo = min(np.quantile(values, 0.005) for values in both)
    hi = max(np.quantile(values, 0.995) for values in both)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    shares = []
    for values in (ref, cur):
        counts = np.bincount(
            np.clip(np.searchsorted(edges, values, side="right") - 1, 0, HISTOGRAM_BINS - 1), minlength=HISTOGRAM_BINS
        )
        shares.append(counts / max(values.size, 1))
    return [_number(edge) for edge in edges], shares[0], shares[1]


def category_shares(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Shares of the most frequent categories (of either side), then "other" and "missing"."""
    ref_counts = reference.value_counts(dropna=True)
    cur_counts = current.value_counts(dropna=True)
    leading = (ref_counts / len(reference)).add(cur_counts / len(current), fill_value=0)
    shown = list(leading.sort_values(ascending=False).index[:MAX_CATEGORIES_DRAWN])
    labels = [str(category) for category in shown]
    shares = []
    for counts, column in ((ref_counts, reference), (cur_counts, current)):
        values = [counts.get(category, 0) for category in shown]
        values += [counts.sum() - sum(values), column.isna().sum()]
        shares.append(np.asarray(values, dtype=float) / max(len(column), 1))
    labels += ["other", "missing"]
    keep = (shares[0] > 0) | (shares[1] > 0)
    return [label for label, k in zip(labels, keep) if k], shares[0][keep], shares[1][keep]


def _bars_svg(labels: list[str], reference: np.ndarray, current: np.ndarray, *, numeric: bool) -> str:
    """Reference and current shares side by side per bin or category, on one share axis."""
    groups = len(reference)
    if groups == 0:
        return "<p class='muted'>no values</p>"
    top = max(reference.max(), current.max(), 1e-12)
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    slot = plot_w / groups
    bar = slot * (0.5 if numeric else 0.4)
    axis_y = HEIGHT - MARGIN
    shapes = [
        f"<line x1='{MARGIN}' y1='{axis_y}' x2='{WIDTH - MARGIN}' y2='{axis_y}' stroke='#9aa5b1'/>",
        f"<text x='{MARGIN}' y='{MARGIN - 10}'>{top:.1%}</text>",
    ]
    for i in range(groups):
        for offset, share, colour, name in (
            (0.0, reference[i], REFERENCE_COLOUR, "reference"),
            (bar, current[i], CURRENT_COLOUR, "current"),
        ):
            height = plot_h * share / top
            x = MARGIN + i * slot + (slot - 2 * bar) / 2 + offset
            shapes.append(
                f"<rect x='{x:.1f}' y='{HEIGHT - MARGIN - height:.1f}' width='{bar:.1f}' "
                f"height='{height:.1f}' fill='{colour}'><title>{_e(_label(labels, i, numeric))} "
                f"{name}: {share:.2%}</title></rect>"
            )
    shapes += _axis_labels(labels, slot, numeric)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img'>{''.join(shapes)}</svg>"
    )


def _axis_labels(labels: list[str], slot: float, numeric: bool) -> list[str]:
    y = HEIGHT - MARGIN + 14
    if numeric:  # bin edges: first, middle and last
        picks = ((0, "start"), (len(labels) // 2, "middle"), (len(labels) - 1, "end"))
        return [f"<text x='{MARGIN + i * slot:.1f}' y='{y}' text-anchor='{anchor}'>{_e(labels[i])}</text>" for i, anchor in picks]
    return [
        f"<text x='{MARGIN + (i + 0.5) * slot:.1f}' y='{y}' text-anchor='middle'>{_e(label[:10])}</text>"
        for i, label in enumerate(labels)
    ]


def _label(labels: list[str], i: int, numeric: bool) -> str:
    return f"[{labels[i]}, {labels[i + 1]})" if numeric else labels[i]


def _performance_section(history: Sequence[tuple[str, float]], performance: drift_performance.PerformanceDrift | None) -> str:
    """The metric over time as a line, with the test-set baseline and the lowest acceptable value."""
    values = np.asarray([value for _, value in history], dtype=float)
    guides = []
    if performance is not None:
        lower_is_better = performance.metric in base.LOWER_IS_BETTER
        limit = performance.baseline + (performance.max_drop if lower_is_better else -performance.max_drop)
        guides = [("baseline", performance.baseline, "#3e4c59"), ("limit", limit, CURRENT_COLOUR)]
    everything = np.concatenate([values, [value for _, value, _ in guides]])
    lo, hi = everything.min(), everything.max()
    span = (hi - lo) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def y_of(value: float) -> float:
        return HEIGHT - MARGIN - plot_h * (value - lo) / span

    step = plot_w / max(len(values) - 1, 1)
    points = " ".join(f"{MARGIN + i * step:.1f},{y_of(value):.1f}" for i, value in enumerate(values))
    shapes = [f"<polyline points='{points}' fill='none' stroke='#1f2933' stroke-width='2'/>"]
    for name, value, colour in guides:
        shapes.append(
            f"<line x1='{MARGIN}' x2='{WIDTH - MARGIN}' y1='{y_of(value):.1f}' y2='{y_of(value):.1f}' "
            f"stroke='{colour}' stroke-dasharray='4 3'/><text x='{WIDTH - MARGIN + 2}' "
            f"y='{y_of(value) + 4:.1f}'>{name}</text>"
        )
    shapes += [
        f"<text x='{MARGIN}' y='{HEIGHT - 6}'>{_e(history[0][0])}</text>",
        f"<text x='{WIDTH - MARGIN}' y='{HEIGHT - 6}' text-anchor='end'>{_e(history[-1][0])}</text>",
        f"<text x='2' y='{y_of(hi) + 4:.1f}'>{_number(hi)}</text>",
        f"<text x='2' y='{y_of(lo) + 4:.1f}'>{_number(lo)}</text>",
    ]
    metric = performance.metric if performance is not None else "metric"
    return (
        f"<h2>Performance over time ({_e(metric)})</h2><svg xmlns='http://www.w3.org/2000/svg' "
        f"width='{WIDTH + 40}' height='{HEIGHT}' role='img'>{''.join(shapes)}</svg>"
    )


def _finite(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


def _number(value: float) -> str:
    return f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
