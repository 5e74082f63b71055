"""The model card: what a model version is, how it was made and how good it is (schemaVersion 1).

Shape (the artifact contract): goal, problem, data (uri, digest, rows, columns, profile),
processing (the spec as applied), algorithm, params, metrics, successCriteria, eligible,
featureSchema, classes (classifiers, predict_proba order), featureImportance, reference (which
rows `reference.parquet` holds and why, see `mlkube.ml.reference`), lineage (the run: trainingJob,
namespace, uid, project, trigger, parentVersion, params; and `api.training.Lineage` in its wire
form: data [{uri, digest, rows}], image, mlkubeVersion), createdAt, plus
tuning, confusionMatrix and diagnostics for people debugging a run. JSON-ready values only;
building it reads the clock for createdAt and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlkube.api import trainer as trainer_api
from mlkube.common import timestamps

if TYPE_CHECKING:
    from mlkube.ml import experiment

SCHEMA_VERSION = 1


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
            },
            "rows": outcome.rows,
            "steps": [name for name, _ in model.steps],
        },
        "algorithm": outcome.search.best.algorithm,
        "params": plain(outcome.search.best.params),
        "metrics": outcome.metrics,
        "successCriteria": outcome.criteria,
        "eligible": outcome.criteria_met,
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
    return document


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
