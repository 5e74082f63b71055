"""Merge patches between statuses, label selectors and conditions."""

from mlkube.local.runtime import objects


def test_merge_patch_nulls_removed_keys_and_replaces_lists():
    old = {"phase": "Running", "reason": "x", "nested": {"a": 1, "b": 2}, "list": [1, 2]}
    new = {"phase": "Failed", "nested": {"a": 1}, "list": [1]}
    assert objects.merge_patch(old, new) == {"phase": "Failed", "reason": None, "nested": {"b": None}, "list": [1]}
    assert objects.merge_patch(new, new) is None


def test_selectors():
    labels = {"app": "a", "tier": "t"}
    assert objects.matches({"app": "a"}, labels)
    assert objects.matches(
        {
            "matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["t"]}, {"key": "x", "operator": "DoesNotExist"}],
        },
        labels,
    )
    assert not objects.matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["t"]}]}, labels)
    assert not objects.matches({}, labels) and not objects.matches(None, labels)


def test_condition_keeps_its_transition_time_while_unchanged():
    first = objects.condition("Ready", True, "R", at="2026-01-01T00:00:00Z")
    again = objects.condition("Ready", True, "R", previous=[first], at="2026-01-02T00:00:00Z")
    flipped = objects.condition("Ready", False, "R", previous=[first], at="2026-01-02T00:00:00Z")
    assert again["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_template_hash_is_stable_and_sensitive():
    a = {"spec": {"containers": [{"image": "a"}]}}
    assert objects.template_hash(a) == objects.template_hash({"spec": {"containers": [{"image": "a"}]}})
    assert objects.template_hash(a) != objects.template_hash({"spec": {"containers": [{"image": "b"}]}})
