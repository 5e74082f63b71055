"""One training run of an unsupervised framing (anomaly_detection, clustering), and the
record-shaped model both serve.

The saved model is a `RecordPipeline`: the run's feature transformations, then the task's
estimator (`anomaly.AnomalyDetector`, `clustering.Clusterer`). Besides scikit-learn's `predict`
(the first field: the anomaly flag or the cluster id) it answers `records(X)`: one array per
field of the task's prediction record, in `record_fields` order (`anomaly`, `score` or
`cluster`, `distance`). The model server, batch scoring and the router treat any model with
`records` alike: a V1 prediction is one JSON object per row with those fields, the first field
is the prediction that prediction drift, agreement and the reference compare.

The run: load -> check the framing against the table -> prepare -> split (stratified on the
label when an anomaly project has one) -> fit every candidate configuration on the training
partition and score it on validation by `problem.primaryMetric` (anomaly detection without labels
has nothing to compare on: the first configuration is kept) -> evaluate on validation and test ->
success criteria -> champion comparison on the test split -> reference sample -> model card (with
the anomaly threshold or the cluster profiles) -> artifacts. With `retraining.includeFeedback`
an anomaly project with a label column trains on its data plus the captured requests that received
ground truth (1 = anomaly); clustering has no ground truth to add. It returns the same
`experiment.Outcome` the supervised run does, so the trainer reports both alike.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn import pipeline

from mlkube.api import trainer as trainer_api
from mlkube.api import training
from mlkube.api import tuning as tuning_api
from mlkube.ml import (
    artifacts,
    card,
    champion,
    data,
    drift,
    errors,
    evaluation,
    experiment,
    processing,
    profile,
    reference,
    space,
    split,
    tuning,
)
from mlkube.ml.tasks import anomaly, clustering

TASKS = ("anomaly_detection", "clustering")


class RecordPipeline(pipeline.Pipeline):
    """A pipeline whose last step answers a prediction record per row (`records`)."""

    @property
    def record_fields(self) -> tuple[str, ...]:
        return tuple(self.steps[-1][1].record_fields)

    def records(self, X) -> dict[str, np.ndarray]:
        """One array per record field, one value per row of `X`."""
        return self.steps[-1][1].records(self[:-1].transform(X))


def run(
    spec: trainer_api.TrainerInput, *, progress, image: str | None, memory_limit: int | None = None
) -> tuple[Any, artifacts.ArtifactInfo]:
    """Train, evaluate and write the version `spec` describes; returns `(experiment.Outcome, ArtifactInfo)`.
    Data estimated too large for `memory_limit` (bytes) is refused before it is read."""
    problem, pre = spec.project.problem, spec.preprocessing
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    progress({"stage": "loading"})
    projection = data.needed_columns(problem, pre, spec.data)
    snapshot = data.load(spec.data, columns=projection, memory_limit=memory_limit)
    seconds["load"] = time.perf_counter() - started
    progress({"stage": "processing"})
    check(snapshot.table, spec, uri=snapshot.uri)
    target = problem.target
    features = feature_columns(snapshot.table, problem, time_column=pre.split.time_column)
    loaded_rows = snapshot.rows
    if spec.include_feedback and spec.feedback is not None and target:
        snapshot = data.with_feedback(snapshot, champion.labeled_traffic(spec, features), target=target)
    columns = processing.columns_of(snapshot.table, features, pre)
    table = snapshot.table.dropna(subset=[target]) if target else snapshot.table
    table = table.drop_duplicates() if pre.drop_duplicates else table
    dropped = processing.non_nullable(pre, columns)
    table = (table.dropna(subset=sorted(dropped)) if dropped else table).reset_index(drop=True)
    if target:
        table[target] = table[target].astype(int)
    labelled = target is not None
    parts = split.partition(
        table,
        target=target or features[0],
        task="classification" if labelled else "regression",
        spec=pre.split,
    )
    framing = _Framing(spec, columns)
    candidates = algorithms_of(spec)
    planned = framing.points(candidates)
    progress({"stage": "tuning", "trialsCompleted": 0, "trialsTotal": len(planned)})
    searched = time.perf_counter()
    trials, fitted = [], {}
    y_validation = parts.validation[target] if labelled and len(parts.validation) else None
    for number, (name, params) in enumerate(planned):
        trial, model = framing.trial(number, name, params, parts.train[features], parts.validation[features], y_validation)
        trials.append(trial)
        fitted[number] = model
        best = _best(trials, problem.primary_metric)
        progress(
            {
                "stage": "tuning",
                "trialsCompleted": len(trials),
                "trialsTotal": len(planned),
                "bestScore": None if best is None or best.score is None else round(best.score, 6),
            }
        )
        if not labelled and problem.task == "anomaly_detection" and trial.state == "complete":
            break  # without labels there is nothing to compare candidates on
    seconds["tuning"] = time.perf_counter() - searched
    best = _best(trials, problem.primary_metric)
    if best is None:
        failures = "; ".join(f"{t.algorithm} {t.params}: {t.error}" for t in trials[:3])
        raise errors.TrainingFailed(f"every candidate failed: {failures}")
    model = fitted[best.number]
    search = tuning.Search(trials, best, len(planned))

    progress({"stage": "evaluating"})
    held_out = {"validation": parts.validation, "test": parts.test}
    metrics = {name: framing.scores(model, part, features) for name, part in held_out.items() if len(part)}
    metrics.setdefault("validation", {})
    train_score = framing.scores(model, parts.train, features).get(problem.primary_metric)
    validation_score = metrics["validation"].get(problem.primary_metric, best.score)
    extra = framing.card_entry(model, parts.train, features)
    outcome = experiment.Outcome(
        snapshot=snapshot,
        profile=profile.of(snapshot.table),
        columns=columns,
        schema=profile.feature_schema(parts.train, features, non_nullable=dropped),
        rows={
            "loaded": loaded_rows,
            "feedback": snapshot.rows - loaded_rows,
            "prepared": len(table),
            "train": len(parts.train),
            "validation": len(parts.validation),
            "test": len(parts.test),
        },
        task=evaluation.Task(problem.task),
        search=search,
        model=model,
        metrics=metrics,
        confusion=None,
        plots={},
        criteria=evaluation.criteria(metrics["test"], spec.project.success_criteria),
        overfitting=_overfitting(train_score, validation_score, problem.primary_metric),
        importance={},
        comparison=_compare_with_champion(spec, framing, metrics["test"], parts.test, features),
        reference=_reference(model, parts.train, features=features, target=target, seed=pre.split.seed),
        notes=[],
        seconds=seconds,
        lineage=training.Lineage(data=list(snapshot.sources), image=image, mlkube_version=experiment.mlkube_version()),
        inputs=features,
    )
    progress({"stage": "writing"})

    def amend_card(document: dict[str, Any]) -> None:
        document["prediction"] = {"fields": list(model.record_fields)}
        document.update(extra)

    return outcome, experiment.write_version(spec, outcome, amend_card=amend_card)


def feature_columns(table: pd.DataFrame, problem, *, time_column: str | None) -> list[str]:
    """`include`, or every column but the label, `exclude` and the time column."""
    if problem.features.include is not None:
        return list(problem.features.include)
    dropped = {problem.target, *problem.features.exclude, time_column}
    return [c for c in table.columns if c not in dropped]


def check(table: pd.DataFrame, spec: trainer_api.TrainerInput, *, uri: str) -> None:
    """Refuse a table or a preprocessing the unsupervised framing cannot train, naming the field."""
    problem, pre = spec.project.problem, spec.preprocessing
    named = {
        "problem.target": [problem.target] if problem.target else [],
        "problem.features.include": problem.features.include or [],
        "problem.features.exclude": problem.features.exclude,
        "preprocessing.split.timeColumn": [pre.split.time_column] if pre.split.time_column else [],
    }
    for field, names in named.items():
        for name in names:
            if name not in table.columns:
                raise errors.DataError(f"{field}: column {name!r} does not exist in {uri}")
    if problem.target:
        values = set(table[problem.target].dropna().unique().tolist())
        if not values <= {0, 1}:
            shown = ", ".join(sorted(map(str, values))[:10])
            raise errors.DataError(
                f"problem.target: anomaly_detection reads {problem.target!r} as a label, 1 = anomaly and 0 = normal; "
                f"it holds {shown}"
            )
    refused = {
        "preprocessing.balance": (pre.balance != "none", "balances classes of a label"),
        "preprocessing.featureSelection": (pre.feature_selection.method in ("kbest", "model"), "scores features against a label"),
        "preprocessing.encode": (pre.encode == "target", "target encoding needs a label"),
        "preprocessing.outliers": (
            pre.outliers.action == "drop" and pre.outliers.method != "none",
            "dropping outliers hides what an unsupervised model should see",
        ),
        "preprocessing.augment": (pre.augment.method != "none", "jittered copies distort densities and distances"),
        "preprocessing.bins": (bool(pre.bins), "binning is not supported here"),
        "preprocessing.mitigation": (pre.mitigation.method != "none", "mitigation is about a label"),
    }
    for field, (applies, why) in refused.items():
        if applies:
            raise errors.InvalidSpec(f"{field}: not available for {problem.task} ({why}); leave it at its default")
    features = feature_columns(table, problem, time_column=pre.split.time_column)
    if not features:
        raise errors.DataError(f"problem.features: no feature columns are left in {uri}; include at least one column")
    unusable = [
        c for c in features if not pd.api.types.is_numeric_dtype(table[c]) and profile.feature_type(table[c]) != "categorical"
    ]
    if unusable:
        raise errors.DataError(
            f"{uri}: feature column(s) {', '.join(unusable)} cannot be used; exclude them in problem.features.exclude"
        )


def algorithms_of(spec: trainer_api.TrainerInput) -> list[tuning_api.Algorithm]:
    """The spec's algorithms, or every one of the task; a name of another task is refused."""
    task = spec.project.problem.task
    registry = anomaly.REGISTRY if task == "anomaly_detection" else clustering.REGISTRY
    if not spec.algorithms:
        return [tuning_api.Algorithm(name=name) for name in registry]
    for index, algorithm in enumerate(spec.algorithms):
        if algorithm.name not in registry:
            raise errors.InvalidSpec(
                f"algorithms[{index}].name: {algorithm.name} is not a {task} algorithm; choose from {', '.join(registry)}"
            )
    return list(spec.algorithms)


