"""Bias drift: the served version's group metrics on captured traffic against its test partition.

The baseline is the model card's ``fairness`` section (``ml.fairness`` on the test split): per
sensitive feature and group its selection rate, TPR and FPR, and the summary metrics, which are
recomputed here per feature from those group rates by the same rules. On the window, each group's
selection rate is the share of its requests answered with the favorable outcome (no labels
needed); TPR and FPR are measured on the requests that received feedback. A group's selection rate
is judged with at least ``min_group_samples`` requests, its TPR (FPR) with at least as many labeled
favorable (unfavorable) requests; the difference metrics that need TPR and FPR only when every
judged group has both. A baseline measured on few rows of a group (the card's ``count``) is noisy
itself: see docs/fairness.md.

Drift is a move past ``max_drop`` in the unfair direction: a group's selection rate or TPR falling,
its FPR rising, ``disparate_impact`` falling, or a difference metric rising. The sensitive columns
are read from the captured requests: when the model does not take them as features, clients send
them with each request (the model ignores keys it does not know) or bias drift is not judged for
that feature, which the result's ``note`` says. Pure: a card and a table in, a result out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlkube.api import monitor
from mlkube.ml import drift, fairness

# Shifts listed besides the drifted ones (the largest moves), to keep the result small.
MAX_OTHER_SHIFTS = 4
# Direction in which each metric gets less fair: +1 when a rise is unfair, -1 when a fall is.
_UNFAIR = {
    "selection_rate": -1,
    "tpr": -1,
    "fpr": +1,
    "disparate_impact": -1,
    "demographic_parity_difference": +1,
    "equalized_odds_difference": +1,
    "equal_opportunity_difference": +1,
}


@dataclasses.dataclass(frozen=True)
class Shift:
    feature: str
    group: str
    metric: str
    baseline: float
    current: float
    samples: int
    drifted: bool

    @property
    def worsening(self) -> float:
        """How much less fair the metric got (negative when it got fairer)."""
        return _UNFAIR[self.metric] * (self.current - self.baseline)

    def sentence(self) -> str:
        where = f"{self.feature}={self.group}" if self.group else self.feature
        verb = "fell" if self.current < self.baseline else "rose"
        return f"{self.metric} of {where} {verb} from {self.baseline:.3f} to {self.current:.3f}"


def check(spec: monitor.BiasDrift, card: Mapping[str, Any], current: pd.DataFrame) -> monitor.BiasDriftResult:
    """Bias drift of the window ``current`` (captured rows with ``__prediction__`` and ``__target__``)."""
    section = card.get("fairness") or {}
    baseline_groups = section.get("groups") or {}
    if not baseline_groups or "favorableOutcome" not in section:
        return monitor.BiasDriftResult(
            note="the served version's model card has no fairness section: set the project's "
            "fairness.sensitiveFeatures and retrain to watch bias drift"
        )
    favorable = str(section["favorableOutcome"])
    predicted = current[drift.PREDICTION_COLUMN].map(str).to_numpy() == favorable
    labeled = current[drift.TARGET_COLUMN].notna().to_numpy()
    truth = current[drift.TARGET_COLUMN].map(str).to_numpy() == favorable
    shifts: list[Shift] = []
    window_metrics: list[dict[str, float]] = []
    baseline_metrics: list[dict[str, float]] = []
    notes = []
    for feature, groups in baseline_groups.items():
        column = current[feature] if feature in current else pd.Series([None] * len(current), dtype=object)
        if column.isna().all():
            notes.append(f"sensitive feature {feature!r} is not in the captured requests; send it with each request")
            continue
        labels = fairness.group_labels(column).to_numpy()
        now_rates: dict[str, dict[str, float]] = {}
        for group, base_stats in groups.items():
            rows = labels == group
            n = int(rows.sum())
            positives, negatives = rows & labeled & truth, rows & labeled & ~truth
            found, samples = {}, {}
            if n >= spec.min_group_samples:
                found["selection_rate"], samples["selection_rate"] = float(predicted[rows].mean()), n
            # A TPR is judged on the group's labeled favorable requests, an FPR on its unfavorable ones.
            for metric, among in (("tpr", positives), ("fpr", negatives)):
                if among.sum() >= spec.min_group_samples:
                    found[metric], samples[metric] = float(predicted[among].mean()), int(among.sum())
            now_rates[group] = found
            for metric, value in found.items():
                if metric in base_stats:
                    shifts.append(
                        _shift(feature, group, metric, float(base_stats[metric]), value, samples[metric], spec.max_drop)
                    )
        judged = {g: r for g, r in now_rates.items() if "selection_rate" in r}
        if len(judged) >= 2:
            with_labels = all("tpr" in r and "fpr" in r for r in judged.values())
            now_summary = _summary(judged, with_labels=with_labels)
            then_summary = _summary({g: groups[g] for g in judged}, with_labels=with_labels)
            window_metrics.append(now_summary)
            baseline_metrics.append(then_summary)
            for metric, value in now_summary.items():
                samples = int(sum((labels == g).sum() for g in judged))
                shifts.append(_shift(feature, "", metric, then_summary[metric], value, samples, spec.max_drop))
        elif groups:
            notes.append(f"fewer than two groups of {feature!r} have {spec.min_group_samples} requests in the window")
    ranked = sorted(shifts, key=lambda s: s.worsening, reverse=True)
    listed = [s for s in ranked if s.drifted] + [s for s in ranked if not s.drifted][:MAX_OTHER_SHIFTS]
    return monitor.BiasDriftResult(
        drifted=any(s.drifted for s in shifts),
        metrics=_worst(window_metrics),
        baseline=_worst(baseline_metrics),
        shifts=[monitor.GroupShift(**{**dataclasses.asdict(s)}) for s in listed],
        note="; ".join(notes) or None,
    )


def summary_sentence(result: monitor.BiasDriftResult) -> str:
    """``Bias drift: selection_rate of sex=Female fell from 0.240 to 0.050 (maxDrop 0.1).``"""
    drifted = [s for s in result.shifts if s.drifted]
    if not drifted:
        return ""
    moved = "; ".join(
        Shift(s.feature, s.group, s.metric, s.baseline, s.current, s.samples, s.drifted).sentence() for s in drifted[:3]
    )
    return f"Bias drift: {moved}."


def _shift(feature: str, group: str, metric: str, baseline: float, current: float, samples: int, max_drop: float) -> Shift:
    shift = Shift(feature, group, metric, round(baseline, 6), round(current, 6), samples, False)
    return dataclasses.replace(shift, drifted=bool(np.isfinite(current) and shift.worsening > max_drop))


def _summary(groups: Mapping[str, Mapping[str, float]], *, with_labels: bool) -> dict[str, float]:
    """The summary metrics of one feature from its group rates, as ``fairness.summary`` computes them."""
    selection = [float(g["selection_rate"]) for g in groups.values()]
    top, bottom = max(selection), min(selection)
    found = {"demographic_parity_difference": top - bottom}
    if top > 0:
        found["disparate_impact"] = bottom / top
    if with_labels:
        tpr = [float(g["tpr"]) for g in groups.values()]
        fpr = [float(g["fpr"]) for g in groups.values()]
        found["equal_opportunity_difference"] = max(tpr) - min(tpr)
        found["equalized_odds_difference"] = max(found["equal_opportunity_difference"], max(fpr) - min(fpr))
    return found


def _worst(per_feature: list[dict[str, float]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for metrics in per_feature:
        for metric, value in metrics.items():
            pick = min if metric in fairness.HIGHER_IS_FAIRER else max
            found[metric] = round(pick(found.get(metric, value), value), 6)
    return found
