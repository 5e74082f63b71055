"""Upstream's own strategic merge patch cases (k8s.io/apimachinery strategicpatch/patch_test.go:
customStrategicMergePatchTestCaseData, customStrategicMergePatchRawTestCases,
createStrategicMergePatchTestCaseData and strategicMergePatchRawTestCases), applied through
the same engine with upstream's `MergeItem` test type registered as a kind."""

import pytest
import yaml

from mlkube.local.apiserver import patch, patch_types

MERGE_ITEM = "test.MergeItem"
MERGE_ITEM_TYPES = {
    MERGE_ITEM: {
        "mergingList": {"type": MERGE_ITEM, "patchStrategy": "merge", "patchMergeKey": "name"},
        "nonMergingList": {"type": MERGE_ITEM},
        "mergingIntList": {"patchStrategy": "merge"},
        "mergeItemPtr": {"type": MERGE_ITEM, "patchStrategy": "merge", "patchMergeKey": "name"},
        "replacingItem": {"patchStrategy": "replace"},
        "retainKeysMap": {"type": "test.RetainKeysMergeItem", "patchStrategy": "retainKeys"},
        "retainKeysMergingList": {"type": MERGE_ITEM, "patchStrategy": "merge,retainKeys", "patchMergeKey": "name"},
    },
    "test.RetainKeysMergeItem": {
        "mergingIntList": {"patchStrategy": "merge"},
        "mergingList": {"type": MERGE_ITEM, "patchStrategy": "merge", "patchMergeKey": "name"},
        "nonMergingList": {"type": MERGE_ITEM},
    },
}

