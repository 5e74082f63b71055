"""One training run, from a resolved spec to a written model version.

load → check → prepare → split → tune → fit the best pipeline on the training partition →
evaluate on validation and test → success criteria → champion comparison (`champion`) →
feature importance → reference sample (what drift analysis compares traffic with, see `reference`) → model card →
artifacts. With `project.fairness`, the data's bias is measured before the split and the model's
fairness on the test split (`fairness`); `preprocessing.mitigation` fits the chosen configuration
with a mitigation (`mitigation`), and the unmitigated configuration is fitted too so that the cost
of the mitigation is reported beside its effect. Each stage is a call into the module that owns it; this module only sequences them
and reports progress through a callback. It never prints, exits or reads the environment (the
trainer entrypoint does).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from mlkube.api import base, preprocessing, training
from mlkube.api import trainer as trainer_api
from mlkube.ml import (
    algorithms,
    artifacts,
    card,
    champion,
    data,
    errors,
    evaluation,
    explain,
    fairness,
    mitigation,
    processing,
    profile,
    reference,
    split,
    storage,
    tuning,
)
from mlkube.ml.tasks import text

# Validation worse than training by more than this share of the training score flags overfitting.
OVERFITTING_GAP = 0.10

Progress = Callable[[dict[str, Any]], None]


@dataclasses.dataclass
class Outcome:
    """Everything a run learned, for the model card, the result and the diagnostics."""

    snapshot: data.Snapshot
    profile: dict[str, Any]
    columns: processing.Columns
    schema: list[dict[str, Any]]
    rows: dict[str, int]
    task: evaluation.Task
    search: tuning.Search
    model: Any
    metrics: dict[str, dict[str, float]]
    confusion: dict[str, Any] | None
    plots: dict[str, Any]
    criteria: list[dict[str, Any]]
    overfitting: dict[str, Any]
    importance: dict[str, float]
    comparison: dict[str, Any] | None
    reference: reference.Reference
    notes: list[str]
    seconds: dict[str, float]
    lineage: training.Lineage
    inputs: list[str] = dataclasses.field(default_factory=list)
    """The columns the served model reads: the features, and the sensitive features when its
    mitigation needs them at prediction time (threshold_optimizer)."""
    fairness: dict[str, Any] | None = None
    """`api.training.Fairness` in its wire form, when the project measures fairness."""

    @property
    def criteria_met(self) -> bool:
        return all(c["met"] for c in self.criteria)

    @property
    def eligible(self) -> bool:
        """Whether the success criteria and the fairness criteria hold."""
        return self.criteria_met and (self.fairness is None or self.fairness.get("criteriaMet") is not False)


def run(
    spec: trainer_api.TrainerInput,
    *,
    progress: Progress = lambda update: None,
    image: str | None = None,
    memory_limit: int | None = None,
    shared: tuning.SharedStudy | None = None,
) -> tuple[Outcome, artifacts.ArtifactInfo]:
    """Train, evaluate and write the model version that `spec` describes; `image` is the trainer
    image this runs in (None: not known), recorded in the lineage; data estimated too large for
    `memory_limit` (bytes) is refused before it is read. With `shared`, this is one of the trial
    pods of a shared study: only index 0 goes past the search (the others raise
    tuning.WorkerFinished)."""
    problem, pre = spec.project.problem, spec.preprocessing
    # The other framings run their own sequence of the same stages (imported here: they import this module).
    if problem.task not in ("classification", "regression") and spec.data.sample is not None:
        raise errors.InvalidSpec(
            f"data.sample: samples the search of classification and regression runs; a {problem.task} run uses all its rows"
        )
    if problem.task in ("anomaly_detection", "clustering"):
        from mlkube.ml.tasks import unsupervised

        return unsupervised.run(spec, progress=progress, image=image, memory_limit=memory_limit)
    if problem.task == "forecasting":
        from mlkube.ml.tasks import forecasting_run

        return forecasting_run.run(spec, progress=progress, image=image, memory_limit=memory_limit)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    progress({"stage": "loading"})
    keep = list(spec.project.fairness.sensitive_features) if spec.project.fairness is not None else []
    projection = data.needed_columns(problem, pre, spec.data, keep=keep)
    snapshot = data.load(spec.data, columns=projection, memory_limit=memory_limit)
    seconds["load"] = time.perf_counter() - started

    progress({"stage": "processing"})
    data.check(snapshot.table, problem, pre, uri=snapshot.uri)
    processing.check(pre, problem)
    fair, method = spec.project.fairness, pre.mitigation.method
    if fair is not None:
        fairness.check(snapshot.table, fair, problem, uri=snapshot.uri)
    elif method != "none":
        raise errors.InvalidSpec(
            f"preprocessing.mitigation: {method} needs groups to mitigate across; set the project's "
            "fairness.sensitiveFeatures (or use method: none)"
        )
    sensitive = list(fair.sensitive_features) if fair is not None else []
    features = data.feature_columns(snapshot.table, problem, time_column=pre.split.time_column)
    text.check(snapshot.table, problem, pre, features, uri=snapshot.uri)
    loaded_rows = snapshot.rows
    # Clients send the sensitive features with each request when the model needs them (or to watch bias drift).
    captured = [*features, *(c for c in sensitive if c not in features)]
    labeled = (
        champion.labeled_traffic(spec, captured)
        if spec.feedback is not None
        else pd.DataFrame(columns=[*captured, problem.target])
    )
    labeled = data.typed_labels(labeled, like=snapshot.table[problem.target], target=problem.target)
    recent = champion.recent_holdout(labeled, test_share=pre.split.test) if spec.evaluate_on == "recent" else None
    if spec.include_feedback:
        # The recent holdout never trains the challenger it judges.
        snapshot = data.with_feedback(
            snapshot, labeled.iloc[: len(labeled) - (0 if recent is None else len(recent))], target=problem.target
        )
    columns = processing.columns_of(snapshot.table, features, pre, text_columns=problem.text_columns)
    candidates = algorithms.candidates(text.default_algorithms(spec.algorithms, problem), problem.task)
    table = processing.prepare(snapshot.table, problem, pre, columns)
    parts = split.partition(table, target=problem.target, task=problem.task, spec=pre.split)
    X_train, y_train = parts.train[features], parts.train[problem.target]
    # data.sample: the search sees a sample of the training rows; the final fit below sees them all.
    searched_rows = X_train.index
    if spec.data.sample is not None:
        searched_rows = split.search_sample(y_train, size=spec.data.sample.size(len(y_train)), task=problem.task, spec=pre.split)
    X_search, y_search = X_train.loc[searched_rows], y_train.loc[searched_rows]
    task = evaluation.task_of(problem, table[problem.target])
    favorable = fairness.favorable_of(fair, task) if fair is not None else None
    candidates, weightless = _weighted(candidates, method, task=problem.task, listed=bool(spec.algorithms))
    folds = split.folds(y_search, task=problem.task, spec=pre.split, cv_folds=spec.tuning.cv_folds)
    recipe = processing.Recipe(
        pre, columns, problem.task, pre.split.seed, smote_neighbours=_smote_neighbours(y_search, folds, problem.task)
    )
    balanced = pre.balance == "class_weight"
    notes = [
        f"balance: class_weight is not supported by {c.name}; it trained without class weights"
        for c in candidates
        if balanced and not algorithms.supports_class_weight(c.name, problem.task)
    ] + [
        f"mitigation: {method} needs sample weights, which {name} does not accept; it was not a candidate" for name in weightless
    ]
    if len(searched_rows) < len(X_train):
        notes.append(
            f"data.sample: the search ran on a seeded sample of {len(searched_rows):,} of the {len(X_train):,} training rows; "
            "the chosen configuration was then fit on all of them"
        )
    mitigation.check(method, task_classes=len(task.classes), steps=[n for n, _ in recipe.pipeline("passthrough").steps])

    progress({"stage": "tuning", "trialsCompleted": 0, "trialsTotal": tuning.planned_trials(spec.tuning, candidates)})
    searched = time.perf_counter()
    search = tuning.run(
        tuning.Problem(X_search, y_search, folds, task, problem.primary_metric, recipe, balanced),
        candidates,
        spec.tuning,
        timeout_seconds=base.parse_duration(spec.tuning.timeout).total_seconds() if spec.tuning.timeout else None,
        on_trial=lambda trials, planned: progress(
            _tuning_progress(trials, planned, problem.primary_metric)
            | tuning.pace(trials, planned, workers=spec.tuning.workers, seconds=time.perf_counter() - searched)
        ),
        shared=shared,
    )
    seconds["tuning"] = time.perf_counter() - searched

    progress({"stage": "evaluating"})
    best = search.best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the trials already reported this configuration's warnings
        unmitigated = recipe.pipeline(
            algorithms.build(best.algorithm, problem.task, best.params, seed=pre.split.seed, balanced=balanced)
        )
        unmitigated.fit(X_train, y_train)
        if method == "none":
            model, inputs = unmitigated, features
        else:
            model = mitigation.Mitigated(
                recipe.pipeline(
                    algorithms.build(best.algorithm, problem.task, best.params, seed=pre.split.seed, balanced=balanced)
                ),
                method=method,
                constraint=pre.mitigation.constraint,
                features=features,
                sensitive=sensitive,
                favorable=favorable,
            ).fit(parts.train[captured], y_train)
            inputs = model.input_columns
    held_out = {name: part for name, part in (("validation", parts.validation), ("test", parts.test)) if len(part)}
    metrics = {name: evaluation.scores(model, part[inputs], part[problem.target], task) for name, part in held_out.items()}
    metrics.setdefault("validation", {})
    X_test, y_test = parts.test[inputs], parts.test[problem.target]
    assessed = time.perf_counter()
    fairness_report = (
        None
        if fair is None
        else _fairness(
            fair,
            pre.mitigation,
            table=table,
            test=parts.test,
            target=problem.target,
            favorable=favorable,
            model=(model, inputs),
            unmitigated=None if method == "none" else (unmitigated, features),
            task=task,
            primary=problem.primary_metric,
            test_metrics=metrics["test"],
            seed=pre.split.seed,
        )
    )
    seconds["fairness"] = time.perf_counter() - assessed
    outcome = Outcome(
        snapshot=snapshot,
        profile=profile.of(snapshot.table),
        columns=columns,
        schema=text.schema(
            _schema(parts.train, inputs, non_nullable=processing.non_nullable(pre, columns), model=model), problem.text_columns
        ),
        rows={
            "loaded": loaded_rows,
            "feedback": snapshot.rows - loaded_rows,
            "prepared": len(table),
            "train": len(parts.train),
            "searched": len(searched_rows),
            "validation": len(parts.validation),
            "test": len(parts.test),
        },
        task=task,
        search=search,
        model=model,
        metrics=metrics,
        confusion=evaluation.confusion(model, X_test, y_test, task) if task.kind == "classification" else None,
        plots=card.plots(model, X_test, y_test, task, seed=pre.split.seed),
        criteria=evaluation.criteria(metrics["test"], spec.project.success_criteria),
        overfitting=_overfitting(model, parts.train[inputs], y_train, metrics, best, task, problem.primary_metric),
        importance=explain.importance(model, X_test, y_test, task=task, metric=problem.primary_metric, seed=pre.split.seed),
        comparison=champion.compare(
            spec,
            model,
            task,
            test=(parts.test.drop(columns=[problem.target]), y_test, metrics["test"]),
            recent=None if recent is None else (recent[inputs], recent[problem.target]),
        ),
        reference=reference.of(
            model,
            parts.train,
            features=inputs,
            target=problem.target,
            categorical=columns.categorical,
            seed=pre.split.seed,
            traffic=_servable(labeled, processing.non_nullable(pre, columns)) if spec.include_feedback else None,
            text=columns.text,
            holdout=pd.concat([parts.validation, parts.test], ignore_index=True),
        ),
        notes=notes,
        seconds=seconds,
        lineage=training.Lineage(data=list(snapshot.sources), image=image, mlkube_version=mlkube_version()),
        inputs=inputs,
        fairness=fairness_report,
    )

    progress({"stage": "writing"})
    return outcome, write_version(spec, outcome)


def write_version(
    spec: trainer_api.TrainerInput, outcome: Outcome, *, amend_card: Callable[[dict[str, Any]], None] | None = None
) -> artifacts.ArtifactInfo:
    """Write the run's model version to ``spec.output.uri``: the model, its card (built from the
    outcome; ``amend_card`` adds a framing's own sections), metrics and reference, manifest last."""
    document = card.build(spec, outcome, diagnostics=diagnostics(outcome))
    if amend_card is not None:
        amend_card(document)
    return artifacts.write(
        spec.output.uri,
        pipeline=outcome.model,
        card=document,
        metrics=outcome.metrics,
        reference=outcome.reference.table,
        storage_options=storage.Options(endpoint=spec.output.endpoint),
    )


