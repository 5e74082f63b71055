"""One forecasting training run: the stages of `experiment.run`, in time order.

load (plus the actuals feedback reported, with `retraining.includeFeedback`) → series →
split (test = the last `horizon` steps of every series) → select (every candidate configuration
scored by expanding-window cross-validation on the training part, recursive forecasts) → fit the
best on the training part and forecast the test horizon → the same for the seasonal-naive
baseline (`baseline_*` metrics) → intervals from the cross-validation errors → the served model:
the best configuration refitted on the whole history, so it forecasts from the newest value →
reference, model card, artifacts. Returns what `experiment.run` returns, so the trainer reports
it the same way. Never prints or reads the environment.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pandas as pd

from mlkube.api import preprocessing, training
from mlkube.api import trainer as trainer_api
from mlkube.api import tuning as tuning_api
from mlkube.ml import (
    artifacts,
    card,
    champion,
    data,
    errors,
    evaluation,
    experiment,
    processing,
    profile,
    reference,
    tuning,
)
from mlkube.ml.tasks import forecasting

# The reference of drift analysis: the steps after the history (what clients are expected to ask
# for), at least this many, two horizons and two seasons. Its forecasts are kept for the record;
# a forecast's own distribution is not judged for drift (it follows the times asked, see driftcheck).
REFERENCE_STEPS = 36


def run(
    spec: trainer_api.TrainerInput,
    *,
    progress: experiment.Progress = lambda update: None,
    image: str | None = None,
    memory_limit: int | None = None,
) -> tuple[experiment.Outcome, artifacts.ArtifactInfo]:
    """Train, evaluate and write the forecasting model version `spec` describes; data estimated too
    large for `memory_limit` (bytes) is refused before it is read."""
    problem = spec.project.problem
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    progress({"stage": "loading"})
    projection = data.needed_columns(problem, spec.preprocessing, spec.data)
    snapshot = data.load(spec.data, columns=projection, memory_limit=memory_limit)
    loaded_rows = snapshot.rows
    seconds["load"] = time.perf_counter() - started
    progress({"stage": "processing"})
    _check_preprocessing(spec.preprocessing)
    known = _check(snapshot.table, problem, uri=snapshot.uri)
    inputs = [problem.time_column, *([problem.series_id] if problem.series_id else []), *known]
    if spec.feedback is not None and spec.include_feedback:
        # Feedback is the actual of the time (and series) a request asked about: the series grows by it.
        snapshot = data.with_feedback(snapshot, champion.labeled_traffic(spec, inputs), target=problem.target)
    table = snapshot.table
    framing = forecasting.framing_of(
        table,
        target=problem.target,
        time=problem.time_column,
        series=problem.series_id,
        horizon=problem.horizon,
        frequency=problem.frequency,
        features=known,
    )
    series = forecasting.histories(table, framing)
    span = forecasting.Lags(framing.season).span
    short = {key: len(h.y) for key, h in series.items() if len(h.y) <= framing.horizon + span + 1}
    if short:
        key, steps = next(iter(short.items()))
        raise errors.DataError(
            f"problem.horizon: series {key or problem.target!r} has {steps} steps; a test horizon of {framing.horizon} "
            f"leaves too few to train on with lags up to {span} steps back"
        )
    train = {key: h.head(len(h.y) - framing.horizon) for key, h in series.items()}
    configurations = _configurations(spec.algorithms, spec.tuning.max_trials)
    cut_list = forecasting.cuts(train, horizon=framing.horizon, folds=spec.tuning.cv_folds, span=span)

    progress({"stage": "tuning", "trialsCompleted": 0, "trialsTotal": len(configurations)})
    searched = time.perf_counter()
    trials, validations = [], []
    for number, (algorithm, params) in enumerate(configurations):
        began = time.perf_counter()
        found = forecasting.cross_validate(
            framing,
            train,
            algorithm=algorithm,
            params=params,
            cut_list=cut_list,
            metric=problem.primary_metric,
            seed=spec.preprocessing.split.seed,
        )
        score = float(np.mean(found.scores))
        state = "complete" if np.isfinite(score) else "failed"
        kept = score if state == "complete" else None
        trials.append(tuning.Trial(number, algorithm, params, state, kept, found.scores, seconds=time.perf_counter() - began))
        validations.append(found)
        scores = [t.score for t in trials if t.score is not None]
        progress(
            {
                "stage": "tuning",
                "trialsCompleted": len(trials),
                "trialsTotal": len(configurations),
                "bestScore": round(min(scores), 6) if scores else None,
            }
        )
    complete = [i for i, t in enumerate(trials) if t.score is not None]
    if not complete:
        raise errors.MLError(f"no candidate could be validated on {problem.primary_metric}; see the trials in the model card")
    best_index = min(complete, key=lambda i: trials[i].score)
    best = trials[best_index]
    search = tuning.Search(trials=trials, best=best, planned=len(configurations))
    seconds["tuning"] = time.perf_counter() - searched

    progress({"stage": "evaluating"})
    seed = spec.preprocessing.split.seed
    test_rows = _rows(series, framing, start=-framing.horizon)
    naive_scale = np.concatenate([np.full(framing.horizon, forecasting.naive_mae(train[k], framing.season)) for k in series])
    actual = test_rows[problem.target].to_numpy(dtype=float)
    fitted = forecasting.Forecaster(framing, best.algorithm, best.params, seed=seed).fit(train)
    fitted.calibrate(validations[best_index].residuals)
    test = fitted.predict_interval(test_rows)
    baseline = forecasting.Forecaster(framing, forecasting.NAIVE).fit(train).predict(test_rows)
    test_metrics = forecasting.metrics(actual, test["prediction"].to_numpy(), naive_mae=naive_scale)
    test_metrics.update(
        {f"baseline_{name}": v for name, v in forecasting.metrics(actual, baseline, naive_mae=naive_scale).items()}
    )
    test_metrics["interval_coverage"] = float(np.mean((actual >= test["lower"]) & (actual <= test["upper"])))
    metrics = {"validation": {problem.primary_metric: best.score}, "test": test_metrics}

    # The served model: the chosen configuration on the whole history, with the validated interval width.
    model = forecasting.Forecaster(framing, best.algorithm, best.params, seed=seed).fit(series)
    model.calibrate(validations[best_index].residuals)
    reference_table = _reference(model, series, framing, steps=max(REFERENCE_STEPS, 2 * framing.season, 2 * framing.horizon))
    outcome = experiment.Outcome(
        snapshot=snapshot,
        profile=profile.of(snapshot.table),
        columns=processing.Columns(numeric=list(known), categorical=[problem.series_id] if problem.series_id else [], binned=[]),
        schema=_schema(framing, series),
        rows={
            "loaded": loaded_rows,
            "feedback": snapshot.rows - loaded_rows,
            "prepared": sum(len(h.y) for h in series.values()),
            "train": sum(len(h.y) for h in train.values()),
            "validation": 0,
            "test": len(test_rows),
        },
        task=evaluation.Task("forecasting"),
        search=search,
        model=model,
        metrics=metrics,
        confusion=None,
        plots={"residuals": card.residuals(actual, test["prediction"].to_numpy(), seed=seed)} if len(actual) > 1 else {},
        criteria=evaluation.criteria(test_metrics, spec.project.success_criteria),
        overfitting=_overfitting(fitted, train, framing, metric=problem.primary_metric, validation=best.score),
        importance={},
        comparison=_compare_with_champion(spec, test_rows, actual, naive_scale, challenger=test_metrics),
        reference=reference.Reference(
            reference_table,
            reference.TRAINING,
            f"its forecasts of the {len(reference_table) // len(series):,} steps after the history of each series, with the "
            "known-ahead values of as many steps before",
        ),
        notes=[],
        seconds=seconds,
        lineage=training.Lineage(data=list(snapshot.sources), image=image, mlkube_version=experiment.mlkube_version()),
        inputs=inputs,
    )
    progress({"stage": "writing"})

    def amend_card(document: dict[str, Any]) -> None:
        document["problem"].update(
            {"timeColumn": framing.time, "seriesId": framing.series, "horizon": framing.horizon, "frequency": framing.frequency}
        )
        document["forecasting"] = {
            "season": framing.season,
            "lags": list(model.lags.lags),
            "windows": list(model.lags.windows),
            "knownAhead": list(known),
            "intervalLevel": forecasting.INTERVAL_LEVEL,
            "series": {key: {"end": str(h.times[-1].date()), "steps": len(h.y)} for key, h in series.items()},
        }

    return outcome, experiment.write_version(spec, outcome, amend_card=amend_card)


def _check_preprocessing(pre: preprocessing.Preprocessing) -> None:
    """Refuse tabular preprocessing a forecasting run would ignore (only split.seed applies), naming the field."""
    given, default = pre.model_dump(by_alias=True), preprocessing.Preprocessing().model_dump(by_alias=True)
    given["split"].pop("seed"), default["split"].pop("seed")
    for field in given:
        if given[field] != default[field]:
            inner = (
                next((k for k in given[field] if given[field][k] != default[field][k]), None)
                if isinstance(given[field], dict)
                else None
            )
            raise errors.InvalidSpec(
                f"preprocessing.{field}{'.' + inner if inner else ''}: does not apply to forecasting (features are lags, rolling "
                "statistics and calendar fields; the test split is the last problem.horizon steps); remove it"
            )


def _check(table: pd.DataFrame, problem, *, uri: str) -> list[str]:
    """The known-ahead columns; raises DataError naming the field when the table cannot be forecast."""
    named = {"problem.target": problem.target, "problem.timeColumn": problem.time_column, "problem.seriesId": problem.series_id}
    for field, name in named.items():
        if name is not None and name not in table.columns:
            raise errors.DataError(
                f"{field}: column {name!r} does not exist in {uri}; columns are {', '.join(map(str, table.columns))}"
            )
    target = table[problem.target]
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        raise errors.DataError(f"{uri}: target column {problem.target!r} is {target.dtype}; forecasting needs numbers")
    framing_columns = {problem.target, problem.time_column, problem.series_id}
    if problem.features.include is not None:
        known = [c for c in problem.features.include if c not in framing_columns]
        missing = [c for c in known if c not in table.columns]
        if missing:
            raise errors.DataError(f"problem.features.include: column {missing[0]!r} does not exist in {uri}")
    else:
        known = [c for c in table.columns if c not in framing_columns and c not in problem.features.exclude]
    text = [c for c in known if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise errors.DataError(
            f"problem.features: known-ahead column(s) {', '.join(text)} are not numeric; forecasting takes numeric "
            "known-ahead features (exclude them in problem.features.exclude)"
        )
    return known


def _configurations(algorithms: list[tuning_api.Algorithm], max_trials: int) -> list[tuple[str, dict[str, Any]]]:
    """The seasonal-naive baseline, then every grid point of each candidate, at most `max_trials` in all."""
    listed = [(a.name, a.params) for a in algorithms] or [
        (name, {}) for name in forecasting.CANDIDATES if name != forecasting.NAIVE
    ]
    found: list[tuple[str, dict[str, Any]]] = [(forecasting.NAIVE, {})]
    for index, (name, params) in enumerate(listed):
        if name not in forecasting.CANDIDATES:
            usable = ", ".join(n for n in forecasting.CANDIDATES if n != forecasting.NAIVE)
            raise errors.InvalidSpec(f"algorithms[{index}].name: {name} is not a forecasting candidate; use {usable}")
        grid = {**forecasting.CANDIDATES[name][1], **params}
        for key, value in grid.items():
            if isinstance(value, dict):
                raise errors.InvalidSpec(
                    f"algorithms[{index}].params.{key}: forecasting searches a grid; give a value or a list of values"
                )
        choices = {key: value if isinstance(value, list) else [value] for key, value in grid.items()}
        found.extend((name, dict(zip(choices, point))) for point in itertools.product(*choices.values()))
    return found[: max(max_trials, 1)]


def _rows(series: dict[str, forecasting.History], framing: forecasting.Framing, *, start: int) -> pd.DataFrame:
    """The steps from `start` (negative: from the end) of every series as request-shaped rows, with the target."""
    frames = []
    for key, h in series.items():
        columns = {framing.time: _stamps(h.times[start:])}
        if framing.series:
            columns[framing.series] = key
        columns.update({name: h.exog[start:, i] for i, name in enumerate(framing.features)})
        columns[framing.target] = h.y[start:]
        frames.append(pd.DataFrame(columns))
    return pd.concat(frames, ignore_index=True)


def _reference(model: forecasting.Forecaster, series, framing: forecasting.Framing, *, steps: int) -> pd.DataFrame:
    """The drift reference: the `steps` times after each series' history, the series, the known-ahead values of
    the `steps` before (the values requests are expected to carry), the version's forecasts, no actuals yet."""
    frames = []
    forecasts = model.forecast(steps)
    for key, h in series.items():
        times = pd.date_range(h.times[-1], periods=steps + 1, freq=framing.frequency)[1:]
        columns = {framing.time: _stamps(times)}
        if framing.series:
            columns[framing.series] = key
        recent = h.exog[-steps:]
        columns.update({name: np.resize(recent[:, i], steps) for i, name in enumerate(framing.features)})
        columns["__prediction__"] = forecasts[key]
        columns["__target__"] = np.nan
        frames.append(pd.DataFrame(columns))
    return pd.concat(frames, ignore_index=True)


