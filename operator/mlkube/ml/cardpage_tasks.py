"""The task sections of the model card page (``cardpage``) for the unsupervised framings: the
cluster profiles of a clustering model (size, share and feature means per cluster) and the
threshold of an anomaly detector. Pure; every card value escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlkube.ml import html_parts


def clusters(card: Mapping[str, Any]) -> str:
    """The clusters' profiles, one row per cluster, largest first; empty when the card has none."""
    found = html_parts.mapping(card.get("clusters"))
    profiles = html_parts.mappings(found.get("profiles"))
    if not profiles:
        return ""
    names = list(dict.fromkeys(name for p in profiles for name in html_parts.mapping(p.get("means"))))
    rows = [
        [
            html_parts.escape(p.get("cluster")),
            html_parts.escape(p.get("size")),
            html_parts.metric(p.get("share")),
            *(html_parts.metric(html_parts.mapping(p.get("means")).get(n)) for n in names),
        ]
        for p in profiles
    ]
    headers = ["cluster", "rows", "share", *(f"mean {n}" for n in names)]
    note = (
        f"<p class='muted'>{html_parts.escape(found.get('k'))} clusters, numbered by size; the training rows "
        "each cluster holds and the mean of each numeric feature in its own units.</p>"
    )
    return note + html_parts.table(headers, rows, right=range(1, len(headers)))


def anomaly(card: Mapping[str, Any]) -> str:
    """How the detector's threshold was set; empty when the card has none."""
    found = html_parts.mapping(card.get("anomaly"))
    if not found:
        return ""
    source = {
        "contamination": "the expected anomaly share (problem.contamination, else 5 %) of the training rows",
        "validationLabels": "the raw score that maximises f1 on the validation labels",
    }.get(str(found.get("thresholdFrom")), str(found.get("thresholdFrom")))
    return (
        f"<p>A reading is an anomaly when its score is at least 0.5, the threshold set from {html_parts.escape(source)}. "
        "The score is increasing in the detector's own anomaly score and 0.5 at the threshold.</p>"
        + html_parts.shown({k: found[k] for k in ("threshold", "spread", "contamination") if found.get(k) is not None})
    )