# (description, object, patch, expected result). Two-way cases apply `twoWay` to `original`;
# three-way cases apply `threeWay` to `current`.
CASES = yaml.safe_load("""
- [unique scalars when merging lists, {mergingIntList: [1, 2]}, {mergingIntList: [2, 3]}, {mergingIntList: [1, 2, 3]}]
- [delete map from nested map, {simpleMap: {key1: 1, key2: 1}}, {simpleMap: {$patch: delete}}, {simpleMap: {}}]
- [delete all items from merging list, {mergingList: [{name: 1}, {name: 2}]}, {mergingList: [{$patch: replace}]},
   {mergingList: []}]
- [merge empty merging lists, {mergingList: []}, {mergingList: []}, {mergingList: []}]
- [delete all keys from map, {name: 1, value: 1}, {$patch: replace}, {}]
- [add key and delete all keys from map, {name: 1, value: 1}, {other: a, $patch: replace}, {other: a}]
- [delete all duplicate entries in a merging list,
   {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]},
   {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}, {mergingList: [{name: 2, value: a}]}]
- [retainKeys map can add a field when no retainKeys directive present, {retainKeysMap: {name: foo}},
   {retainKeysMap: {value: bar}}, {retainKeysMap: {name: foo, value: bar}}]
- [retainKeys map can change a field when no retainKeys directive present, {retainKeysMap: {name: foo, value: a}},
   {retainKeysMap: {value: b}}, {retainKeysMap: {name: foo, value: b}}]
- [retainKeys map can delete a field when no retainKeys directive present, {retainKeysMap: {name: foo, value: a}},
   {retainKeysMap: {value: null}}, {retainKeysMap: {name: foo}}]
- [retainKeys map merge an empty map, {retainKeysMap: {name: foo, value: a}}, {retainKeysMap: {}},
   {retainKeysMap: {name: foo, value: a}}]
- [retainKeys list can add a field when no retainKeys directive present,
   {retainKeysMergingList: [{name: bar}, {name: foo}]}, {retainKeysMergingList: [{name: foo, value: a}]},
   {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}]
- [retainKeys list can delete a field when no retainKeys directive present,
   {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}, {retainKeysMergingList: [{name: foo, value: null}]},
   {retainKeysMergingList: [{name: bar}, {name: foo}]}]
- [preserve the order from the patch in a merging list,
   {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]},
   {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]},
   {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]}]
- [preserve the order from the patch in a merging list 2,
   {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]},
   {mergingList: [{name: 3, value: c}, {name: 1, value: a}]},
   {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}]
- [preserve the order from the patch in a merging int list, {mergingIntList: [1, 2, 3]}, {mergingIntList: [3, 1, 2]},
   {mergingIntList: [3, 1, 2]}]
- [preserve the order from the patch in a merging int list 2, {mergingIntList: [1, 2, 3]}, {mergingIntList: [3, 1]},
   {mergingIntList: [2, 3, 1]}]
- [$setElementOrder contains item that is not present in the list to be merged, {mergingList: [{name: 1}, {name: 3}]},
   {$setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}],
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]},
   {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}]
- [$setElementOrder contains item that is not present in the int list to be merged, {mergingIntList: [1, 3]},
   {$setElementOrder/mergingIntList: [3, 2, 1]}, {mergingIntList: [3, 1]}]
- [$deleteFromPrimitiveList of nonexistent item in primitive list, {mergingIntList: [1, 2]},
   {$deleteFromPrimitiveList/mergingIntList: [3]}, {mergingIntList: [1, 2]}]
- [$deleteFromPrimitiveList on empty primitive list, {mergingIntList: null},
   {$deleteFromPrimitiveList/mergingIntList: [3]}, {mergingIntList: null}]
- [$deleteFromPrimitiveList on nonexistent primitive list, {foo: [bar]}, {$deleteFromPrimitiveList/mergingIntList: [3]},
   {foo: [bar]}]
- [$deleteFromPrimitiveList from a list with merge patch strategy, {mergingIntList: [1, 2, 3]},
   {$deleteFromPrimitiveList/mergingIntList: [2]}, {mergingIntList: [1, 3]}]
- [$deleteFromPrimitiveList from a list without merge patch strategy, {nonMergingIntList: [1, 2, 3]},
   {$deleteFromPrimitiveList/nonMergingIntList: [2]}, {nonMergingIntList: [1, 3]}]
- [nil original (three-way), {name: 1, other: a}, {value: 1}, {name: 1, value: 1, other: a}]
- [add field and delete field from map (three-way), {name: 1, other: a}, {name: null, value: 1}, {value: 1, other: a}]
- [delete field from nested map with conflict (three-way), {simpleMap: {key1: a, key2: 1, other: a}},
   {simpleMap: {key1: 1, key2: null}}, {simpleMap: {key1: 1, other: a}}]
- [replace list of scalars with conflict (three-way), {nonMergingIntList: [1, 4]}, {nonMergingIntList: [2, 3]},
   {nonMergingIntList: [2, 3]}]
- [delete all maps from merging list with conflict (three-way),
   {mergingList: [{name: 1, other: a}, {name: 2, other: b}]},
   {mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]}, {mergingList: []}]
- [delete all maps from empty merging list (three-way), {mergingList: []},
   {mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]}, {mergingList: []}]
- [defined null values should propagate overwrite current fields, {name: a, other: a},
   {name: 1, value: 1, other: null}, {name: 1, value: 1}]
- [nested patch merge with empty list (three-way), {name: hi, mergingList: [{name: hello2}]},
   {$setElementOrder/mergingList: [{name: hello}, {name: doesntexist}],
    mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]},
   {name: hi, mergingList: [{name: hello}, {name: hello2}]}]
- [nested patch merge with empty list (two-way), {name: hi}, {mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]},
   {name: hi, mergingList: [{name: hello}]}]
- [delete items in lists of scalars (three-way), {mergingIntList: [1, 2, 3, 4]},
   {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}, {mergingIntList: [1, 2, 4]}]
- [delete all duplicate items in lists of scalars (three-way), {mergingIntList: [1, 2, 3, 3, 4]},
   {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}, {mergingIntList: [1, 2, 4]}]
- [add and delete items in lists of scalars (two-way), {mergingIntList: [1, 2, 3]},
   {$setElementOrder/mergingIntList: [1, 2, 4], $deleteFromPrimitiveList/mergingIntList: [3], mergingIntList: [4]},
   {mergingIntList: [1, 2, 4]}]
- [merge lists of maps (three-way), {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}],
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]},
   {mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}]
- [add field to map in merging list with conflict (three-way),
   {mergingList: [{name: 1, other: a}, {name: 3, value: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]},
   {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2}, {name: 3, value: 2, other: b}]}]
- [add duplicate field to map in merging list with conflict (three-way),
   {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 3, other: b}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 2, value: 2}]},
   {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2, other: b}]}]
- [replace map field value in merging list with conflict (three-way),
   {mergingList: [{name: 1, value: 3, other: a}, {name: 2, value: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, value: a}]},
   {mergingList: [{name: 1, value: a, other: a}, {name: 2, value: 2, other: b}]}]
- [delete map from merging list with conflict (three-way), {mergingList: [{name: 1, other: a}, {name: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 2}], mergingList: [{name: 1, $patch: delete}]},
   {mergingList: [{name: 2, other: b}]}]
- [delete missing map from merging list with conflict (three-way), {mergingList: [{name: 3, other: a}]},
   {$setElementOrder/mergingList: [{name: 2}], mergingList: [{name: 2}, {name: 1, $patch: delete}]},
   {mergingList: [{name: 2}, {name: 3, other: a}]}]
- [add map and delete map from merging list (three-way),
   {mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]},
   {$setElementOrder/mergingList: [{name: 2}, {name: 3}], mergingList: [{name: 3}, {name: 1, $patch: delete}]},
   {mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}]
- [add map and delete map from merging list with conflict (three-way),
   {mergingList: [{name: 1, other: a}, {name: 4, other: c}]},
   {$setElementOrder/mergingList: [{name: 2}, {name: 3}],
    mergingList: [{name: 2}, {name: 3}, {name: 1, $patch: delete}]},
   {mergingList: [{name: 4, other: c}, {name: 2}, {name: 3}]}]
- [delete missing field from map in merging list with conflict (three-way),
   {mergingList: [{name: 1, other: a}, {name: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, value: null}, {name: 2, value: 2}]},
   {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}]
- [replace non merging list nested in merging list with value conflict (three-way),
   {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: c}]}, {name: 2, other: b}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]},
   {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2, other: b}]}]
- [retainKeys map adds and deletes items in a nested merging int list (three-way),
   {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3, 4]}},
   {retainKeysMap: {$retainKeys: [mergingIntList, name], mergingIntList: [5],
                    $deleteFromPrimitiveList/mergingIntList: [2], $setElementOrder/mergingIntList: [1, 3, 5]}},
   {retainKeysMap: {name: foo, mergingIntList: [1, 3, 5, 4]}}]
- [retainKeys map deletes nested merging int list (three-way), {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3]}},
   {retainKeysMap: {$retainKeys: [name], mergingIntList: null}}, {retainKeysMap: {name: foo}}]
- [retainKeys map nested merging list with no change (three-way),
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: c}]}},
   {retainKeysMap: {$retainKeys: [mergingList, name, value], $setElementOrder/mergingList: [{name: a}, {name: b}],
                    value: bar}},
   {retainKeysMap: {name: foo, value: bar, mergingList: [{name: a}, {name: b}, {name: c}]}}]
- [retainKeys map adds an item in nested merging list (three-way),
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: x}]}},
   {retainKeysMap: {$retainKeys: [mergingList, name], $setElementOrder/mergingList: [{name: a}, {name: b}, {name: c}],
                    mergingList: [{name: c}]}},
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: c}, {name: x}]}}]
- [retainKeys map changes an item in nested merging list (three-way),
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b, value: foo}, {name: x}]}},
   {retainKeysMap: {$retainKeys: [mergingList, name], $setElementOrder/mergingList: [{name: a}, {name: b}],
                    mergingList: [{name: b, value: bar}]}},
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b, value: bar}, {name: x}]}}]
- [retainKeys map deletes nested merging list (three-way), {retainKeysMap: {name: foo, mergingList: [{name: a}]}},
   {retainKeysMap: {$retainKeys: [name, value], value: bar, mergingList: null}}, {retainKeysMap: {name: foo, value: bar}}]
- [retainKeys map deletes an item in nested merging list (three-way),
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: x}]}},
   {retainKeysMap: {$retainKeys: [mergingList, name], $setElementOrder/mergingList: [{name: a}],
                    mergingList: [{name: b, $patch: delete}]}},
   {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: x}]}}]
- [retainKeys list of maps clears a field (three-way),
   {retainKeysMergingList: [{name: bar}, {name: foo, value: a, other: x}]},
   {$setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}],
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo}]},
   {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}]
- [retainKeys list of maps changes a field and clears a field with conflict (three-way),
   {retainKeysMergingList: [{name: bar}, {name: foo, value: modified, other: x}]},
   {$setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}],
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo, value: new}]},
   {retainKeysMergingList: [{name: bar}, {name: foo, value: new}]}]
- [retainKeys list of maps deletes a field and clears a field (three-way),
   {retainKeysMergingList: [{name: bar}, {name: foo, value: a, other: x}]},
   {$setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}],
    retainKeysMergingList: [{$retainKeys: [name], name: foo, value: null}]},
   {retainKeysMergingList: [{name: bar}, {name: foo}]}]
- [delete and reorder in one list and reorder in another (three-way),
   {mergingList: [{name: a, value: a}, {name: b, value: b}], mergeItemPtr: [{name: c, value: c}, {name: d, value: d}]},
   {$setElementOrder/mergingList: [{name: b}], $setElementOrder/mergeItemPtr: [{name: d}, {name: c}],
    mergingList: [{$patch: delete, name: a}]},
   {mergingList: [{name: b, value: b}], mergeItemPtr: [{name: d, value: d}, {name: c, value: c}]}]
""")

