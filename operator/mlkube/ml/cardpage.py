"""The model card for people: one self-contained HTML page per model version.

Rendered from the machine card (`mlkube.ml.card`, `model_card.json`) and stored beside it as
`model_card.html` (`mlkube.ml.artifacts` writes both; the manifest covers both). Sections: goal
and KPI, problem, data snapshot and profile, preprocessing, algorithm and params, metrics with
the success criteria and the champion the version was compared with, confusion matrix and
calibration (classification) or predicted-versus-actual and residuals (regression), feature
importance, fairness and lineage when the card has them, and where approvals live. A section
whose data the card lacks is left out.

Inline CSS and inline SVG drawn here; no script, no external URL, so the page renders the same
offline, from an object store or a mail attachment. Every value taken from the card goes through
`html.escape`: column names, class labels and the goal are user-controlled strings. Presentation
only: computes no metric, reads and writes no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlkube.ml import cardpage_fairness, cardpage_tasks, charts, html_parts

MAX_CATEGORIES_LISTED = 8
FEATURES_OPEN = 12
# The card's JSON has sorted keys; these are shown in the order of the pipeline.
ROW_ORDER = ("loaded", "feedback", "prepared", "train", "validation", "test")

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#1f2933;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #e4e7eb}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.primary td{font-weight:600}
.muted{color:#616e7c}.badge{display:inline-block;padding:.15rem .6rem;border-radius:4px;font-weight:600}
.ok{background:#e6f4ea;color:#1e6b34}.bad{background:#fde8e1;color:#a1330b}
nav a{margin-right:.8rem}code{background:#f5f7fa;padding:0 .2rem;border-radius:3px}
.plots{display:flex;flex-wrap:wrap;gap:1rem 2.5rem}.plot{flex:0 0 auto;max-width:460px}
svg text{font:11px system-ui,sans-serif;fill:#52606d}
"""


