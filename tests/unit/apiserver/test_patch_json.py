"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), checked against the RFCs' own examples."""

import pytest

from mlkube.local.apiserver import patch

# RFC 7386 Appendix A. Each case is wrapped under "doc" because the API server's objects are maps.
RFC7386_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "merge", "expected"), RFC7386_CASES)
def test_merge_patch_rfc7386_examples(original, merge, expected):
    result = patch.merge_patch({"doc": original}, {"doc": merge})
    assert result == ({} if expected is None else {"doc": expected})


def test_merge_patch_null_removes_an_annotation_and_leaves_the_input_alone():
    live = {"metadata": {"annotations": {"x": "1", "y": "2"}}}
    result = patch.merge_patch(live, {"metadata": {"annotations": {"x": None}}})
    assert result == {"metadata": {"annotations": {"y": "2"}}}
    assert live == {"metadata": {"annotations": {"x": "1", "y": "2"}}}


def test_merge_patch_replaces_lists_and_does_not_share_them_with_the_patch():
    body = {"metadata": {"finalizers": ["b"]}}
    result = patch.merge_patch({"metadata": {"finalizers": ["a"]}}, body)
    result["metadata"]["finalizers"].append("c")
    assert body == {"metadata": {"finalizers": ["b"]}}


def test_merge_patch_of_a_non_object_is_a_bad_patch():
    with pytest.raises(patch.BadPatch, match="must be a JSON object"):
        patch.merge_patch({}, [{"op": "add"}])


RFC6902_DOC = {"foo": "bar"}

# RFC 6902 Appendix A examples that succeed: (document, operations, result).
RFC6902_SUCCESSES = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),  # A.1
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),  # A.2
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),  # A.3
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),  # A.4
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),  # A.5
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),  # A.6
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),  # A.7
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),  # A.8
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),  # A.10
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),  # A.11
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),  # A.14
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),  # A.16
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"n": 1}, [{"op": "test", "path": "/n", "value": 1.0}], {"n": 1}),
]


@pytest.mark.parametrize(("document", "operations", "expected"), RFC6902_SUCCESSES)
def test_json_patch_rfc6902_examples(document, operations, expected):
    assert patch.json_patch(document, operations) == expected


# Operations that are well formed but do not apply: 422 with a message naming op and path.
RFC6902_FAILURES = [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], r'0 \(test "/baz"\): test failed'),  # A.9
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], r'path "/baz" does not exist'),  # A.12
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "test failed"),  # A.15
    ({"a": True}, [{"op": "test", "path": "/a", "value": 1}], "test failed"),
    ({"a": 1}, [{"op": "remove", "path": "/b"}], r'1?0 \(remove "/b"\)'),
    ({"a": [1]}, [{"op": "replace", "path": "/a/1", "value": 2}], "out of range"),
    ({"a": [1]}, [{"op": "add", "path": "/a/01", "value": 2}], "not a valid array index"),
    ({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "own children"),
    ({"a": "s"}, [{"op": "add", "path": "/a/b", "value": 1}], "not an object or array"),
]


@pytest.mark.parametrize(("document", "operations", "message"), RFC6902_FAILURES)
def test_json_patch_failures_are_patch_errors(document, operations, message):
    with pytest.raises(patch.PatchError, match=message):
        patch.json_patch(document, operations)


@pytest.mark.parametrize(
    "operations",
    [
        {"op": "add"},
        [["add", "/a"]],
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/a~2", "value": 1}],
        [{"op": "add", "path": "/a"}],
        [{"op": "copy", "path": "/a"}],
    ],
)
def test_malformed_json_patches_are_bad_patches(operations):
    with pytest.raises(patch.BadPatch):
        patch.json_patch({"a": 1}, operations)


def test_json_patch_is_atomic_and_leaves_the_input_alone():
    live = {"metadata": {"resourceVersion": "106", "finalizers": ["x"]}}
    with pytest.raises(patch.PatchError):
        patch.json_patch(
            live,
            [
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "test", "path": "/metadata/resourceVersion", "value": "105"},
            ],
        )
    assert live == {"metadata": {"resourceVersion": "106", "finalizers": ["x"]}}


def test_kopf_finalizer_patch_with_resource_version_guard():
    live = {"metadata": {"name": "w1", "resourceVersion": "105"}}
    operations = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "105"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]},
    ]
    added = patch.json_patch(live, operations)
    assert added["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    removed = patch.json_patch(added, [{"op": "remove", "path": "/metadata/finalizers"}])
    assert removed == live


def test_operation_limit():
    operations = [{"op": "test", "path": "/a", "value": 1}] * patch.MAX_JSON_PATCH_OPERATIONS
    assert patch.json_patch({"a": 1}, operations) == {"a": 1}
    with pytest.raises(patch.BadPatch, match="maximum"):
        patch.json_patch({"a": 1}, operations + [{"op": "test", "path": "/a", "value": 1}])


def test_a_patch_that_replaces_the_object_with_a_scalar_is_rejected():
    with pytest.raises(patch.PatchError, match="a number"):
        patch.json_patch({"a": 1}, [{"op": "replace", "path": "", "value": 3}])