class _Framing:
    """What differs between the two tasks: configurations, fitting, scoring and the card entry."""

    def __init__(self, spec: trainer_api.TrainerInput, columns: processing.Columns):
        self.spec, self.columns = spec, columns
        self.problem, self.pre = spec.project.problem, spec.preprocessing
        self.seed = self.pre.split.seed

    def points(self, candidates: list[tuning_api.Algorithm]) -> list[tuple[str, dict[str, Any]]]:
        """Every configuration to fit, at most tuning.maxTrials; for clustering, each k of the range
        for each algorithm, the smaller k first."""
        found: list[tuple[str, dict[str, Any]]] = []
        if self.problem.task == "anomaly_detection":
            for index, candidate in enumerate(candidates):
                merged = {**anomaly.REGISTRY[candidate.name][2], **candidate.params}
                dims = space.parse(merged, field=f"algorithms[{index}].params")
                found += [(candidate.name, point) for point in space.grid(dims)]
        else:
            bounds = self.problem.clusters
            low, high = (bounds.min, bounds.max) if bounds is not None else clustering.DEFAULT_RANGE
            grids = []
            for index, candidate in enumerate(candidates):
                k = clustering.k_parameter(candidate.name)
                if k in candidate.params:
                    raise errors.InvalidSpec(f"algorithms[{index}].params.{k}: k comes from problem.clusters; remove it")
                grids.append((candidate.name, space.grid(space.parse(candidate.params, field=f"algorithms[{index}].params"))))
            for n in range(low, high + 1):
                for name, grid in grids:
                    found += [(name, {**point, clustering.k_parameter(name): n}) for point in grid]
        return found[: self.spec.tuning.max_trials]

    def pipeline(self, name: str, params: dict[str, Any]) -> RecordPipeline:
        steps: list[tuple[str, Any]] = [("features", processing.column_transformer(self.pre, self.columns, task="regression"))]
        if self.pre.feature_extraction.method == "pca":
            from mlkube.ml import transformers

            steps.append(
                ("pca", transformers.PrincipalComponents(self.pre.feature_extraction.components, random_state=self.seed))
            )
        if self.pre.feature_selection.method == "variance":
            from sklearn import feature_selection

            steps.append(("select", feature_selection.VarianceThreshold(threshold=self.pre.feature_selection.threshold or 0.0)))
        if self.problem.task == "anomaly_detection":
            estimator = anomaly.AnomalyDetector(anomaly.build(name, params, seed=self.seed), self.problem.contamination)
        else:
            estimator = clustering.Clusterer(clustering.build(name, params, seed=self.seed))
        return RecordPipeline([*steps, ("model", estimator)])

    def trial(self, number: int, name: str, params: dict[str, Any], X_train, X_validation, y_validation):
        """Fit one configuration on the training rows and score it on the validation rows."""
        started = time.perf_counter()
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                model = self.pipeline(name, params).fit(X_train)
                if self.problem.task == "anomaly_detection" and y_validation is not None and self.problem.contamination is None:
                    model.steps[-1][1].use_labels(model[:-1].transform(X_validation), y_validation)
                rows = X_validation if len(X_validation) else X_train
                labels = y_validation if len(X_validation) else None
                score = self._scores_of(model, rows, labels).get(self.problem.primary_metric)
            caught = sorted({w.category.__name__ for w in seen})
        except Exception as e:  # a configuration scikit-learn refuses fails alone, with its message
            return tuning.Trial(
                number, name, params, "failed", seconds=time.perf_counter() - started, error=f"{type(e).__name__}: {e}"
            ), None
        state = (
            "complete" if score is not None or (self.problem.task == "anomaly_detection" and y_validation is None) else "failed"
        )
        return (
            tuning.Trial(
                number,
                name,
                card.plain(params),
                state,
                score=score,
                seconds=time.perf_counter() - started,
                warnings=caught,
                error=None if state == "complete" else f"{self.problem.primary_metric} is undefined on the validation rows",
            ),
            model,
        )

    def _scores_of(self, model: RecordPipeline, X, y) -> dict[str, float]:
        found = model.records(X)
        if self.problem.task == "anomaly_detection":
            return anomaly.scores(found["score"], found["anomaly"], y, contamination=self.problem.contamination)
        return clustering.scores(
            model[:-1].transform(X), found["cluster"], n_clusters=model.steps[-1][1].n_clusters_, seed=self.seed
        )

    def scores(self, model: RecordPipeline, part: pd.DataFrame, features: list[str]) -> dict[str, float]:
        """The task's metrics on one partition (labels where the project has them)."""
        target = self.problem.target
        return self._scores_of(model, part[features], part[target] if target else None)

    def card_entry(self, model: RecordPipeline, train: pd.DataFrame, features: list[str]) -> dict[str, Any]:
        """The model card's task entry: the anomaly threshold, or the cluster profiles."""
        fitted = model.steps[-1][1]
        if self.problem.task == "anomaly_detection":
            return {
                "anomaly": {
                    "threshold": round(fitted.threshold_, 6),
                    "spread": round(fitted.spread_, 6),
                    "thresholdFrom": "contamination"
                    if self.problem.contamination is not None or not self.problem.target
                    else "validationLabels",
                    "contamination": self.problem.contamination,
                }
            }
        labels = model.predict(train[features])
        return {
            "clusters": {
                "k": int(fitted.n_clusters_),
                "profiles": clustering.profiles(train, labels, numeric=self.columns.numeric),
            }
        }


