"""Algorithm selection and hyper-parameter search: one Optuna study over every candidate.

The study's first parameter is the algorithm, the rest are that algorithm's dimensions
(`space`), so TPE learns which algorithm is promising as well as where. `grid` enqueues every
grid point (round-robin over algorithms, cut at `maxTrials`), `random` samples with a seeded
RandomSampler, `bayesian` uses a seeded TPE sampler. Each trial cross-validates the whole
pipeline on the training partition, reporting each fold's score so that Optuna's MedianPruner
stops hopeless trials (`earlyStopping`).

Trials run in `parallelism` worker processes (forked, one core each), so two trials really run
at once; the study then lives in a journal file that the workers open to report folds and ask
whether to prune. `parallelism: 1` runs trials in this process. The time budget stops new
trials and abandons running ones at their next fold. Identical points are scored once. A seeded
search is reproducible with `parallelism: 1`; with more, the order in which trials finish (and so
what TPE has seen when it proposes the next point) varies from run to run.

Diagnostics per trial: seconds, peak memory of the process that ran it, and the warning
categories raised (ConvergenceWarning, ...). An invalid hyper-parameter value fails the run at
once with scikit-learn's own message (errors.InvalidSpec); other trial errors fail that trial.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import dataclasses
import functools
import gc
import json
import math
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from sklearn.utils import _param_validation

from mlkube.api import tuning as tuning_api
from mlkube.ml import algorithms, errors, evaluation, processing, space

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclasses.dataclass(frozen=True)
class Problem:
    """What every trial is scored on: the training partition, its CV folds and the primary metric."""

    X: Any
    y: Any
    folds: list[tuple[np.ndarray, np.ndarray]]
    task: evaluation.Task
    metric: str
    recipe: processing.Recipe
    balanced: bool  # balance: class_weight


@dataclasses.dataclass
class Trial:
    """One finished trial."""

    number: int
    algorithm: str
    params: dict[str, Any]
    state: str  # complete | pruned | failed | timeout
    score: float | None = None
    fold_scores: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mib: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    reused: bool = False  # an identical point scored earlier; not refitted


@dataclasses.dataclass(frozen=True)
class Search:
    """The outcome: every trial and the best complete one."""

    trials: list[Trial]
    best: Trial
    planned: int


@dataclasses.dataclass(frozen=True)
class SharedStudy:
    """One trial pod's part in a study shared through a database."""

    url: str  # SQLAlchemy URL of the study database (ml.studies)
    name: str  # the study: one per TrainingJob run
    index: int  # this pod's completion index; 0 leads (creates the study, returns the Search)
    workers: int


class WorkerFinished(Exception):
    """A trial pod other than the leader ran out of trials to run; it writes a worker result."""

    def __init__(self, trials: int) -> None:
        super().__init__(f"this worker ran {trials} trials; index 0 fits the version")
        self.trials = trials


def pace(trials: list[Trial], planned: int, *, workers: int, seconds: float) -> dict[str, Any]:
    """The progress fields that describe the search's pace: its trial pods and the seconds left,
    estimated from the trials finished in the `seconds` since the search began."""
    done = len(trials)
    eta = round(seconds / done * max(planned - done, 0)) if done else None
    return {"workers": workers, "etaSeconds": eta}


def planned_trials(tuning: tuning_api.Tuning, candidates: list[algorithms.Candidate]) -> int:
    if tuning.strategy == "grid":
        return min(tuning.max_trials, sum(len(space.grid(c.dimensions)) for c in candidates))
    return tuning.max_trials