def mlkube_version() -> str:
    """The installed mlkube package's version; "unknown" when the code runs from a source tree that
    was never installed (no package metadata)."""
    try:
        return importlib.metadata.version("mlkube")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def diagnostics(outcome: Outcome) -> dict[str, Any]:
    """Trial times, peak memory, the overfitting check and the warnings, as the result reports them."""
    ran = [t for t in outcome.search.trials if not t.reused]
    durations = [t.seconds for t in ran] or [0.0]
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    peak = max([peak_kib / 1024] + [t.peak_memory_mib for t in ran])
    return {
        "trialSeconds": {"p50": round(statistics.median(durations), 3), "max": round(max(durations), 3)},
        "peakMemoryMiB": round(peak, 1),
        "overfitting": outcome.overfitting,
        "warnings": warning_summary(outcome.search.trials) + outcome.notes,
    }


def warning_summary(trials: list[tuning.Trial]) -> list[str]:
    """`["ConvergenceWarning in logistic_regression (3 trials)", ...]`, plus failed-trial counts."""
    counts: dict[tuple[str, str], int] = {}
    for trial in trials:
        if trial.reused:
            continue
        for category in trial.warnings:
            counts[(category, trial.algorithm)] = counts.get((category, trial.algorithm), 0) + 1
        if trial.state == "failed":
            counts[("Failed trial", trial.algorithm)] = counts.get(("Failed trial", trial.algorithm), 0) + 1
    return [f"{category} in {algorithm} ({n} trial{'s' if n > 1 else ''})" for (category, algorithm), n in sorted(counts.items())]


