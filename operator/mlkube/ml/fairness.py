"""Fairness across sensitive features: bias in the data before training and in the model after it.

Groups are the values of each sensitive feature (``MLProject.spec.fairness.sensitiveFeatures``),
taken as text, a missing value being a group of its own (``MISSING_GROUP``). Each feature is
measured on its own; the summary metrics a fairness criterion is judged on are the worst over the
features. The favorable outcome is one label value (``favorableOutcome``, default the positive
class); every rate below is about it, the other classes counting as unfavorable.

Before training (``data_bias``), on the prepared table: each group's size and favorable-label
rate, the class imbalance ``(n_max - n_min) / (n_max + n_min)`` of the largest and smallest group
and the label-rate difference (highest minus lowest favorable-label rate). With two groups these
are the absolute values of SageMaker Clarify's CI and DPL.

After training (``assess``), on the test split: per group count, selection rate (share predicted
favorable), TPR, FPR and accuracy (fairlearn's ``MetricFrame``), and the summary metrics

- ``disparate_impact``: lowest / highest group selection rate (fairlearn's
  ``demographic_parity_ratio``; the four-fifths rule asks for at least 0.8);
- ``demographic_parity_difference``: highest - lowest selection rate;
- ``equalized_odds_difference``: the larger of the TPR range and the FPR range;
- ``equal_opportunity_difference``: the TPR range.

A group without favorable (unfavorable) labels has TPR (FPR) 0, as in fairlearn. The summary
metrics come from one table of counts per group, so that ``BOOTSTRAP_SAMPLES`` seeded resamples of
the rows give their percentile confidence intervals at ``CONFIDENCE`` for a few milliseconds; the
same counts judge bias drift on captured traffic (``drift_fairness``). Pure: arrays in, plain
dicts out; no I/O.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlkube.api import base, project
from mlkube.ml import errors, evaluation

MISSING_GROUP = "(missing)"
MAX_GROUPS = 50
BOOTSTRAP_SAMPLES = 200
CONFIDENCE = 0.95
# Resampled row indices held at once (rows x resamples), to bound memory on large test splits.
BOOTSTRAP_CHUNK = 2_000_000
METRICS = base.FAIRNESS_METRICS
HIGHER_IS_FAIRER = frozenset({"disparate_impact"})
GROUP_STATS = ("count", "selection_rate", "tpr", "fpr", "accuracy")


def group_labels(column: pd.Series) -> pd.Series:
    """The group of each row: the value as text, ``MISSING_GROUP`` where it is missing."""
    labels = column.astype(object).where(column.notna(), MISSING_GROUP)
    return labels.map(str)


def check(table: pd.DataFrame, spec: project.Fairness, problem: project.Problem, *, uri: str) -> None:
    """Refuse sensitive features the table cannot measure (``errors.DataError`` naming the column)."""
    for name in spec.sensitive_features:
        if name not in table.columns:
            raise errors.DataError(
                f"fairness.sensitiveFeatures: column {name!r} does not exist in {uri}; "
                f"columns are {', '.join(map(str, list(table.columns)[:30]))}"
            )
        if name == problem.target:
            raise errors.DataError(f"fairness.sensitiveFeatures: {name!r} is the target; name the columns that define groups")
        count = table[name].nunique(dropna=False)
        if count > MAX_GROUPS:
            raise errors.DataError(
                f"fairness.sensitiveFeatures: column {name!r} has {count} distinct values; a sensitive feature defines "
                f"groups (at most {MAX_GROUPS}): bin it into a column of its own (e.g. age bands) and name that"
            )


def favorable_of(spec: project.Fairness, task: evaluation.Task) -> Any:
    """The favorable label among ``task.classes`` (errors.InvalidSpec when it is none of them)."""
    if spec.favorable_outcome is not None:
        found = [c for c in task.classes if str(c) == spec.favorable_outcome]
        if not found:
            raise errors.InvalidSpec(
                f"fairness.favorableOutcome: {spec.favorable_outcome!r} is not a class of the target; "
                f"classes are {', '.join(str(c) for c in task.classes[:20])}"
            )
        return found[0]
    if task.positive is None:
        raise errors.InvalidSpec(
            f"fairness.favorableOutcome: the target has {len(task.classes)} classes; name the one that benefits a person"
        )
    return task.positive


def data_bias(table: pd.DataFrame, *, target: str, sensitive: Sequence[str], favorable: Any) -> dict[str, Any]:
    """Bias in ``table`` before training, in ``api.training.FairnessData``'s wire shape."""
    y = np.asarray(table[target] == favorable)
    found: dict[str, Any] = {"class_imbalance": {}, "label_rate_difference": {}, "groups": {}}
    for name in sensitive:
        labels = group_labels(table[name])
        groups = {
            str(g): {"count": int(len(idx)), "favorable_rate": _round(y[idx].mean())}
            for g, idx in sorted(labels.groupby(labels).indices.items())
        }
        sizes = [s["count"] for s in groups.values()]
        rates = [s["favorable_rate"] for s in groups.values()]
        found["groups"][name] = groups
        found["class_imbalance"][name] = _round((max(sizes) - min(sizes)) / (max(sizes) + min(sizes)))
        found["label_rate_difference"][name] = _round(max(rates) - min(rates))
    return found