def _best(trials: list[tuning.Trial], metric: str) -> tuning.Trial | None:
    complete = [t for t in trials if t.state == "complete"]
    scored = [t for t in complete if t.score is not None]
    if not scored:
        return complete[0] if complete else None
    pick = min if evaluation.direction(metric) == "minimize" else max
    return pick(scored, key=lambda t: t.score)


def _overfitting(train_score: float | None, validation_score: float | None, metric: str) -> dict[str, Any]:
    if train_score is None or validation_score is None:
        return {"trainScore": train_score, "validationScore": validation_score, "flagged": False}
    gap = validation_score - train_score if evaluation.direction(metric) == "minimize" else train_score - validation_score
    flagged = bool(gap > 0.10 * max(abs(train_score), 1e-12))
    return {"trainScore": round(train_score, 6), "validationScore": round(validation_score, 6), "flagged": flagged}


def _reference(model, train: pd.DataFrame, *, features: list[str], target: str | None, seed: int) -> reference.Reference:
    """The training partition (a seeded sample) with the model's first field as `__prediction__`."""
    rows = train if target else train.assign(**{drift.TARGET_COLUMN: np.nan})
    sample = rows.sample(artifacts.REFERENCE_MAX_ROWS, random_state=seed) if len(rows) > artifacts.REFERENCE_MAX_ROWS else rows
    table = reference.table(model, sample, features=features, target=target or drift.TARGET_COLUMN)
    return reference.Reference(table, reference.TRAINING, f"the training partition ({len(sample):,} of {len(train):,} rows)")


def _compare_with_champion(
    spec, framing: _Framing, challenger: dict[str, float], test: pd.DataFrame, features
) -> dict[str, Any] | None:
    """Challenger and champion scored on this run's test split with the task's metrics."""
    if spec.champion is None:
        return None
    metric = spec.project.problem.primary_metric
    try:
        with champion.champion_version(spec) as version:
            if not hasattr(version.pipeline, "records"):
                raise ValueError("the champion is not a model of this task")
            champion_scores = framing.scores(version.pipeline, test, features)
    except Exception as e:
        return champion.comparison_failed(spec, challenger, holdout="test", error=e)
    return {
        **evaluation.compare(challenger, champion_scores, metric=metric, champion_version=spec.champion.version),
        "holdout": "test",
    }