def _tuning_progress(trials: list[tuning.Trial], planned: int, metric: str) -> dict[str, Any]:
    scores = [t.score for t in trials if t.state == "complete"]
    best = (min if evaluation.direction(metric) == "minimize" else max)(scores) if scores else None
    return {
        "stage": "tuning",
        "trialsCompleted": len(trials),
        "trialsTotal": planned,
        "bestScore": None if best is None else round(best, 6),
    }


def _weighted(candidates: list, method: str, *, task: str, listed: bool) -> tuple[list, list[str]]:
    """The candidates a mitigation can fit, and the names of those it cannot (no sample weights).
    An explicit list of algorithms none of which can is refused."""
    if method not in mitigation.WEIGHTED:
        return candidates, []
    able = [c for c in candidates if mitigation.accepts_weights(algorithms.build(c.name, task, {}, seed=0))]
    unable = [c.name for c in candidates if c not in able]
    if not able:
        where = "algorithms" if listed else "the registry's algorithms"
        raise errors.InvalidSpec(
            f"preprocessing.mitigation: {method} needs an estimator that accepts sample weights; none of {where} "
            f"({', '.join(unable)}) does; add one such as logistic_regression or use threshold_optimizer"
        )
    return able, unable


def _fairness(
    spec,
    mitigation_spec: preprocessing.Mitigation,
    *,
    table: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    favorable: Any,
    model: tuple[Any, list[str]],
    unmitigated: tuple[Any, list[str]] | None,
    task: evaluation.Task,
    primary: str,
    test_metrics: dict[str, float],
    seed: int,
) -> dict[str, Any]:
    """`api.training.Fairness` in its wire form: data bias, the model's group metrics with intervals
    on the test split, the criteria, and (with a mitigation) the metrics without and with it."""
    sensitive = list(spec.sensitive_features)
    fitted, inputs = model
    assessment = fairness.assess(test[target], fitted.predict(test[inputs]), test[sensitive], favorable=favorable, seed=seed)
    failed = fairness.failed(assessment.metrics, spec.criteria)
    method = mitigation_spec.method
    found: dict[str, Any] = {
        "sensitiveFeatures": sensitive,
        "favorableOutcome": str(favorable),
        "mitigation": method
        if method in ("none", "reweighing")
        else f"{method}/{mitigation_spec.constraint or 'demographic_parity'}",
        "data": fairness.data_bias(table, target=target, sensitive=sensitive, favorable=favorable),
        "groups": assessment.groups,
        "metrics": assessment.metrics,
        "intervals": assessment.intervals,
        "criteriaMet": not failed,
        "failedCriteria": failed,
    }
    if unmitigated is not None:
        baseline, features = unmitigated
        predicted = baseline.predict(test[features])
        before = fairness.assess(test[target], predicted, test[sensitive], favorable=favorable, seed=seed, samples=0).metrics
        scores = evaluation.scores(baseline, test[features], test[target], task)
        found["tradeoff"] = {
            metric: {"unmitigated": round(before_value, 6), "mitigated": round(after_value, 6)}
            for metric, before_value, after_value in [
                *((m, scores.get(m), test_metrics.get(m)) for m in dict.fromkeys(["accuracy", primary])),
                *((m, before.get(m), assessment.metrics.get(m)) for m in fairness.METRICS),
            ]
            if before_value is not None and after_value is not None
        }
    return found


