"""The MLProject plan: pure (same input, same Plan) and complete (registry, champion, scheduled
run, history and Events, all as data). No cluster, no clock."""

import copy
import datetime

import pytest

from mlkube.control.plans import plan as plans
from mlkube.control.plans import project as project_plan

NOW = datetime.datetime(2026, 11, 24, 10, 0, 30, tzinfo=datetime.UTC)
STAMP = "2026-11-24T10:00:30Z"


def mlp(*, status=None, annotations=None, **spec):
    body = {
        "goal": {"description": "keep customers", "type": "Growth"},
        "problem": {"task": "classification", "target": "churned", "primaryMetric": "f1"},
        "data": {"uri": "file:///d.csv"},
        "storage": {"uri": "file:///s"},
        "training": {"template": {"tuning": {"maxTrials": 3}}},
        **spec,
    }
    obj = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {
            "name": "churn",
            "namespace": "ml",
            "uid": "u-1",
            "generation": 2,
            "creationTimestamp": "2026-11-24T09:00:00Z",
            "annotations": annotations or {},
        },
        "spec": body,
    }
    if status is not None:
        obj["status"] = status
    return obj


def run(
    name,
    *,
    f1=None,
    phase="Succeeded",
    completed="2026-11-24T09:30:00Z",
    trigger="manual",
    eligible=True,
    created="2026-11-24T09:10:00Z",
    version=None,
):
    status = {"phase": phase, "completionTime": completed}
    if phase == "Succeeded" and f1 is not None:
        status.update(
            bestAlgorithm="random_forest",
            metrics={"test": {"f1": f1}},
            successCriteriaMet=eligible,
            artifactUri=f"file:///s/runs/{name}/",
            digest=f"sha256:{name}",
        )
    if version is not None:
        status["modelVersion"] = version
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": created},
        "spec": {"projectRef": "churn", "trigger": trigger},
        "status": status,
    }


def observed(*runs, versions=()):
    return project_plan.Observed(runs=tuple(runs), versions=tuple(versions))


def registered(seen, result):
    """``seen`` once the plan's ModelVersions exist, as the API server lists them."""
    created = [{**mv, "metadata": {**mv["metadata"], "creationTimestamp": STAMP}} for mv in result.create_after_status]
    return project_plan.Observed(runs=seen.runs, versions=(*seen.versions, *created))


def stored(obj, result):
    """``obj`` as the API server returns it once the plan's status is written."""
    return {**obj, "status": result.status.wire()}


def ready(status):
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_same_input_same_plan_and_the_input_is_left_as_it_was():
    obj = mlp(retraining={"schedule": "* * * * *"})
    seen = observed(run("a", f1=0.7), run("b", phase="Failed"))
    before = copy.deepcopy((obj, seen))
    assert project_plan.plan(obj, seen, now=NOW) == project_plan.plan(obj, seen, now=NOW)
    assert (obj, seen) == before


def test_a_new_project_is_ready_without_models():
    result = project_plan.plan(mlp(), observed(), now=NOW)
    status = result.status.wire()
    assert status["phase"] == "Ready" and status["models"] == [] and status["versions"] == 0
    assert "championVersion" not in status and "message" not in status and status["observedGeneration"] == 2
    assert ready(status) == {
        "type": "Ready",
        "status": "True",
        "reason": "ProjectReady",
        "message": "No model trained yet",
        "observedGeneration": 2,
        "lastTransitionTime": STAMP,
    }
    assert result == plans.Plan(status=result.status)