def _stamps(times: pd.DatetimeIndex) -> list[str]:
    """Times as a request names them: the date alone when it is midnight."""
    return [str(t.date()) if t == t.normalize() else t.isoformat() for t in times]


def _schema(framing: forecasting.Framing, series: dict[str, forecasting.History]) -> list[dict[str, Any]]:
    """What a request names: the time (any text pandas reads as a time), the series, the known-ahead values."""
    schema: list[dict[str, Any]] = [
        {"name": framing.time, "type": "categorical", "dtype": "object", "nullable": False, "role": "time"}
    ]
    if framing.series:
        schema.append(
            {"name": framing.series, "type": "categorical", "dtype": "object", "categories": sorted(series), "nullable": False}
        )
    schema.extend({"name": name, "type": "numeric", "dtype": "float64", "nullable": False} for name in framing.features)
    return schema


def _overfitting(fitted, train, framing, *, metric: str, validation: float) -> dict[str, Any]:
    """The fitted model's recursive forecast of the last horizon of its own training data (seen in training)
    against its cross-validated error on unseen horizons: the same kind of error, in and out of sample."""
    horizon = framing.horizon
    before = {key: h.head(len(h.y) - horizon) for key, h in train.items()}
    exog = {key: h.exog[-horizon:] for key, h in train.items()}
    predicted = fitted.with_history(before).forecast(horizon, exog=exog)
    actual = np.concatenate([h.y[-horizon:] for h in train.values()])
    scale = np.concatenate([np.full(horizon, forecasting.naive_mae(before[k], framing.season)) for k in train])
    found = forecasting.metrics(actual, np.concatenate([predicted[k] for k in train]), naive_mae=scale)
    score = found.get(metric, float("nan"))
    flagged = bool(validation - score > experiment.OVERFITTING_GAP * max(abs(score), 1e-12))
    return {"trainScore": round(float(score), 6), "validationScore": round(float(validation), 6), "flagged": flagged}


def _compare_with_champion(
    spec, test_rows: pd.DataFrame, actual, naive_scale, *, challenger: dict[str, float]
) -> dict[str, Any] | None:
    """The champion's forecasts of the same test steps (from the end of its own history) against the challenger's."""
    if spec.champion is None:
        return None
    metric = spec.project.problem.primary_metric
    try:
        with champion.champion_version(spec) as version:
            predicted = version.pipeline.predict(test_rows)
        champion_scores = forecasting.metrics(actual, predicted, naive_mae=naive_scale)
    except Exception as e:
        return champion.comparison_failed(spec, challenger, holdout="test", error=e)
    return {
        **evaluation.compare(challenger, champion_scores, metric=metric, champion_version=spec.champion.version),
        "holdout": "test",
    }