def _schema(train: pd.DataFrame, inputs: list[str], *, non_nullable: set[str], model: Any) -> list[dict[str, Any]]:
    """The feature schema of the served model's inputs; a sensitive feature it needs at prediction
    time is marked (`sensitive`), with every group it has a threshold for (`groups`)."""
    schema = profile.feature_schema(train, inputs, non_nullable=non_nullable)
    required = set(getattr(model, "requires_sensitive", []))
    for entry in schema:
        if entry["name"] in required:
            entry["sensitive"] = True
            entry["groups"] = sorted(set(fairness.group_labels(train[entry["name"]])))
    return schema


def _overfitting(model, X_train, y_train, metrics, best: tuning.Trial, task, metric: str) -> dict[str, Any]:
    train_score = evaluation.score(metric, model, X_train, y_train, task)
    validation_score = metrics["validation"].get(metric, best.score)
    gap = validation_score - train_score if metric in base.LOWER_IS_BETTER else train_score - validation_score
    flagged = bool(gap > OVERFITTING_GAP * max(abs(train_score), 1e-12))
    return {"trainScore": round(train_score, 6), "validationScore": round(validation_score, 6), "flagged": flagged}


def _servable(labeled: pd.DataFrame, non_nullable: set[str]) -> pd.DataFrame:
    """The labeled traffic the version can predict: rows missing a value its pipeline refuses are left out."""
    return labeled.dropna(subset=sorted(non_nullable)) if non_nullable else labeled


def _smote_neighbours(y_train: pd.Series, folds, task: str) -> int:
    """SMOTE's k: at most 5, below the smallest class of any fold's training rows."""
    if task != "classification":
        return 5
    smallest = min(int(y_train.iloc[train].value_counts().min()) for train, _ in folds)
    return max(1, min(5, smallest - 1))
