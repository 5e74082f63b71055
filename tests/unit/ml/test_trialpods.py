"""Trial pods sharing one study in a database (ml.trialpods, ml.studies), run as threads on an
SQLite file: the leader's Search equals one pod's, both pods take trials, a lost trial is retried
and counted once, and the study database's settings are checked."""

import threading

import optuna
import pytest
from test_tuning import candidates, search_problem, settings

from mlkube.ml import errors, studies, trialpods, tuning

GRID = settings(strategy="grid", maxTrials=100, earlyStopping=False)


def spaces():
    return candidates(
        {"name": "logistic_regression", "params": {"C": [0.01, 0.1, 1.0, 10.0]}},
        {"name": "knn", "params": {"n_neighbors": [3, 9, 15], "weights": "uniform"}},
    )


def pods(problem, url, spec, *, workers=2):
    """Run `workers` trial pods as threads; the leader's Search and the others' trial counts."""
    found, counts, failures = {}, {}, []

    def pod(index):
        shared = tuning.SharedStudy(url=url, name="ns/run/uid", index=index, workers=workers)
        try:
            found["search"] = tuning.run(problem, spaces(), spec, timeout_seconds=None, shared=shared)
        except tuning.WorkerFinished as done:
            counts[index] = done.trials
        except Exception as e:  # reported to the test thread
            failures.append(e)

    threads = [threading.Thread(target=pod, args=(i,), name=f"pod-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return found["search"], counts


def test_two_pods_give_the_one_pod_search(mixed, tmp_path, monkeypatch):
    problem = search_problem(mixed)
    alone = tuning.run(problem, spaces(), GRID, timeout_seconds=None)
    evaluate = tuning.evaluate

    second_pod_working = threading.Event()

    def like_a_real_fit(*args, **kwargs):
        # The leader's first trial lasts until the second pod has taken one: however slowly that
        # pod's thread starts on a busy machine, the leader cannot take every trial alone.
        if threading.current_thread().name == "pod-1":
            second_pod_working.set()
        else:
            second_pod_working.wait(timeout=60)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(tuning, "evaluate", like_a_real_fit)
    monkeypatch.setattr(trialpods, "POLL_SECONDS", 0.02)
    url = f"sqlite:///{tmp_path}/studies.db"
    shared, counts = pods(problem, url, GRID)

    assert [(t.number, t.algorithm, t.params, t.score) for t in shared.trials] == [
        (t.number, t.algorithm, t.params, t.score) for t in alone.trials
    ]
    assert (shared.best.algorithm, shared.best.params) == (alone.best.algorithm, alone.best.params)
    ran = [t for t in optuna.load_study(study_name="ns/run/uid", storage=url).trials if "mlkube.trial" in t.user_attrs]
    assert len(ran) == 7 and {t.user_attrs["mlkube.pod"] for t in ran} == {0, 1} and counts[1] >= 1


def test_a_lost_trial_is_retried_once_and_counted_once(mixed, tmp_path, monkeypatch):
    monkeypatch.setattr(studies, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(studies, "GRACE_SECONDS", 1)
    problem, url = search_problem(mixed), f"sqlite:///{tmp_path}/studies.db"
    shared = tuning.SharedStudy(url=url, name="ns/run/uid", index=0, workers=2)
    study = trialpods._join(studies.open(url), problem, GRID, spaces(), shared)
    lost = trialpods.claim(study, 7, grid=True)  # a pod takes the first grid point, beats once and dies
    study._storage.record_heartbeat(lost._trial_id)

    search, _ = pods(problem, url, GRID)

    assert len(search.trials) == 7 and len({str(t.params) for t in search.trials}) == 7
    frozen = optuna.load_study(study_name="ns/run/uid", storage=url).trials
    assert frozen[lost.number].state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in frozen if t.system_attrs.get("failed_trial") == lost.number]
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.params == frozen[lost.number].system_attrs["fixed_params"]
    assert retry.number in [t.number for t in search.trials] and lost.number not in [t.number for t in search.trials]


def test_the_study_database_needs_a_url_and_hides_its_password():
    with pytest.raises(errors.InvalidSpec, match="is not a database URL"):
        studies.open("/state/journal.log")
    assert studies.normalized("postgresql://u:p@db:5432/s") == "postgresql+psycopg://u:p@db:5432/s"
    assert studies.redacted("postgresql://u:secret@db:5432/s") == "postgresql://u:***@db:5432/s"