def test_finished_runs_are_registered_in_completion_order_and_the_better_one_becomes_champion():
    obj = mlp()
    seen = observed(run("b", f1=0.9, completed="2026-11-24T09:40:00Z"), run("a", f1=0.7), run("running", phase="Running"))
    result = project_plan.plan(obj, seen, now=NOW)
    status = result.status.wire()
    assert [(m["version"], m["trainingJob"], m["createdAt"]) for m in status["models"]] == [(1, "a", STAMP), (2, "b", STAMP)]
    assert status["championVersion"] == 2 and status["versions"] == 2
    assert ready(status)["message"] == "2 version(s); champion 2"
    assert result.events == (
        plans.info("VersionRegistered", "Version 1 from TrainingJob a (eligible)"),
        plans.info("VersionRegistered", "Version 2 from TrainingJob b (eligible)"),
        plans.info("ChampionChanged", "Version 2 is the champion (was None)"),
    )
    # Each version is a ModelVersion owned by the project, its registered facts in the spec.
    assert [(mv["metadata"]["name"], mv["spec"]["version"], mv["spec"]["trainingJob"]) for mv in result.create_after_status] == [
        ("churn-v1", 1, "a"),
        ("churn-v2", 2, "b"),
    ]
    v2 = result.create_after_status[1]
    assert v2["metadata"]["labels"]["mlkube.io/project"] == "churn"
    assert v2["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert v2["spec"]["digest"] == "sha256:b" and v2["spec"]["metrics"]["test"] == {"f1": 0.9}
    assert v2["spec"]["approval"] == {"state": "Pending", "reason": ""}

    # The next pass sees what was written: the same status, nothing to do, nothing to say.
    seen = registered(seen, result)
    again = project_plan.plan(stored(obj, result), seen, now=NOW + datetime.timedelta(minutes=1))
    assert again == plans.Plan(status=result.status)

    # An ineligible run is registered but does not take over.
    third = project_plan.plan(
        stored(obj, result),
        observed(*seen.runs, run("c", f1=0.99, eligible=False, completed="2026-11-24T09:50:00Z"), versions=seen.versions),
        now=NOW,
    )
    assert third.events == (
        plans.info("VersionRegistered", "Version 3 from TrainingJob c (not eligible: success criteria not met)"),
    )
    assert third.status.champion_version == 2


def test_the_manual_champion_follows_the_annotation_and_an_invalid_one_is_reported():
    runs = observed(run("a", f1=0.7), run("b", f1=0.9, completed="2026-11-24T09:40:00Z"))
    manual = {"promotion": {"policy": "manual"}}
    first = project_plan.plan(mlp(**manual), runs, now=NOW)
    assert first.status.champion_version is None and ready(first.status.wire())["message"] == "2 version(s); champion None"
    chosen = project_plan.plan(mlp(status=first.status.wire(), annotations={"mlkube.io/champion": "1"}, **manual), runs, now=NOW)
    assert chosen.status.champion_version == 1
    assert chosen.events == (plans.info("ChampionChanged", "Version 1 is the champion (was None)"),)

    wrong = project_plan.plan(mlp(status=chosen.status.wire(), annotations={"mlkube.io/champion": "9"}, **manual), runs, now=NOW)
    status = wrong.status.wire()
    assert status["championVersion"] == 1 and wrong.events == ()
    assert status["message"] == "annotation mlkube.io/champion=9: no such version in the registry"
    assert ready(status)["status"] == "False" and ready(status)["reason"] == "ChampionAnnotationInvalid"


def test_a_due_tick_creates_its_run_once_and_records_the_tick():
    obj = mlp(retraining={"schedule": "* * * * *"})
    result = project_plan.plan(obj, observed(), now=NOW)
    assert result.create == (
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": "churn-sched-202611241000",
                "namespace": "ml",
                "labels": {
                    "app.kubernetes.io/managed-by": "mlkube",
                    "mlkube.io/project": "churn",
                    "mlkube.io/trigger": "schedule",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "mlkube.io/v1alpha1",
                        "kind": "MLProject",
                        "name": "churn",
                        "uid": "u-1",
                        "controller": False,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"tuning": {"maxTrials": 3}, "projectRef": "churn", "trigger": "schedule"},
        },
    )
    assert result.events == (plans.info("RetrainingStarted", "Started TrainingJob churn-sched-202611241000 (schedule)"),)
    assert result.status.last_schedule_time == "2026-11-24T10:00:00Z"
    assert result.status.next_scheduled_retrain == "2026-11-24T10:01:00Z"

    # Once the tick is written, later passes in the same minute start nothing.
    later = project_plan.plan(stored(obj, result), observed(), now=NOW + datetime.timedelta(seconds=20))
    assert later.create == () and later.events == ()
    # The run, once listed, is recorded for the retraining budget.
    listed = run("churn-sched-202611241000", phase="Running", trigger="schedule", created="2026-11-24T10:00:31Z")
    recorded = project_plan.plan(stored(obj, result), observed(listed), now=NOW + datetime.timedelta(seconds=20))
    assert recorded.status.retrain_times == ["2026-11-24T10:00:31Z"]
    assert recorded.status.last_retrain_time == "2026-11-24T10:00:31Z"


def test_no_tick_before_the_project_existed_and_none_without_a_schedule():
    young = mlp(retraining={"schedule": "0 3 * * *"})
    result = project_plan.plan(young, observed(), now=NOW)
    assert result.create == () and result.status.last_schedule_time is None
    assert result.status.next_scheduled_retrain == "2026-11-25T03:00:00Z"
    assert project_plan.plan(mlp(), observed(), now=NOW).create == ()


def test_runs_beyond_the_history_limits_are_deleted_oldest_first_once_their_version_is_stored():
    limits = {"training": {"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}}
    runs = [
        run("f1", phase="Failed", completed="2026-11-24T09:01:00Z"),
        run("f2", phase="Failed", completed="2026-11-24T09:02:00Z"),
        run("s1", f1=0.7, completed="2026-11-24T09:03:00Z"),
        run("s2", f1=0.8, completed="2026-11-24T09:04:00Z"),
    ]
    first = project_plan.plan(mlp(**limits), observed(*runs), now=NOW)
    # The failed runs go at once; s1 stays until its version is in the stored registry.
    assert first.delete == (plans.ObjectRef("mlkube.io/v1alpha1", "TrainingJob", "f1", "ml"),)
    second = project_plan.plan(mlp(status=first.status.wire(), **limits), observed(*runs[1:]), now=NOW)
    assert second.delete == (plans.ObjectRef("mlkube.io/v1alpha1", "TrainingJob", "s1", "ml"),)
    # Its version stays in the registry when it is gone.
    third = project_plan.plan(mlp(status=second.status.wire(), **limits), observed(*runs[1:2], runs[3]), now=NOW)
    assert third.delete == () and [m.training_job for m in third.status.models] == ["s1", "s2"]


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"problem": None},
            "MLProject 'churn' is invalid: spec.problem: Input should be a valid dictionary or instance of Problem",
        ),
        (
            {"retraining": {"cooldown": "0s"}},
            "MLProject 'churn' is invalid: spec.retraining.cooldown: String should match pattern",
        ),
    ],
)
def test_an_invalid_spec_fails_with_what_to_fix(spec, message):
    result = project_plan.plan(mlp(**spec), observed(run("a", f1=0.7)), now=NOW)
    status = result.status.wire()
    assert status["phase"] == "Failed" and status["message"].startswith(message)
    assert ready(status)["reason"] == "InvalidSpec" and ready(status)["status"] == "False"
    assert result.create == result.delete == result.events == ()
