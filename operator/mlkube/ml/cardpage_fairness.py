"""The fairness section of the model card page (``cardpage``): the sensitive features, the data's
bias before training, each group's rates on the test split, the summary metrics with their
intervals, the criteria, and the cost of a mitigation. Pure; every card value escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlkube.ml import html_parts


def section(card: Mapping[str, Any]) -> str:
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
            f"{html_parts.escape(detail)}</span></p>"
        )
    required = [str(c) for c in fairness.get("requiredAtPrediction") or []]
    if required:
        parts.append(
            f"<p><strong>Every prediction request must carry {html_parts.escape(', '.join(required))}</strong>: the "
            f"{html_parts.escape(str(fairness.get('mitigation', '')).split('/')[0])} post-processing decides per group; "
            "a request without it is refused (400).</p>"
        )
    facts = {k: fairness[k] for k in ("sensitiveFeatures", "favorableOutcome", "mitigation") if k in fairness}
    if facts:
        parts.append(html_parts.shown(facts))
    metrics, intervals = html_parts.mapping(fairness.get("metrics")), html_parts.mapping(fairness.get("intervals"))
    if metrics:
        parts += [
            "<h3>Metrics (test split, worst over the sensitive features)</h3>",
            html_parts.table(
                ["metric", "value", "95 % interval"],
                [
                    [html_parts.escape(name), html_parts.shown(value), interval(intervals.get(name))]
                    for name, value in metrics.items()
                ],
                right=(1, 2),
            ),
        ]
    tradeoff = {k: html_parts.mapping(v) for k, v in html_parts.mapping(fairness.get("tradeoff")).items()}
    if tradeoff:
        parts += [
            "<h3>Without and with the mitigation</h3>",
            html_parts.table(
                ["metric", "unmitigated", "mitigated"],
                [
                    [html_parts.escape(k), html_parts.shown(v.get("unmitigated")), html_parts.shown(v.get("mitigated"))]
                    for k, v in tradeoff.items()
                ],
                right=(1, 2),
            ),
        ]
    for feature, groups in html_parts.mapping(fairness.get("groups")).items():
        parts += [f"<h3>Groups by {html_parts.escape(feature)} (test split)</h3>", group_table(groups)]
    data = html_parts.mapping(fairness.get("data"))
    imbalances, differences = (
        html_parts.mapping(data.get("class_imbalance")),
        html_parts.mapping(data.get("label_rate_difference")),
    )
    for feature in dict.fromkeys([*html_parts.mapping(data.get("groups")), *imbalances, *differences]):
        groups = html_parts.mapping(data.get("groups")).get(feature)
        parts += [
            f"<h3>Training data by {html_parts.escape(feature)}</h3>",
            f"<p class='muted'>class imbalance {html_parts.shown(imbalances.get(feature))} · favorable-label rate difference "
            f"{html_parts.shown(differences.get(feature))}</p>",
            group_table(groups) if groups else "",
        ]
    shown = {"criteriaMet", "failedCriteria", "requiredAtPrediction", "metrics", "intervals", "tradeoff", "groups", "data"}
    rest = {k: v for k, v in fairness.items() if k not in shown and k not in facts}
    if rest:
        parts.append(html_parts.shown(rest))
    return "".join(parts)


def group_table(groups: Any) -> str:
    groups = {g: html_parts.mapping(s) for g, s in html_parts.mapping(groups).items()}
    stats = list(dict.fromkeys(k for s in groups.values() for k in s))
    return html_parts.table(
        ["group", *map(html_parts.escape, stats)],
        [[html_parts.escape(g), *(html_parts.shown(s.get(k)) for k in stats)] for g, s in groups.items()],
        right=range(1, len(stats) + 1),
    )


def interval(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{html_parts.shown(value[0])} to {html_parts.shown(value[1])}"
    return html_parts.shown(None)
