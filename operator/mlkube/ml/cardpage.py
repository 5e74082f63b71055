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

import html
from collections.abc import Iterable, Mapping
from typing import Any

from mlkube.ml import charts

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
        ("fairness", "Fairness", _fairness(card)),
        ("data", "Data", _data(card)),
        ("preprocessing", "Preprocessing", _preprocessing(card)),
        ("algorithm", "Algorithm and parameters", _algorithm(card)),
        ("lineage", "Lineage", _lineage(card)),
        ("approvals", "Approvals", _approvals(card)),
    ]
    shown = [(anchor, title, body) for anchor, title, body in sections if body]
    project = _get(card, "lineage", "project") or "model"
    return "\n".join(
        [
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Model card: {_e(project)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            _header(card, project),
            "<nav>" + "".join(f"<a href='#{anchor}'>{title}</a>" for anchor, title, _ in shown) + "</nav>",
            *(f"<section id='{anchor}'><h2>{title}</h2>{body}</section>" for anchor, title, body in shown),
            "</body></html>",
        ]
    )


def _header(card: Mapping[str, Any], project: Any) -> str:
    lineage = _dict(card.get("lineage"))
    facts = [
        _e(card.get("algorithm", "")),
        _e(" of ".join(str(v) for v in (_get(card, "problem", "task"), _get(card, "problem", "target")) if v)),
        f"TrainingJob {_e(lineage['trainingJob'])}" if lineage.get("trainingJob") else "",
        f"trigger {_e(lineage['trigger'])}" if lineage.get("trigger") else "",
        f"created {_e(card['createdAt'])}" if card.get("createdAt") else "",
    ]
    eligible = card.get("eligible")
    if eligible is None:
        badge = ""
    elif eligible:
        badge = "<p><span class='badge ok'>eligible: meets its success criteria</span></p>"
    else:
        failed = [c.get("metric") for c in _dicts(card.get("successCriteria")) if not c.get("met")]
        failed += [f"fairness {c}" for c in _dict(card.get("fairness")).get("failedCriteria") or [] if isinstance(c, str)]
        badge = f"<p><span class='badge bad'>not eligible: fails {_e(', '.join(map(str, failed)) or 'its criteria')}</span></p>"
    return f"<h1>Model card: {_e(project)}</h1><p class='muted'>{' · '.join(f for f in facts if f)}</p>{badge}"


def _goal(card: Mapping[str, Any]) -> str:
    goal = _dict(card.get("goal"))
    if not goal:
        return ""
    rows = [("Goal", _e(goal.get("description", ""))), ("Type", _e(goal.get("type", "")))]
    rows.append(("KPI", _e(goal["kpi"]) if goal.get("kpi") else "<span class='muted'>none set</span>"))
    if goal.get("deadline"):
        rows.append(("Deadline", _e(goal["deadline"])))
    rows += [(_e(k), _value(v)) for k, v in goal.items() if k not in {"description", "type", "kpi", "deadline"}]
    return _pairs(rows)


def _problem(card: Mapping[str, Any]) -> str:
    problem = _dict(card.get("problem"))
    if not problem:
        return ""
    labels = {"task": "Task", "target": "Target column", "positiveClass": "Positive class", "primaryMetric": "Primary metric"}
    rows = [(labels.get(k, _e(k)), _value(v)) for k, v in problem.items() if v is not None]
    if "classes" in card:
        rows.append(("Classes", _value(card["classes"])))
    return _pairs(rows)


def _data(card: Mapping[str, Any]) -> str:
    data = _dict(card.get("data"))
    if not data:
        return ""
    parts = [
        _pairs(
            [
                ("Source", f"<code>{_e(data.get('uri', ''))}</code>"),
                ("Snapshot digest", f"<code>{_e(data.get('digest', ''))}</code>"),
                ("Rows", _value(data.get("rows"))),
                ("Columns", _value(data.get("columns"))),
                *([("Joined with", _inline(data["join"]))] if data.get("join") else []),
                *(
                    [("Drift reference", _value(_get(card, "reference", "description")))]
                    if _get(card, "reference", "description")
                    else []
                ),
            ]
        )
    ]
    profile = _dict(data.get("profile"))
    if profile:
        missing = sorted(
            ((k, v) for k, v in _dict(profile.get("missingShare")).items() if _is_number(v) and v > 0), key=lambda kv: -kv[1]
        )
        parts += [
            "<h3>Profile</h3>",
            _pairs(
                [
                    ("Duplicate rows", _value(profile.get("duplicateRows"))),
                    ("Constant columns", _value(profile.get("constantColumns")) if profile.get("constantColumns") else "none"),
                    ("Type mismatches", _value(profile.get("typeMismatches")) if profile.get("typeMismatches") else "none"),
                    ("Missing values", ", ".join(f"{_e(k)} {v:.1%}" for k, v in missing) if missing else "none"),
                ]
            ),
        ]
    schema = _dicts(card.get("featureSchema"))
    if schema:
        rows = []
        for f in schema:
            categories = [str(c) for c in f.get("categories", [])]
            listed = ", ".join(categories[:MAX_CATEGORIES_LISTED]) + (
                f", … ({len(categories)})" if len(categories) > MAX_CATEGORIES_LISTED else ""
            )
            rows.append(
                [_e(f.get("name", "")), _e(f.get("type", "")), _e(f.get("dtype", "")), _value(f.get("nullable")), _e(listed)]
            )
        table = _table(["feature", "type", "dtype", "nullable", "categories"], rows)
        if len(rows) > FEATURES_OPEN:  # a long list stays one click away, below the rest
            table = f"<details><summary>{len(rows)} features</summary>{table}</details>"
        parts += ["<h3>Features</h3>", table]
    return "".join(parts)


def _preprocessing(card: Mapping[str, Any]) -> str:
    processing = _dict(card.get("processing"))
    if not processing:
        return ""
    parts = []
    columns = _dict(processing.get("columns"))
    if columns:
        parts.append(
            _pairs([(_e(k), f"{len(v)}: {_value(v)}" if isinstance(v, list) and v else "none") for k, v in columns.items()])
        )
    rows = _ordered(_dict(processing.get("rows")), ROW_ORDER)
    if rows:
        parts += ["<h3>Rows</h3>", _table([_e(k) for k in rows], [[_value(v) for v in rows.values()]], right=range(len(rows)))]
    if processing.get("steps"):
        parts.append(f"<p>Pipeline steps: {_e(' → '.join(map(str, processing['steps'])))}</p>")
    spec = _dict(processing.get("spec"))
    if spec:
        parts += ["<h3>Settings</h3>", _pairs((_e(k), _inline(v)) for k, v in spec.items())]
    return "".join(parts)


def _algorithm(card: Mapping[str, Any]) -> str:
    if "algorithm" not in card:
        return ""
    parts = [f"<p>Algorithm: <strong>{_e(card['algorithm'])}</strong></p>"]
    params = _dict(card.get("params"))
    parts.append(_value(params) if params else "<p class='muted'>default parameters</p>")
    if card.get("tuning"):
        parts += ["<h3>Tuning</h3>", _pairs((_e(k), _inline(v)) for k, v in _dict(card["tuning"]).items())]
    diagnostics = _dict(card.get("diagnostics"))
    overfitting = _dict(diagnostics.get("overfitting"))
    if overfitting:
        verdict = "flagged as overfitting" if overfitting.get("flagged") else "no overfitting flagged"
        parts.append(
            f"<p>Training score {_value(overfitting.get('trainScore'))}, validation score "
            f"{_value(overfitting.get('validationScore'))}: {verdict}.</p>"
        )
    if diagnostics.get("warnings"):
        parts.append("<p>Warnings:</p><ul>" + "".join(f"<li>{_e(w)}</li>" for w in diagnostics["warnings"]) + "</ul>")
    return "".join(parts)


def _metrics(card: Mapping[str, Any]) -> str:
    metrics = {split: _dict(values) for split, values in _dict(card.get("metrics")).items()}
    if not any(metrics.values()):
        return ""
    primary = _get(card, "problem", "primaryMetric")
    names = sorted({name for values in metrics.values() for name in values}, key=lambda n: (n != primary, n))
    splits = [s for s in ("validation", "test") if s in metrics] + [s for s in metrics if s not in ("validation", "test")]
    rows = [
        (
            "primary" if name == primary else "",
            [_e(name), *(_metric(metrics[s].get(name)) for s in splits)],
        )
        for name in names
    ]
    body = "".join(f"<tr class='{cls}'>" + "".join(_cell(c, i > 0) for i, c in enumerate(cells)) + "</tr>" for cls, cells in rows)
    parts = [
        f"<table><tr><th>metric</th>{''.join(f'<th>{_e(s)}</th>' for s in splits)}</tr>{body}</table>",
        "<p class='muted'>The test metrics are the baseline a DriftMonitor's performance check compares "
        "labelled traffic with.</p>",
    ]
    criteria = _dicts(card.get("successCriteria"))
    if criteria:
        parts += [
            "<h3>Success criteria (on the test split)</h3>",
            _table(
                ["metric", "required", "measured", "met"],
                [
                    [
                        _e(c.get("metric")),
                        f"{_e(c.get('op'))} {_value(c.get('threshold'))}",
                        _metric(c.get("value")),
                        _value(c.get("met")),
                    ]
                    for c in criteria
                ],
                right=(2,),
            ),
        ]
    comparison = _dict(card.get("comparison"))
    if comparison:
        parts.append(_comparison(comparison))
    return "".join(parts)


def _comparison(comparison: Mapping[str, Any]) -> str:
    metric, champion = _e(comparison.get("metric")), comparison.get("championVersion")
    holdout = "the newest labelled traffic" if comparison.get("holdout") == "recent" else "the same test rows"
    if comparison.get("error"):
        outcome = f"the champion could not be scored: {_e(comparison['error'])}"
    else:
        outcome = "this version is better" if comparison.get("challengerBetter") else "the champion stays better"
    return (
        f"<h3>Against the champion (v{_e(champion)})</h3>"
        + _table(
            ["metric", "this version", f"champion v{_e(champion)}"],
            [[metric, _metric(comparison.get("challenger")), _metric(comparison.get("champion"))]],
            right=(1, 2),
        )
        + f"<p>Both scored on {holdout}: {outcome}.</p>"
    )


def _performance(card: Mapping[str, Any]) -> str:
    plots = []
    confusion = _dict(card.get("confusionMatrix"))
    if confusion.get("matrix"):
        plots.append(
            (
                "Confusion matrix (test split; rows: true class, columns: predicted)",
                charts.confusion(confusion.get("labels") or list(range(len(confusion["matrix"]))), confusion["matrix"]),
            )
        )
    calibration = _dict(card.get("calibration"))
    if calibration.get("bins"):
        of = (
            f"probability of {_e(calibration['positiveClass'])}"
            if calibration.get("of") == "positiveClass" and "positiveClass" in calibration
            else "confidence of the predicted class"
        )
        plots.append(
            (f"Calibration ({of}, {_value(calibration.get('rows'))} test rows)", charts.calibration(calibration["bins"]))
        )
    residuals = _dict(card.get("residuals"))
    if residuals.get("points"):
        plots.append(
            (f"Predicted against actual ({len(residuals['points'])} test rows)", charts.predicted_vs_actual(residuals["points"]))
        )
    histogram = _dict(residuals.get("histogram"))
    if histogram.get("counts"):
        plots.append(("Residuals (actual - predicted), test split", charts.histogram(histogram["edges"], histogram["counts"])))
    parts = (
        ["<div class='plots'>" + "".join(f"<div class='plot'><h3>{t}</h3>{svg}</div>" for t, svg in plots) + "</div>"]
        if plots
        else []
    )
    if residuals.get("quantiles"):
        quantiles = _ordered(_dict(residuals["quantiles"]), [f"p{q}" for q in range(101)])
        parts.append(
            "<p>Residual distribution (actual - predicted) on the test split:</p>"
            + _table(
                ["mean", *map(_e, quantiles)],
                [[_value(residuals.get("mean")), *(_value(v) for v in quantiles.values())]],
                right=range(len(quantiles) + 1),
            )
        )
    return "".join(parts)


def _importance(card: Mapping[str, Any]) -> str:
    importance = {str(k): float(v) for k, v in _dict(card.get("featureImportance")).items() if _is_number(v)}
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


def _fairness(card: Mapping[str, Any]) -> str:
    fairness = card.get("fairness")
    if not isinstance(fairness, Mapping) or not fairness:
        return ""
    parts = []
    if "criteriaMet" in fairness:
        met = fairness["criteriaMet"]
        failed = [str(c) for c in fairness.get("failedCriteria") or []]
        detail = f": fails {'; '.join(failed)}" if failed else ""
        parts.append(
            f"<p><span class='badge {'ok' if met else 'bad'}'>fairness criteria {'met' if met else 'not met'}"
            f"{_e(detail)}</span></p>"
        )
    required = [str(c) for c in fairness.get("requiredAtPrediction") or []]
    if required:
        parts.append(
            f"<p><strong>Every prediction request must carry {_e(', '.join(required))}</strong>: the "
            f"{_e(str(fairness.get('mitigation', '')).split('/')[0])} post-processing decides per group; "
            "a request without it is refused (400).</p>"
        )
    facts = {k: fairness[k] for k in ("sensitiveFeatures", "favorableOutcome", "mitigation") if k in fairness}
    if facts:
        parts.append(_value(facts))
    metrics, intervals = _dict(fairness.get("metrics")), _dict(fairness.get("intervals"))
    if metrics:
        parts += [
            "<h3>Metrics (test split, worst over the sensitive features)</h3>",
            _table(
                ["metric", "value", "95 % interval"],
                [[_e(name), _value(value), _interval(intervals.get(name))] for name, value in metrics.items()],
                right=(1, 2),
            ),
        ]
    tradeoff = {k: _dict(v) for k, v in _dict(fairness.get("tradeoff")).items()}
    if tradeoff:
        parts += [
            "<h3>Without and with the mitigation</h3>",
            _table(
                ["metric", "unmitigated", "mitigated"],
                [[_e(k), _value(v.get("unmitigated")), _value(v.get("mitigated"))] for k, v in tradeoff.items()],
                right=(1, 2),
            ),
        ]
    for feature, groups in _dict(fairness.get("groups")).items():
        parts += [f"<h3>Groups by {_e(feature)} (test split)</h3>", _group_table(groups)]
    data = _dict(fairness.get("data"))
    imbalances, differences = _dict(data.get("class_imbalance")), _dict(data.get("label_rate_difference"))
    for feature in dict.fromkeys([*_dict(data.get("groups")), *imbalances, *differences]):
        groups = _dict(data.get("groups")).get(feature)
        parts += [
            f"<h3>Training data by {_e(feature)}</h3>",
            f"<p class='muted'>class imbalance {_value(imbalances.get(feature))} · favorable-label rate difference "
            f"{_value(differences.get(feature))}</p>",
            _group_table(groups) if groups else "",
        ]
    shown = {"criteriaMet", "failedCriteria", "requiredAtPrediction", "metrics", "intervals", "tradeoff", "groups", "data"}
    rest = {k: v for k, v in fairness.items() if k not in shown and k not in facts}
    if rest:
        parts.append(_value(rest))
    return "".join(parts)


def _group_table(groups: Any) -> str:
    groups = {g: _dict(s) for g, s in _dict(groups).items()}
    stats = list(dict.fromkeys(k for s in groups.values() for k in s))
    return _table(
        ["group", *map(_e, stats)],
        [[_e(g), *(_value(s.get(k)) for k in stats)] for g, s in groups.items()],
        right=range(1, len(stats) + 1),
    )


def _interval(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{_value(value[0])} to {_value(value[1])}"
    return _value(None)


def _lineage(card: Mapping[str, Any]) -> str:
    lineage = _dict(card.get("lineage"))
    if not lineage:
        return ""
    parts = []
    sources = _dicts(lineage.get("data"))
    if sources:
        parts += [
            "<h3>Data sources</h3>",
            _table(
                ["uri", "digest", "rows"],
                [
                    [f"<code>{_e(s.get('uri', ''))}</code>", f"<code>{_e(s.get('digest', ''))}</code>", _value(s.get("rows"))]
                    for s in sources
                ],
                right=(2,),
            ),
        ]
    rest = {k: v for k, v in lineage.items() if not (k == "data" and sources)}
    if rest:
        parts.append(_value(rest))
    return "".join(parts)


def _approvals(card: Mapping[str, Any]) -> str:
    project = _e(_get(card, "lineage", "project") or "<project>")
    namespace = _get(card, "lineage", "namespace")
    flag = f"-n {_e(namespace)} " if namespace else ""
    return (
        "<p>Approvals and their history are not in this file (it is pinned by the version's digest and never "
        "changes). They live on the ModelVersion object the registry created for this run: "
        f"<code>kubectl describe mv {flag}{project}-v&lt;N&gt;</code> shows its approval state, reason and the "
        "Events that record each decision. "
        f"<code>kubectl get mv {flag}-l mlkube.io/project={project} "
        "-o custom-columns=NAME:.metadata.name,JOB:.spec.trainingJob</code> finds N by training job.</p>"
    )


# ---- formatting -------------------------------------------------------------------------------


def _value(value: Any) -> str:
    """Any JSON value as escaped HTML: mappings as nested key/value tables, lists comma-separated."""
    if value is None:
        return "<span class='muted'>—</span>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return _pairs([(_e(k), _value(v)) for k, v in value.items()]) if value else "<span class='muted'>none</span>"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if value else "<span class='muted'>none</span>"
    return _e(value)


def _inline(value: Any) -> str:
    """A JSON value on one line: a mapping as `key value · key value` (nested ones in parentheses)."""
    if isinstance(value, Mapping) and value:
        return " · ".join(
            f"{_e(k)} {_inline(v) if not isinstance(v, Mapping) else '(' + _inline(v) + ')'}" for k, v in value.items()
        )
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return "; ".join(_inline(v) for v in value)
    return _value(value)


def _metric(value: Any) -> str:
    """A metric value as the card holds it, to 4 decimals (the full value in a tooltip)."""
    if not _is_number(value):
        return _value(value)
    return f"<span title='{value!r}'>{value:.4f}</span>"


def _pairs(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of already-escaped label and value HTML."""
    return "<table>" + "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows) + "</table>"


def _table(headers: list[str], rows: list[list[str]], *, right: Iterable[int] = ()) -> str:
    """A table of already-escaped header and cell HTML; the columns `right` (numbers) right-aligned."""
    right = set(right)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c, i in right) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(content: str, numeric: bool) -> str:
    return f"<td class='n'>{content}</td>" if numeric else f"<td>{content}</td>"


def _ordered(values: Mapping[str, Any], order: Iterable[str]) -> dict[str, Any]:
    """`values` with the keys of `order` first, in that order, then the others as they come."""
    first = [k for k in order if k in values]
    return {**{k: values[k] for k in first}, **values}


def _get(card: Mapping[str, Any], section: str, key: str) -> Any:
    return _dict(card.get(section)).get(key)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