def render(card: Mapping[str, Any]) -> str:
    """The HTML page of the model card `card` (the dict `mlkube.ml.card.build` returns)."""
    sections = [
        ("goal", "Goal and KPI", _goal(card)),
        ("problem", "Problem", _problem(card)),
        ("metrics", "Metrics", _metrics(card)),
        ("performance", "Performance plots", _performance(card)),
        ("importance", "Feature importance", _importance(card)),
        ("clusters", "Clusters", cardpage_tasks.clusters(card)),
        ("anomaly", "Anomaly threshold", cardpage_tasks.anomaly(card)),
        ("fairness", "Fairness", cardpage_fairness.section(card)),
        ("data", "Data", _data(card)),
        ("preprocessing", "Preprocessing", _preprocessing(card)),
        ("algorithm", "Algorithm and parameters", _algorithm(card)),
        ("lineage", "Lineage", _lineage(card)),
        ("approvals", "Approvals", _approvals(card)),
    ]
    shown = [(anchor, title, body) for anchor, title, body in sections if body]
    project = html_parts.field(card, "lineage", "project") or "model"
    return "\n".join(
        [
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Model card: {html_parts.escape(project)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            _header(card, project),
            "<nav>" + "".join(f"<a href='#{anchor}'>{title}</a>" for anchor, title, _ in shown) + "</nav>",
            *(f"<section id='{anchor}'><h2>{title}</h2>{body}</section>" for anchor, title, body in shown),
            "</body></html>",
        ]
    )


def _header(card: Mapping[str, Any], project: Any) -> str:
    lineage = html_parts.mapping(card.get("lineage"))
    facts = [
        html_parts.escape(card.get("algorithm", "")),
        html_parts.escape(
            " of ".join(
                str(v) for v in (html_parts.field(card, "problem", "task"), html_parts.field(card, "problem", "target")) if v
            )
        ),
        f"TrainingJob {html_parts.escape(lineage['trainingJob'])}" if lineage.get("trainingJob") else "",
        f"trigger {html_parts.escape(lineage['trigger'])}" if lineage.get("trigger") else "",
        f"created {html_parts.escape(card['createdAt'])}" if card.get("createdAt") else "",
    ]
    eligible = card.get("eligible")
    if eligible is None:
        badge = ""
    elif eligible:
        badge = "<p><span class='badge ok'>eligible: meets its success criteria</span></p>"
    else:
        failed = [c.get("metric") for c in html_parts.mappings(card.get("successCriteria")) if not c.get("met")]
        failed += [
            f"fairness {c}" for c in html_parts.mapping(card.get("fairness")).get("failedCriteria") or [] if isinstance(c, str)
        ]
        badge = f"<p><span class='badge bad'>not eligible: fails {html_parts.escape(', '.join(map(str, failed)) or 'its criteria')}</span></p>"
    return f"<h1>Model card: {html_parts.escape(project)}</h1><p class='muted'>{' · '.join(f for f in facts if f)}</p>{badge}"


def _goal(card: Mapping[str, Any]) -> str:
    goal = html_parts.mapping(card.get("goal"))
    if not goal:
        return ""
    rows = [("Goal", html_parts.escape(goal.get("description", ""))), ("Type", html_parts.escape(goal.get("type", "")))]
    rows.append(("KPI", html_parts.escape(goal["kpi"]) if goal.get("kpi") else "<span class='muted'>none set</span>"))
    if goal.get("deadline"):
        rows.append(("Deadline", html_parts.escape(goal["deadline"])))
    rows += [
        (html_parts.escape(k), html_parts.shown(v))
        for k, v in goal.items()
        if k not in {"description", "type", "kpi", "deadline"}
    ]
    return html_parts.pairs(rows)


def _problem(card: Mapping[str, Any]) -> str:
    problem = html_parts.mapping(card.get("problem"))
    if not problem:
        return ""
    labels = {"task": "Task", "target": "Target column", "positiveClass": "Positive class", "primaryMetric": "Primary metric"}
    rows = [(labels.get(k, html_parts.escape(k)), html_parts.shown(v)) for k, v in problem.items() if v is not None]
    if "classes" in card:
        rows.append(("Classes", html_parts.shown(card["classes"])))
    return html_parts.pairs(rows)


def _data(card: Mapping[str, Any]) -> str:
    data = html_parts.mapping(card.get("data"))
    if not data:
        return ""
    parts = [
        html_parts.pairs(
            [
                ("Source", f"<code>{html_parts.escape(data.get('uri', ''))}</code>"),
                ("Snapshot digest", f"<code>{html_parts.escape(data.get('digest', ''))}</code>"),
                ("Rows", html_parts.shown(data.get("rows"))),
                ("Columns", html_parts.shown(data.get("columns"))),
                *([("Joined with", html_parts.inline(data["join"]))] if data.get("join") else []),
                *(
                    [("Drift reference", html_parts.shown(html_parts.field(card, "reference", "description")))]
                    if html_parts.field(card, "reference", "description")
                    else []
                ),
            ]
        )
    ]
    profile = html_parts.mapping(data.get("profile"))
    if profile:
        missing = sorted(
            ((k, v) for k, v in html_parts.mapping(profile.get("missingShare")).items() if html_parts.is_number(v) and v > 0),
            key=lambda kv: -kv[1],
        )
        parts += [
            "<h3>Profile</h3>",
            html_parts.pairs(
                [
                    ("Duplicate rows", html_parts.shown(profile.get("duplicateRows"))),
                    (
                        "Constant columns",
                        html_parts.shown(profile.get("constantColumns")) if profile.get("constantColumns") else "none",
                    ),
                    (
                        "Type mismatches",
                        html_parts.shown(profile.get("typeMismatches")) if profile.get("typeMismatches") else "none",
                    ),
                    ("Missing values", ", ".join(f"{html_parts.escape(k)} {v:.1%}" for k, v in missing) if missing else "none"),
                ]
            ),
        ]
    schema = html_parts.mappings(card.get("featureSchema"))
    if schema:
        rows = []
        for f in schema:
            categories = [str(c) for c in f.get("categories", [])]
            listed = ", ".join(categories[:MAX_CATEGORIES_LISTED]) + (
                f", … ({len(categories)})" if len(categories) > MAX_CATEGORIES_LISTED else ""
            )
            rows.append(
                [
                    html_parts.escape(f.get("name", "")),
                    html_parts.escape(f.get("type", "")),
                    html_parts.escape(f.get("dtype", "")),
                    html_parts.shown(f.get("nullable")),
                    html_parts.escape(listed),
                ]
            )
        table = html_parts.table(["feature", "type", "dtype", "nullable", "categories"], rows)
        if len(rows) > FEATURES_OPEN:  # a long list stays one click away, below the rest
            table = f"<details><summary>{len(rows)} features</summary>{table}</details>"
        parts += ["<h3>Features</h3>", table]
    return "".join(parts)


def _preprocessing(card: Mapping[str, Any]) -> str:
    processing = html_parts.mapping(card.get("processing"))
    if not processing:
        return ""
    parts = []
    columns = html_parts.mapping(processing.get("columns"))
    if columns:
        parts.append(
            html_parts.pairs(
                [
                    (html_parts.escape(k), f"{len(v)}: {html_parts.shown(v)}" if isinstance(v, list) and v else "none")
                    for k, v in columns.items()
                ]
            )
        )
    rows = html_parts.ordered(html_parts.mapping(processing.get("rows")), ROW_ORDER)
    if rows:
        parts += [
            "<h3>Rows</h3>",
            html_parts.table(
                [html_parts.escape(k) for k in rows], [[html_parts.shown(v) for v in rows.values()]], right=range(len(rows))
            ),
        ]
    if processing.get("steps"):
        parts.append(f"<p>Pipeline steps: {html_parts.escape(' → '.join(map(str, processing['steps'])))}</p>")
    spec = html_parts.mapping(processing.get("spec"))
    if spec:
        parts += ["<h3>Settings</h3>", html_parts.pairs((html_parts.escape(k), html_parts.inline(v)) for k, v in spec.items())]
    return "".join(parts)


def _algorithm(card: Mapping[str, Any]) -> str:
    if "algorithm" not in card:
        return ""
    parts = [f"<p>Algorithm: <strong>{html_parts.escape(card['algorithm'])}</strong></p>"]
    params = html_parts.mapping(card.get("params"))
    parts.append(html_parts.shown(params) if params else "<p class='muted'>default parameters</p>")
    if card.get("tuning"):
        parts += [
            "<h3>Tuning</h3>",
            html_parts.pairs((html_parts.escape(k), html_parts.inline(v)) for k, v in html_parts.mapping(card["tuning"]).items()),
        ]
    diagnostics = html_parts.mapping(card.get("diagnostics"))
    overfitting = html_parts.mapping(diagnostics.get("overfitting"))
    if overfitting:
        verdict = "flagged as overfitting" if overfitting.get("flagged") else "no overfitting flagged"
        parts.append(
            f"<p>Training score {html_parts.shown(overfitting.get('trainScore'))}, validation score "
            f"{html_parts.shown(overfitting.get('validationScore'))}: {verdict}.</p>"
        )
    if diagnostics.get("warnings"):
        parts.append(
            "<p>Warnings:</p><ul>" + "".join(f"<li>{html_parts.escape(w)}</li>" for w in diagnostics["warnings"]) + "</ul>"
        )
    return "".join(parts)


def _metrics(card: Mapping[str, Any]) -> str:
    metrics = {split: html_parts.mapping(values) for split, values in html_parts.mapping(card.get("metrics")).items()}
    if not any(metrics.values()):
        return ""
    primary = html_parts.field(card, "problem", "primaryMetric")
    names = sorted({name for values in metrics.values() for name in values}, key=lambda n: (n != primary, n))
    splits = [s for s in ("validation", "test") if s in metrics] + [s for s in metrics if s not in ("validation", "test")]
    rows = [
        (
            "primary" if name == primary else "",
            [html_parts.escape(name), *(html_parts.metric(metrics[s].get(name)) for s in splits)],
        )
        for name in names
    ]
    body = "".join(
        f"<tr class='{cls}'>" + "".join(html_parts.cell(c, i > 0) for i, c in enumerate(cells)) + "</tr>" for cls, cells in rows
    )
    parts = [
        f"<table><tr><th>metric</th>{''.join(f'<th>{html_parts.escape(s)}</th>' for s in splits)}</tr>{body}</table>",
        "<p class='muted'>The test metrics are the baseline a DriftMonitor's performance check compares "
        "labelled traffic with.</p>",
    ]
    criteria = html_parts.mappings(card.get("successCriteria"))
    if criteria:
        parts += [
            "<h3>Success criteria (on the test split)</h3>",
            html_parts.table(
                ["metric", "required", "measured", "met"],
                [
                    [
                        html_parts.escape(c.get("metric")),
                        f"{html_parts.escape(c.get('op'))} {html_parts.shown(c.get('threshold'))}",
                        html_parts.metric(c.get("value")),
                        html_parts.shown(c.get("met")),
                    ]
                    for c in criteria
                ],
                right=(2,),
            ),
        ]
    comparison = html_parts.mapping(card.get("comparison"))
    if comparison:
        parts.append(_comparison(comparison))
    return "".join(parts)


def _comparison(comparison: Mapping[str, Any]) -> str:
    metric, champion = html_parts.escape(comparison.get("metric")), comparison.get("championVersion")
    holdout = "the newest labelled traffic" if comparison.get("holdout") == "recent" else "the same test rows"
    if comparison.get("error"):
        outcome = f"the champion could not be scored: {html_parts.escape(comparison['error'])}"
    else:
        outcome = "this version is better" if comparison.get("challengerBetter") else "the champion stays better"
    return (
        f"<h3>Against the champion (v{html_parts.escape(champion)})</h3>"
        + html_parts.table(
            ["metric", "this version", f"champion v{html_parts.escape(champion)}"],
            [[metric, html_parts.metric(comparison.get("challenger")), html_parts.metric(comparison.get("champion"))]],
            right=(1, 2),
        )
        + f"<p>Both scored on {holdout}: {outcome}.</p>"
    )


def _performance(card: Mapping[str, Any]) -> str:
    plots = []
    confusion = html_parts.mapping(card.get("confusionMatrix"))
    if confusion.get("matrix"):
        plots.append(
            (
                "Confusion matrix (test split; rows: true class, columns: predicted)",
                charts.confusion(confusion.get("labels") or list(range(len(confusion["matrix"]))), confusion["matrix"]),
            )
        )
    calibration = html_parts.mapping(card.get("calibration"))
    if calibration.get("bins"):
        of = (
            f"probability of {html_parts.escape(calibration['positiveClass'])}"
            if calibration.get("of") == "positiveClass" and "positiveClass" in calibration
            else "confidence of the predicted class"
        )
        plots.append(
            (
                f"Calibration ({of}, {html_parts.shown(calibration.get('rows'))} test rows)",
                charts.calibration(calibration["bins"]),
            )
        )
    residuals = html_parts.mapping(card.get("residuals"))
    if residuals.get("points"):
        plots.append(
            (f"Predicted against actual ({len(residuals['points'])} test rows)", charts.predicted_vs_actual(residuals["points"]))
        )
    histogram = html_parts.mapping(residuals.get("histogram"))
    if histogram.get("counts"):
        plots.append(("Residuals (actual - predicted), test split", charts.histogram(histogram["edges"], histogram["counts"])))
    parts = (
        ["<div class='plots'>" + "".join(f"<div class='plot'><h3>{t}</h3>{svg}</div>" for t, svg in plots) + "</div>"]
        if plots
        else []
    )
    if residuals.get("quantiles"):
        quantiles = html_parts.ordered(html_parts.mapping(residuals["quantiles"]), [f"p{q}" for q in range(101)])
        parts.append(
            "<p>Residual distribution (actual - predicted) on the test split:</p>"
            + html_parts.table(
                ["mean", *map(html_parts.escape, quantiles)],
                [[html_parts.shown(residuals.get("mean")), *(html_parts.shown(v) for v in quantiles.values())]],
                right=range(len(quantiles) + 1),
            )
        )
    return "".join(parts)


def _importance(card: Mapping[str, Any]) -> str:
    importance = {
        str(k): float(v) for k, v in html_parts.mapping(card.get("featureImportance")).items() if html_parts.is_number(v)
    }
    if not importance:
        return ""
    ranked = sorted(importance.items(), key=lambda kv: -kv[1])
    shown = ranked[: charts.MAX_BARS]
    note = ""
    if len(ranked) > len(shown):
        rest = sum(v for _, v in ranked[len(shown) :])
        note = f"<p class='muted'>{len(ranked) - len(shown)} more features share {rest:.1%}.</p>"
    return (
        "<p class='muted'>Permutation importance on the test split: the drop of the primary metric when a "
        "column is shuffled, as a share of all drops.</p>" + charts.bars(shown) + note
    )


def _lineage(card: Mapping[str, Any]) -> str:
    lineage = html_parts.mapping(card.get("lineage"))
    if not lineage:
        return ""
    parts = []
    sources = html_parts.mappings(lineage.get("data"))
    if sources:
        parts += [
            "<h3>Data sources</h3>",
            html_parts.table(
                ["uri", "digest", "rows"],
                [
                    [
                        f"<code>{html_parts.escape(s.get('uri', ''))}</code>",
                        f"<code>{html_parts.escape(s.get('digest', ''))}</code>",
                        html_parts.shown(s.get("rows")),
                    ]
                    for s in sources
                ],
                right=(2,),
            ),
        ]
    rest = {k: v for k, v in lineage.items() if not (k == "data" and sources)}
    if rest:
        parts.append(html_parts.shown(rest))
    return "".join(parts)


def _approvals(card: Mapping[str, Any]) -> str:
    project = html_parts.escape(html_parts.field(card, "lineage", "project") or "<project>")
    namespace = html_parts.field(card, "lineage", "namespace")
    flag = f"-n {html_parts.escape(namespace)} " if namespace else ""
    return (
        "<p>Approvals and their history are not in this file (it is pinned by the version's digest and never "
        "changes). They live on the ModelVersion object the registry created for this run: "
        f"<code>kubectl describe mv {flag}{project}-v&lt;N&gt;</code> shows its approval state, reason and the "
        "Events that record each decision. "
        f"<code>kubectl get mv {flag}-l mlkube.io/project={project} "
        "-o custom-columns=NAME:.metadata.name,JOB:.spec.trainingJob</code> finds N by training job.</p>"
    )