@dataclasses.dataclass(frozen=True)
class Assessment:
    """Model fairness on some rows: per feature and group statistics, summary metrics, intervals."""

    groups: dict[str, dict[str, dict[str, float]]]
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    by_feature: dict[str, dict[str, float]]


def assess(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame,
    *,
    favorable: Any,
    seed: int,
    samples: int = BOOTSTRAP_SAMPLES,
) -> Assessment:
    """Fairness of predictions ``y_pred`` against ``y_true`` across the columns of ``sensitive``."""
    truth = np.asarray(y_true) == favorable
    predicted = np.asarray(y_pred) == favorable
    codes, names = {}, {}
    for column in sensitive.columns:
        codes[column], names[column] = pd.factorize(group_labels(sensitive[column]), sort=True)
    by_feature = {c: summary(counts(codes[c], truth, predicted, len(names[c]))) for c in sensitive.columns}
    return Assessment(
        groups={c: group_table(truth, predicted, group_labels(sensitive[c])) for c in sensitive.columns},
        metrics=_rounded(worst(by_feature.values())),
        intervals=bootstrap(codes, {c: len(names[c]) for c in codes}, truth, predicted, seed=seed, samples=samples),
        by_feature={c: _rounded(m) for c, m in by_feature.items()},
    )


def group_table(truth: np.ndarray, predicted: np.ndarray, groups: pd.Series) -> dict[str, dict[str, float]]:
    """Per group: count, selection_rate, tpr, fpr and accuracy (fairlearn's MetricFrame, favorable = 1)."""
    from fairlearn import metrics as fairlearn_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a group without positives: fairlearn warns and reports 0, as we do
        frame = fairlearn_metrics.MetricFrame(
            metrics={
                "count": fairlearn_metrics.count,
                "selection_rate": fairlearn_metrics.selection_rate,
                "tpr": fairlearn_metrics.true_positive_rate,
                "fpr": fairlearn_metrics.false_positive_rate,
                "accuracy": _accuracy,
            },
            y_true=truth.astype(int),
            y_pred=predicted.astype(int),
            sensitive_features=groups.to_numpy(),
        ).by_group
    return {str(g): {k: (int(v) if k == "count" else _round(v)) for k, v in row.items()} for g, row in frame.iterrows()}


def counts(codes: np.ndarray, truth: np.ndarray, predicted: np.ndarray, groups: int) -> np.ndarray:
    """Confusion counts per group, shape (groups, 2, 2): [group, true favorable, predicted favorable]."""
    cells = codes * 4 + truth.astype(np.int64) * 2 + predicted.astype(np.int64)
    return np.bincount(cells, minlength=groups * 4).reshape(groups, 2, 2).astype(float)