ERRORS = yaml.safe_load("""
- [should check if order in $setElementOrder and patch list match, {mergingList: [{name: 1}, {name: 3}, {name: 2}]},
   {$setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}],
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}, "doesn't match"]
- [should check if order in $setElementOrder and int patch list match, {mergingIntList: [1, 3, 2]},
   {$setElementOrder/mergingIntList: [1, 2, 3], mergingIntList: [3, 1]}, "doesn't match"]
- [missing merge key should error out, {mergingList: [{name: 1, value: a}]}, {mergingList: [{value: b}]},
   does not contain declared merge key]
""")


@pytest.fixture(autouse=True)
def merge_item_kind(monkeypatch):
    for name, fields in MERGE_ITEM_TYPES.items():
        monkeypatch.setitem(patch_types.TYPES, name, fields)
    monkeypatch.setitem(patch_types.ROOT_TYPES, ("test/v1", "MergeItem"), MERGE_ITEM)


@pytest.mark.parametrize(("description", "obj", "body", "expected"), CASES, ids=[case[0] for case in CASES])
def test_upstream_case(description, obj, body, expected):
    assert patch.strategic_merge_patch(obj, body, api_version="test/v1", kind="MergeItem") == expected


@pytest.mark.parametrize(("description", "obj", "body", "message"), ERRORS, ids=[case[0] for case in ERRORS])
def test_upstream_error_case(description, obj, body, message):
    with pytest.raises((patch.BadPatch, patch.PatchError), match=message):
        patch.strategic_merge_patch(obj, body, api_version="test/v1", kind="MergeItem")