def run(
    problem: Problem,
    candidates: list[algorithms.Candidate],
    tuning: tuning_api.Tuning,
    *,
    timeout_seconds: float | None,
    on_trial: Callable[[list[Trial], int], None] = lambda trials, planned: None,
    shared: SharedStudy | None = None,
) -> Search:
    """Search `candidates` on `problem`; `on_trial(trials, planned)` is called after each trial.
    With `shared`, this pod is one of the trial pods of a study in a database (`ml.trialpods`):
    the leader returns the Search over every pod's trials, the others raise WorkerFinished."""
    if shared is not None:
        from mlkube.ml import trialpods  # trialpods builds on this module

        return trialpods.run(problem, candidates, tuning, shared, timeout_seconds=timeout_seconds, on_trial=on_trial)
    planned = planned_trials(tuning, candidates)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else math.inf
    by_name = {c.name: c for c in candidates}
    with tempfile.TemporaryDirectory(prefix="mlkube-study-") as workdir:
        journal = os.path.join(workdir, "journal.log") if tuning.parallelism > 1 else None
        study = _study(problem, tuning, candidates, journal=journal)
        trials: list[Trial] = []
        seen: dict[str, Trial] = {}
        pool = (
            trial_pool(problem, functools.partial(_journal_storage, journal), "search", study.pruner, tuning.parallelism)
            if journal
            else None
        )
        running: dict[concurrent.futures.Future, tuple[optuna.trial.Trial, str]] = {}
        try:
            asked = 0
            while True:
                while asked < planned and len(running) < tuning.parallelism and time.monotonic() < deadline:
                    handle, algorithm, params = _propose(study, by_name)
                    asked += 1
                    key = json.dumps([algorithm, params], sort_keys=True, default=str)
                    if key in seen:  # an identical point: reuse its score instead of refitting
                        trial = dataclasses.replace(seen[key], number=handle.number, warnings=[], reused=True)
                    elif pool is None:
                        trial = seen[key] = evaluate(problem, handle, algorithm, params, deadline=deadline)
                    else:
                        running[pool.submit(evaluate_in_worker, handle._trial_id, algorithm, params, deadline)] = (
                            handle,
                            key,
                        )
                        continue
                    _finish(study, handle, trial, trials, on_trial, planned)
                if not running:
                    break
                wait = None if deadline == math.inf else max(0.0, deadline - time.monotonic()) + 1.0
                done, _ = concurrent.futures.wait(running, timeout=wait, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    handle, key = running.pop(future)
                    trial = seen[key] = worker_result(future)
                    _finish(study, handle, trial, trials, on_trial, planned)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                gc.unfreeze()
    complete = [t for t in trials if t.state == "complete"]
    if not complete:
        raise errors.TrainingFailed(no_complete_trial(trials, tuning, timed_out=time.monotonic() >= deadline))
    better = min if evaluation.direction(problem.metric) == "minimize" else max
    return Search(trials=trials, best=better(complete, key=lambda t: t.score), planned=planned)


def evaluate(problem: Problem, handle: optuna.trial.Trial, algorithm: str, params: dict, *, deadline: float) -> Trial:
    """Cross-validate one point, reporting each fold to the study and stopping when it says prune."""
    started = time.perf_counter()
    trial = Trial(number=handle.number, algorithm=algorithm, params=params, state="complete")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for step, (train, held_out) in enumerate(problem.folds):
                if time.monotonic() >= deadline:
                    trial.state = "timeout"
                    break
                estimator = algorithms.build(
                    algorithm, problem.task.kind, params, seed=problem.recipe.seed, balanced=problem.balanced
                )
                model = problem.recipe.pipeline(estimator)
                model.fit(_rows(problem.X, train), _rows(problem.y, train))
                value = evaluation.score(
                    problem.metric, model, _rows(problem.X, held_out), _rows(problem.y, held_out), problem.task
                )
                trial.fold_scores.append(value)
                if math.isnan(value):
                    raise ValueError(f"{problem.metric} is undefined on fold {step + 1}")
                handle.report(value, step)
                if handle.should_prune():
                    trial.state = "pruned"
                    break
        except _param_validation.InvalidParameterError as e:
            trial.state, trial.error = "invalid", str(e)
        except Exception as e:
            trial.state, trial.error = "failed", f"{type(e).__name__}: {e}"
    if trial.state == "complete":
        trial.score = float(np.mean(trial.fold_scores))
    trial.seconds = time.perf_counter() - started
    trial.peak_memory_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trial.warnings = sorted({w.category.__name__ for w in caught})
    return trial


def _propose(study: optuna.Study, by_name: dict[str, algorithms.Candidate]) -> tuple[optuna.trial.Trial, str, dict]:
    """The study's next point: an algorithm, then a point of that algorithm's space."""
    handle = study.ask()
    algorithm = handle.suggest_categorical("algorithm", list(by_name))
    return handle, algorithm, space.suggest(handle, by_name[algorithm].dimensions, prefix=algorithm)


def worker_result(future: concurrent.futures.Future) -> Trial:
    try:
        return future.result()
    except concurrent.futures.process.BrokenProcessPool as e:
        raise errors.TrainingFailed(
            "a trial worker process died (killed for memory?); lower tuning.parallelism or raise the memory limit"
        ) from e


def _finish(study, handle, trial: Trial, trials: list[Trial], on_trial, planned: int) -> None:
    if trial.state == "invalid":
        raise errors.InvalidSpec(f"algorithms ({trial.algorithm}): {trial.error}")
    if trial.state == "complete":
        study.tell(handle, trial.score)
    elif trial.state == "pruned":
        study.tell(handle, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(handle, state=optuna.trial.TrialState.FAIL)
    trials.append(trial)
    on_trial(trials, planned)


def _study(problem: Problem, tuning: tuning_api.Tuning, candidates, *, journal: str | None) -> optuna.Study:
    study = optuna.create_study(
        study_name="search",
        storage=_journal_storage(journal) if journal else None,
        direction=evaluation.direction(problem.metric),
        sampler=sampler(tuning),
        pruner=pruner(tuning),
    )
    if tuning.strategy == "grid":
        enqueue_grid(study, tuning, candidates)
    return study


def enqueue_grid(study: optuna.Study, tuning: tuning_api.Tuning, candidates) -> None:
    """Queue the grid's points (round-robin over the algorithms, cut at maxTrials) in the study."""
    for algorithm, point in _interleaved_grid(candidates)[: tuning.max_trials]:
        study.enqueue_trial(
            {
                "algorithm": algorithm,
                **space.study_params(point, dict(_dims(candidates, algorithm)), prefix=algorithm),
            }
        )


def sampler(tuning: tuning_api.Tuning) -> optuna.samplers.BaseSampler:
    if tuning.strategy == "bayesian":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            startup = max(2, min(10, tuning.max_trials // 3))
            return optuna.samplers.TPESampler(seed=tuning.seed, n_startup_trials=startup, multivariate=True, group=True)
    return optuna.samplers.RandomSampler(seed=tuning.seed)


def pruner(tuning: tuning_api.Tuning) -> optuna.pruners.BasePruner:
    if not tuning.early_stopping:
        return optuna.pruners.NopPruner()
    # Every trial running at once across the trial pods reports before the first pruning decision.
    return optuna.pruners.MedianPruner(n_startup_trials=max(3, tuning.parallelism * tuning.workers), n_warmup_steps=0)


def _interleaved_grid(candidates) -> list[tuple[str, dict]]:
    grids = [[(c.name, point) for point in space.grid(c.dimensions)] for c in candidates]
    ordered = []
    for index in range(max(map(len, grids))):
        ordered.extend(g[index] for g in grids if index < len(g))
    return ordered


def _dims(candidates, name):
    return next(c.dimensions for c in candidates if c.name == name).items()


def no_complete_trial(trials: list[Trial], tuning: tuning_api.Tuning, *, timed_out: bool) -> str:
    if timed_out and all(t.state in ("timeout", "pruned") for t in trials):
        return f"tuning.timeout {tuning.timeout} allowed no complete trial; raise tuning.timeout or lower tuning.cvFolds"
    failures = [t for t in trials if t.error]
    first = failures[0] if failures else None
    detail = f"; first error ({first.algorithm}, params {first.params}): {first.error}" if first else ""
    return f"none of {len(trials)} trials completed{detail}"


def _rows(data, index: np.ndarray):
    return data.iloc[index] if hasattr(data, "iloc") else data[index]


# --- worker processes ----------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _journal_storage(path: str):
    from optuna.storages import journal

    return journal.JournalStorage(journal.JournalFileBackend(path))


def trial_pool(
    problem: Problem, storage: Callable[[], Any], study_name: str, pruner, parallelism: int
) -> concurrent.futures.ProcessPoolExecutor:
    """`parallelism` forked trial processes, each opening the study `study_name` in `storage()`."""
    # fork: workers inherit the training data instead of unpickling a copy each. gc.freeze keeps
    # the children's garbage collector from writing to (and so copying) every inherited page.
    gc.freeze()
    context = multiprocessing.get_context("fork")
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=parallelism, mp_context=context, initializer=_init_worker, initargs=(problem, storage, study_name, pruner)
    )


def _init_worker(problem: Problem, storage: Callable[[], Any], study_name: str, pruner) -> None:
    import threadpoolctl

    # One core per worker: parallelism comes from trials side by side, not from BLAS threads.
    _worker["limits"] = threadpoolctl.threadpool_limits(1)
    _worker["problem"] = problem
    _worker["study"] = optuna.load_study(study_name=study_name, storage=storage(), pruner=pruner)


def evaluate_in_worker(trial_id: int, algorithm: str, params: dict, deadline: float) -> Trial:
    handle = optuna.trial.Trial(_worker["study"], trial_id)
    return evaluate(_worker["problem"], handle, algorithm, params, deadline=deadline)
