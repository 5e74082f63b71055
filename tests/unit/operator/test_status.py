"""Status bookkeeping: merge patches that make the stored status exactly the computed one."""

from mlkube.control.policy import conditions
from mlkube.control.reconcile import execute


def test_merge_patch_removes_what_is_gone_and_sets_what_changed():
    old = {"phase": "Running", "progress": {"trialsCompleted": 3, "stage": "tuning"}, "message": "x"}
    new = {"phase": "Succeeded", "progress": {"trialsCompleted": 8}}
    assert execute.merge_patch(old, new) == {
        "message": None,
        "phase": "Succeeded",
        "progress": {"trialsCompleted": 8, "stage": None},
    }
    assert execute.merge_patch(new, new) == {}


def test_transition_time_moves_only_when_status_changes():
    first = conditions.set_condition([], conditions.condition("Ready", False, "A"), now="t1")
    same = conditions.set_condition(first, conditions.condition("Ready", False, "B", "m"), now="t2")
    flipped = conditions.set_condition(same, conditions.condition("Ready", True, "C"), now="t3")
    assert [c["lastTransitionTime"] for c in (first[0], same[0], flipped[0])] == ["t1", "t1", "t3"]
    assert same[0]["reason"] == "B" and conditions.is_true(flipped, "Ready")