def rates(table: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group selection rate, TPR and FPR from counts of shape (..., groups, 2, 2); NaN for an
    empty group (it is left out of the summary), 0 for a TPR or FPR without the label (fairlearn's rule)."""
    rows = table.sum(axis=(-1, -2))
    positives, negatives = table[..., 1, :].sum(axis=-1), table[..., 0, :].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = np.where(rows > 0, (table[..., 0, 1] + table[..., 1, 1]) / rows, np.nan)
        tpr = np.where(positives > 0, table[..., 1, 1] / np.maximum(positives, 1), 0.0)
        fpr = np.where(negatives > 0, table[..., 0, 1] / np.maximum(negatives, 1), 0.0)
    present = rows > 0
    return {
        "selection_rate": selection,
        "tpr": np.where(present, tpr, np.nan),
        "fpr": np.where(present, fpr, np.nan),
    }


def summary(table: np.ndarray) -> dict[str, Any]:
    """The summary metrics from counts of shape (..., groups, 2, 2): floats, or arrays over the
    leading dimensions (one per bootstrap resample). NaN where undefined (no favorable prediction at all)."""
    found = rates(table)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a resample without a group
        selection, tpr, fpr = found["selection_rate"], found["tpr"], found["fpr"]
        top, bottom = np.nanmax(selection, axis=-1), np.nanmin(selection, axis=-1)
        tpr_range = np.nanmax(tpr, axis=-1) - np.nanmin(tpr, axis=-1)
        fpr_range = np.nanmax(fpr, axis=-1) - np.nanmin(fpr, axis=-1)
        return {
            "disparate_impact": np.where(top > 0, bottom / np.where(top > 0, top, 1), np.nan),
            "demographic_parity_difference": top - bottom,
            "equalized_odds_difference": np.maximum(tpr_range, fpr_range),
            "equal_opportunity_difference": tpr_range,
        }


def worst(per_feature: Any) -> dict[str, Any]:
    """The least fair value of each summary metric over the features' ``summary`` results."""
    per_feature = list(per_feature)
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for metric in METRICS:
            stacked = np.stack([np.asarray(m[metric], dtype=float) for m in per_feature])
            found[metric] = np.nanmin(stacked, axis=0) if metric in HIGHER_IS_FAIRER else np.nanmax(stacked, axis=0)
    return found


def bootstrap(
    codes: Mapping[str, np.ndarray],
    groups: Mapping[str, int],
    truth: np.ndarray,
    predicted: np.ndarray,
    *,
    seed: int,
    samples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, list[float]]:
    """Percentile intervals at CONFIDENCE of the worst-over-features summary metrics, from ``samples``
    seeded resamples of the rows (the same resamples for every feature)."""
    n = len(truth)
    if samples <= 0 or n < 2:
        return {}
    rng = np.random.default_rng(seed)
    per_feature: dict[str, list[np.ndarray]] = {c: [] for c in codes}
    chunk = max(1, BOOTSTRAP_CHUNK // n)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        rows = rng.integers(0, n, size=(size, n))
        for column, code in codes.items():
            k = groups[column]
            cells = (code * 4 + truth.astype(np.int64) * 2 + predicted.astype(np.int64))[rows]
            cells += (np.arange(size) * k * 4)[:, None]
            per_feature[column].append(np.bincount(cells.ravel(), minlength=size * k * 4).reshape(size, k, 2, 2))
    results = worst(summary(np.concatenate(tables).astype(float)) for tables in per_feature.values())
    tail = (1 - CONFIDENCE) / 2 * 100
    intervals = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for metric, values in results.items():
            if np.isfinite(values).any():
                low, high = np.nanpercentile(values, [tail, 100 - tail])
                intervals[metric] = [_round(low), _round(high)]
    return intervals


def failed(measured: Mapping[str, float], criteria: Sequence[project.FairnessCriterion]) -> list[str]:
    """The fairness criteria that do not hold, as people read them (an unmeasured metric does not hold)."""
    found = []
    for result in evaluation.criteria(dict(measured), list(criteria)):
        if not result["met"]:
            value = result["value"]
            measured_text = "not measured" if value is None else f"measured {value:.4g}"
            found.append(f"{result['metric']} {result['op']} {result['threshold']:g} ({measured_text})")
    return found


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def _rounded(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: _round(v) for k, v in metrics.items() if np.isfinite(v)}


def _round(value: Any) -> float:
    return round(float(value), 6)
