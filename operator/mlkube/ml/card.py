"""The model card: what a model version is, how it was made and how good it is (schemaVersion 1).

Shape (the artifact contract): goal, problem, data (uri, digest, rows, columns, profile),
processing (the spec as applied), algorithm, params, metrics, successCriteria, eligible,
featureSchema (an entry a mitigation needs at prediction time is marked `sensitive`, with its
`groups`), classes (classifiers, predict_proba order), featureImportance, fairness (when the
project measures it: `api.training.Fairness`'s wire form, plus `requiredAtPrediction`, the
sensitive features every request must carry), reference (which
rows `reference.parquet` holds and why, see `mlkube.ml.reference`), lineage (the run: trainingJob,
namespace, uid, project, trigger, parentVersion, params; and `api.training.Lineage` in its wire
form: data [{uri, digest, rows}], image, mlkubeVersion), createdAt, plus tuning, confusionMatrix
and diagnostics for people debugging a run, and the test-split data the HTML card
(`mlkube.ml.cardpage`) plots: calibration (classifiers with probabilities) or residuals
(regression), each a few hundred numbers at most. JSON-ready values only; building it reads the
clock for createdAt and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlkube.api import trainer as trainer_api
from mlkube.common import timestamps

if TYPE_CHECKING:
    import pandas as pd

    from mlkube.ml import evaluation, experiment

SCHEMA_VERSION = 1
CALIBRATION_BINS = 10
RESIDUAL_BINS = 20
RESIDUAL_POINTS = 150


def build(spec: trainer_api.TrainerInput, outcome: experiment.Outcome, *, diagnostics: dict[str, Any]) -> dict[str, Any]:
    """The model card of the run `spec` whose results are `outcome`."""
    problem = spec.project.problem
    model = outcome.model
    document: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "goal": spec.project.goal.wire(),
        "problem": {
            "task": problem.task,
            "target": problem.target,
            "positiveClass": None if outcome.task.positive is None else plain(outcome.task.positive),
            "primaryMetric": problem.primary_metric,
        },
        "data": {
            "uri": spec.data.uri,
            "join": [j.wire() for j in spec.data.join],
            "digest": outcome.snapshot.digest,
            "rows": outcome.snapshot.rows,
            "columns": outcome.snapshot.columns,
            "profile": outcome.profile,
        },
        "processing": {
            "spec": spec.preprocessing.wire(),
            "columns": {
                "numeric": outcome.columns.numeric,
                "categorical": outcome.columns.categorical,
                "binned": outcome.columns.binned,
                **({"text": outcome.columns.text} if outcome.columns.text else {}),
            },
            "rows": outcome.rows,
            "steps": [name for name, _ in model.steps],
        },
        "algorithm": outcome.search.best.algorithm,
        "params": plain(outcome.search.best.params),
        "metrics": outcome.metrics,
        "successCriteria": outcome.criteria,
        "eligible": outcome.eligible,
        "featureSchema": outcome.schema,
        "featureImportance": outcome.importance,
        "reference": outcome.reference.card(),
        "tuning": {
            "strategy": spec.tuning.strategy,
            "trialsPlanned": outcome.search.planned,
            "trials": len(outcome.search.trials),
            "complete": sum(t.state == "complete" for t in outcome.search.trials),
            "pruned": sum(t.state == "pruned" for t in outcome.search.trials),
            "cvScore": outcome.search.best.score,
        },
        "diagnostics": diagnostics,
        "lineage": {
            "trainingJob": spec.training_job.name,
            "namespace": spec.training_job.namespace,
            "uid": spec.training_job.uid,
            "project": spec.project.name,
            "trigger": spec.training_job.trigger,
            "parentVersion": spec.training_job.parent_version,
            **outcome.lineage.model_dump(by_alias=True, mode="json"),
            "params": plain(outcome.search.best.params),
        },
        "createdAt": timestamps.format(timestamps.now()),
    }
    if outcome.task.kind == "classification":
        document["classes"] = [plain(c) for c in model.classes_]
        document["confusionMatrix"] = outcome.confusion
    if outcome.comparison is not None:
        document["comparison"] = outcome.comparison
    if outcome.fairness is not None:
        required = [f["name"] for f in outcome.schema if f.get("sensitive")]
        document["fairness"] = {**outcome.fairness, **({"requiredAtPrediction": required} if required else {})}
    document.update(outcome.plots)
    return document


def plots(model: Any, X: pd.DataFrame, y: Any, task: evaluation.Task, *, seed: int) -> dict[str, Any]:
    """The card's plot data on held-out rows `X`, `y` (the test split): `{"calibration": ...}` for a
    classifier with predict_proba, `{"residuals": ...}` for a regressor; empty with fewer than 2 rows."""
    if len(X) < 2:
        return {}
    if task.kind == "regression":
        return {"residuals": residuals(np.asarray(y, dtype=float), np.asarray(model.predict(X), dtype=float), seed=seed)}
    if not hasattr(model, "predict_proba"):
        return {}
    return {"calibration": calibration(np.asarray(y), np.asarray(model.predict_proba(X)), task)}


def calibration(y: np.ndarray, probabilities: np.ndarray, task: evaluation.Task) -> dict[str, Any]:
    """Reliability on CALIBRATION_BINS equal-width bins of the predicted probability: the positive
    class's probability when the task has one (`of: positiveClass`), else the top class's (`of:
    topLabel`, observed = accuracy). Empty bins are left out. `probabilities` are in `task.classes` order."""
    classes = list(task.classes)
    if task.positive is not None:
        predicted = probabilities[:, classes.index(task.positive)]
        hit = y == task.positive
        of = "positiveClass"
    else:
        predicted = probabilities.max(axis=1)
        hit = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)] == y
        of = "topLabel"
    index = np.clip((predicted * CALIBRATION_BINS).astype(int), 0, CALIBRATION_BINS - 1)
    bins = []
    for b in range(CALIBRATION_BINS):
        inside = index == b
        if inside.any():
            bins.append(
                {
                    "low": b / CALIBRATION_BINS,
                    "high": (b + 1) / CALIBRATION_BINS,
                    "meanPredicted": _round(predicted[inside].mean()),
                    "observed": _round(hit[inside].mean()),
                    "count": int(inside.sum()),
                }
            )
    found: dict[str, Any] = {"of": of, "rows": len(y), "bins": bins}
    if task.positive is not None:
        found["positiveClass"] = plain(task.positive)
    return found


def residuals(actual: np.ndarray, predicted: np.ndarray, *, seed: int) -> dict[str, Any]:
    """Residuals (actual - predicted): quantiles, a RESIDUAL_BINS-bin histogram and at most
    RESIDUAL_POINTS seeded (actual, predicted) pairs for a predicted-versus-actual plot."""
    error = actual - predicted
    counts, edges = np.histogram(error, bins=RESIDUAL_BINS)
    rng = np.random.default_rng(seed)
    picked = (
        np.sort(rng.choice(len(actual), RESIDUAL_POINTS, replace=False))
        if len(actual) > RESIDUAL_POINTS
        else np.arange(len(actual))
    )
    return {
        "rows": len(actual),
        "mean": _round(error.mean()),
        "quantiles": {f"p{q}": _round(np.quantile(error, q / 100)) for q in (5, 25, 50, 75, 95)},
        "histogram": {"edges": [_round(e) for e in edges], "counts": counts.tolist()},
        "points": [[_round(actual[i]), _round(predicted[i])] for i in picked],
    }


def _round(value: Any) -> float:
    """`value` to 6 significant digits: plots need no more, and the card stays small."""
    return float(f"{float(value):.6g}")


def plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays turned into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
