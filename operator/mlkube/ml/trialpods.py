"""The search as `tuning.workers` trial pods sharing one Optuna study in a database.

Every pod runs this with its completion index. Index 0 (the leader) creates the study (one per
TrainingJob run, `SharedStudy.name`), queues the grid's points for a grid search and marks the
study ready; the others wait for that, then all of them ask the study for trials and tell it the
scores (ask/tell against `ml.studies`), each pod running up to `parallelism` trials at once.
Samplers are seeded `seed + index` so that random and TPE pods do not propose the same points;
a grid search evaluates the same points whatever the number of pods, each trial cross-validated
exactly as in one pod, so its outcome equals one pod's. The MedianPruner reads every pod's
intermediate scores from the database, so pruning works across pods.

Each trial carries the index of the pod that runs it (`mlkube.pod`). Budget: a trial counts when it is recorded (its pod told the study and stored the `Trial` record
as the user attribute `mlkube.trial`) or still waiting/running. A pod asks for a trial only while
the budget (`maxTrials`, or the grid's size) has room or a queued trial waits; a trial that two
pods asked for at once beyond the budget is told failed and marked `mlkube.surplus` (never run,
never counted). A trial whose pod died stops beating (`ml.studies`); the next pod to look fails it
and queues a retry, which counts in its place, so no trial is counted twice.

The leader keeps running trials while any wait, then waits until no trial is running (retrying
lost ones), and returns the Search over every pod's recorded trials in trial-number order; the
other pods stop when nothing is left to ask for and raise `tuning.WorkerFinished`.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gc
import itertools
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from mlkube.api import tuning as tuning_api
from mlkube.ml import errors, evaluation, space, studies, tuning

LEADER = 0
READY = "mlkube.ready"
RECORD = "mlkube.trial"
SURPLUS = "mlkube.surplus"
POD = "mlkube.pod"  # the index of the trial pod that runs the trial
POLL_SECONDS = 1.0
JOIN_SECONDS = 600.0  # how long a worker waits for the leader to create the study

_State = optuna.trial.TrialState
_TOLD = {"complete": _State.COMPLETE, "pruned": _State.PRUNED}


def run(
    problem: tuning.Problem,
    candidates: list,
    spec: tuning_api.Tuning,
    shared: tuning.SharedStudy,
    *,
    timeout_seconds: float | None,
    on_trial: Callable[[list[tuning.Trial], int], None],
) -> tuning.Search:
    """This pod's part of the shared search (see the module docstring)."""
    planned = tuning.planned_trials(spec, candidates)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else math.inf
    by_name = {c.name: c for c in candidates}
    storage = studies.open(shared.url)
    study = _join(storage, problem, spec, candidates, shared)
    grid = spec.strategy == "grid"
    beat = studies.Heartbeat(storage)
    pool = None
    if spec.parallelism > 1:
        pool = tuning.trial_pool(
            problem, functools.partial(studies.open, shared.url), shared.name, study.pruner, spec.parallelism
        )
    running: dict[concurrent.futures.Future, optuna.trial.Trial] = {}
    ran, reported = 0, -1
    try:
        while True:
            _fail_stale(study)
            while len(running) < spec.parallelism and time.monotonic() < deadline:
                handle = claim(study, planned, grid=grid)
                if handle is None:
                    break
                beat.add(handle._trial_id)
                handle.set_user_attr(POD, shared.index)
                algorithm = handle.suggest_categorical("algorithm", list(by_name))
                params = space.suggest(handle, by_name[algorithm].dimensions, prefix=algorithm)
                if pool is None:
                    record_trial(study, handle, tuning.evaluate(problem, handle, algorithm, params, deadline=deadline))
                    beat.remove(handle._trial_id)
                    ran += 1
                    reported = _report(study, shared, by_name, planned, on_trial, reported)
                else:
                    running[pool.submit(tuning.evaluate_in_worker, handle._trial_id, algorithm, params, deadline)] = handle
            if not running:
                if shared.index != LEADER or time.monotonic() >= deadline or _settled(study):
                    break
                reported = _report(study, shared, by_name, planned, on_trial, reported)
                time.sleep(POLL_SECONDS)
                continue
            done, _ = concurrent.futures.wait(running, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                handle = running.pop(future)
                record_trial(study, handle, tuning.worker_result(future))
                beat.remove(handle._trial_id)
                ran += 1
            reported = _report(study, shared, by_name, planned, on_trial, reported)
    finally:
        beat.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            gc.unfreeze()
    if shared.index != LEADER:
        raise tuning.WorkerFinished(ran)
    trials = recorded(study, by_name)
    complete = [t for t in trials if t.state == "complete"]
    if not complete:
        raise errors.TrainingFailed(tuning.no_complete_trial(trials, spec, timed_out=time.monotonic() >= deadline))
    better = min if evaluation.direction(problem.metric) == "minimize" else max
    return tuning.Search(trials=trials, best=better(complete, key=lambda t: t.score), planned=planned)


def recorded(study: optuna.Study, by_name: dict[str, Any]) -> list[tuning.Trial]:
    """Every pod's recorded trials, in trial-number order (lost and surplus trials left out)."""
    frozen = study.get_trials(deepcopy=False)
    superseded = _superseded(frozen)
    trials = []
    for f in sorted(frozen, key=lambda t: t.number):
        if not _is_recorded(f, superseded):
            continue
        record = f.user_attrs[RECORD]
        algorithm = f.params["algorithm"]
        trials.append(
            tuning.Trial(
                number=f.number,
                algorithm=algorithm,
                params=space.suggest(f, by_name[algorithm].dimensions, prefix=algorithm),
                state=record["state"],
                score=record.get("score"),
                fold_scores=list(record.get("foldScores") or []),
                seconds=record.get("seconds") or 0.0,
                peak_memory_mib=record.get("peakMemoryMiB") or 0.0,
                warnings=list(record.get("warnings") or []),
                error=record.get("error"),
            )
        )
    return trials


def _join(storage, problem: tuning.Problem, spec: tuning_api.Tuning, candidates, shared: tuning.SharedStudy) -> optuna.Study:
    """The shared study: created (and the grid queued) by the leader, awaited by the others."""
    sampler = tuning.sampler(spec.model_copy(update={"seed": spec.seed + shared.index}))
    pruner = tuning.pruner(spec)
    if shared.index == LEADER:
        study = optuna.create_study(
            study_name=shared.name,
            storage=storage,
            direction=evaluation.direction(problem.metric),
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        if not study.user_attrs.get(READY):  # a replaced leader finds the study ready and joins it
            if spec.strategy == "grid":
                tuning.enqueue_grid(study, spec, candidates)
            study.set_user_attr(READY, True)
        return study
    waited = time.monotonic() + JOIN_SECONDS
    while time.monotonic() < waited:
        try:
            study = optuna.load_study(study_name=shared.name, storage=storage, sampler=sampler, pruner=pruner)
            if study.user_attrs.get(READY):
                return study
        except KeyError:
            pass  # the leader has not created it yet
        time.sleep(POLL_SECONDS)
    raise errors.TrainingFailed(
        f"trial pod {shared.index}: the pod with index 0 did not create the study {shared.name!r} within "
        f"{JOIN_SECONDS:.0f}s; see that pod's log"
    )


def claim(study: optuna.Study, planned: int, *, grid: bool) -> optuna.trial.Trial | None:
    """The next trial this pod runs, or None when the budget is used and nothing is queued."""
    queued = study.get_trials(deepcopy=False, states=(_State.WAITING,))
    if not queued and (grid or _budgeted(study.get_trials(deepcopy=False)) >= planned):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna suggests optimize() with heartbeats; ml.studies beats for ask/tell
        handle = study.ask()
    system = study._storage.get_trial_system_attrs(handle._trial_id)
    if "fixed_params" in system or "failed_trial" in system:
        return handle  # a queued grid point or the retry of a lost trial
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < handle.number]
    if grid or _budgeted(earlier) >= planned:
        handle.set_user_attr(SURPLUS, True)
        study.tell(handle, state=_State.FAIL)
        return None
    return handle


def record_trial(study: optuna.Study, handle: optuna.trial.Trial, trial: tuning.Trial) -> None:
    """Store the trial's record and tell the study; a trial failed meanwhile as lost is dropped (its
    retry counts instead)."""
    if trial.state == "invalid":
        raise errors.InvalidSpec(f"algorithms ({trial.algorithm}): {trial.error}")
    record = {
        "state": trial.state,
        "score": trial.score,
        "foldScores": trial.fold_scores,
        "seconds": round(trial.seconds, 3),
        "peakMemoryMiB": round(trial.peak_memory_mib, 1),
        "warnings": trial.warnings,
        "error": trial.error,
    }
    try:
        handle.set_user_attr(RECORD, record)
    except optuna.exceptions.UpdateFinishedTrialError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # told after it was failed as lost: skipped, and Optuna warns
        if trial.state == "complete":
            study.tell(handle, trial.score, skip_if_finished=True)
        else:
            study.tell(handle, state=_TOLD.get(trial.state, _State.FAIL), skip_if_finished=True)


def _report(study, shared, by_name, planned: int, on_trial, reported: int) -> int:
    """The leader reports progress over every pod's trials when their number changed."""
    if shared.index != LEADER:
        return reported
    trials = recorded(study, by_name)
    if len(trials) != reported:
        on_trial(trials, planned)
    return len(trials)


def _settled(study: optuna.Study) -> bool:
    return not study.get_trials(deepcopy=False, states=(_State.RUNNING, _State.WAITING))


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _superseded(frozen) -> set[int]:
    return set(itertools.chain.from_iterable(t.system_attrs.get("retry_history", []) for t in frozen))


def _is_recorded(trial, superseded: set[int]) -> bool:
    record = trial.user_attrs.get(RECORD)
    if record is None or trial.number in superseded:
        return False
    return trial.state == _TOLD.get(record["state"], _State.FAIL)


def _budgeted(frozen) -> int:
    """Trials that count against the budget: recorded, waiting or running (not lost, not surplus)."""
    superseded = _superseded(frozen)
    return sum(
        1
        for t in frozen
        if (t.state in (_State.RUNNING, _State.WAITING) and not t.user_attrs.get(SURPLUS)) or _is_recorded(t, superseded)
    )
