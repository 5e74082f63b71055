"""The strategic merge patch engine: `k8s.io/apimachinery/pkg/util/strategicpatch` apply semantics.

Owns: merging a strategic merge patch into an object, given the object's type name in
`patch_types`. Maps merge key by key and `null` deletes a key. A list merges only when its
field has `patchStrategy: merge`: lists of maps by `patchMergeKey`, lists of scalars as sets.
Every other list is replaced. Directives: `$patch: replace|delete` (maps and list items),
`$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`, with
upstream's ordering rule (patch order first, then live order for server-only items).
Must not: copy its inputs (the caller passes copies it owns; both are consumed) or know
about HTTP. Errors are `MalformedPatch` (the document is wrong) or `UnmergeablePatch` (it
does not fit the object); `patch.strategic_merge_patch` maps them to 400 and 422.

Deliberate differences from upstream, which decodes the result into Go structs: values the
patch adds are cleaned of nulls and directives, as that decoding would drop them, and an
invalid `$setElementOrder` list answers 400 instead of 500.
"""

from __future__ import annotations

import json

from mlkube.local.apiserver import patch_types

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"


class MalformedPatch(ValueError):
    """The patch document is not a valid strategic merge patch."""


class UnmergeablePatch(ValueError):
    """The patch is well formed but cannot be merged into this object."""


def merge(original: dict, patch: dict, type_name: str | None) -> dict:
    """Merge `patch` into `original` (both consumed) for an object of type `type_name`."""
    return _merge_map(original, patch, type_name)


def _merge_map(original, patch: dict, type_name: str | None) -> dict:
    if DIRECTIVE in patch:
        return _map_directive(patch)
    if not isinstance(original, dict):
        original = {}
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, type_name)
    for key, value in patch.items():
        delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            key = _directive_field(key, DELETE_FROM_PRIMITIVE_LIST, "invalid patch format of primitive list")
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key)
        if key not in original or _shape(current) != _shape(value):
            if not delete_list:
                _set_cleaned(original, key, value)
            continue
        meta = patch_types.field(type_name, key)
        strategy = _strategy(meta)
        if isinstance(value, dict):
            original[key] = _clean(value)[0] if strategy == "replace" else _merge_map(current, value, meta.get("type"))
        elif isinstance(value, list):
            original[key] = _merge_list(current, value, key, meta, delete_list=delete_list)
        else:
            original[key] = value
    return original


def _map_directive(patch: dict) -> dict:
    directive = patch[DIRECTIVE]
    if directive == "replace":
        return _clean({key: value for key, value in patch.items() if key != DIRECTIVE})[0]
    if directive == "delete":
        return {}
    raise MalformedPatch(f"unknown patch type: {directive} in map: {_show(patch)}")


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """`$retainKeys`: drop every key of `original` not listed (used with `patchStrategy: retainKeys`)."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise MalformedPatch("invalid patch format of retainKeys")
    kept = {_identity(item) for item in retain}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if _identity(key) not in kept:
            raise MalformedPatch("invalid patch format of retainKeys")
    for key in [key for key in original if _identity(key) not in kept]:
        del original[key]


def _merge_ordered_lists(original: dict, patch: dict, type_name: str | None) -> None:
    """`$setElementOrder/<field>`: merge that list now and order it as the directive says."""
    for directive_key in [key for key in patch if key.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        name = _directive_field(directive_key, SET_ELEMENT_ORDER, "invalid patch format of setElementOrder list")
        if not isinstance(order, list):
            raise MalformedPatch("invalid patch format of setElementOrder list")
        live, patched = original.get(name), patch.get(name)
        if (live is not None and not isinstance(live, list)) or (patched is not None and not isinstance(patched, list)):
            raise UnmergeablePatch(f"{name}: $setElementOrder applies to lists only")
        meta = patch_types.field(type_name, name)
        merge_key = meta.get("patchMergeKey", "")
        _validate_order(patched, order, merge_key)
        if live is None and patched is None:
            continue
        live_order = live or []
        if patched is None:
            merged = live
        elif live is None:
            merged = _clean(patched)[0]
        else:
            merged, live_order = _merge_list_and_live_order(live, patched, name, meta, delete_list=False)
        patch.pop(name, None)
        if merged:
            in_patch, server_only = _partition(merged, order, merge_key)
            merged = _normalize_order(in_patch, server_only, order, live_order, merge_key)
        original[name] = merged


def _validate_order(patched, order: list, merge_key: str) -> None:
    """Upstream `validatePatchWithSetOrderList`: the patch list follows the directive's order."""
    if not order or not patched:
        return
    items = [item for item in patched if not (merge_key and _is_delete(item))]
    patch_index = order_index = 0
    while patch_index < len(items) and order_index < len(order):
        item = items[patch_index]
        if isinstance(item, dict) and DIRECTIVE in item:
            patch_index += 1
            continue
        if _merge_identity(item, merge_key) == _merge_identity(order[order_index], merge_key):
            patch_index += 1
        order_index += 1
    if patch_index < len(items):
        raise MalformedPatch(f"The order in patch list:\n{_show(patched)}\n doesn't match $setElementOrder list:\n{_show(order)}")


def _merge_list(live: list, patched: list, name: str, meta: dict, *, delete_list: bool) -> list:
    return _merge_list_and_live_order(live, patched, name, meta, delete_list=delete_list)[0]


def _merge_list_and_live_order(live: list, patched: list, name: str, meta: dict, *, delete_list: bool) -> tuple[list, list]:
    """The merged list, and the live order a `$setElementOrder` on it is then sorted by."""
    if _strategy(meta) != "merge" and not delete_list:
        return _clean(patched)[0], live
    if not live and not patched:
        return live, live
    element = _element_shape(live, patched)
    merge_key = meta.get("patchMergeKey", "")
    live_order = live
    if element != "map":
        if delete_list:
            deleted = {_identity(item) for item in patched}
            return [item for item in live if _identity(item) not in deleted], live
        merged = _deduplicate(live + patched)
        merge_key = ""
    else:
        if not merge_key:
            raise UnmergeablePatch(f"cannot merge lists without merge key for {name}")
        remaining, plain, doomed = _apply_list_directives(live, patched, merge_key)
        merged = _merge_by_key(list(remaining), plain, merge_key, meta.get("type"))
        live_order = _aliased_live_order(live, doomed, merged[len(remaining) :], merge_key)
        live, patched = remaining, plain
    in_patch, server_only = _partition(merged, patched, merge_key)
    return _normalize_order(in_patch, server_only, patched, live, merge_key), live_order


def _aliased_live_order(live: list, doomed: list, appended: list, merge_key: str) -> list:
    """The live list as upstream's Go code leaves it for `$setElementOrder` sorting: deleting
    an item shifts the slice's backing array in place, and appended items land in the freed
    slots, all of which the caller's view of the original length still sees. The resulting
    orders are upstream's observable behaviour (its own tests pin them), so they are kept."""
    order, length = list(live), len(live)
    for identity in doomed:
        index = 0
        while index < length:
            if _merge_identity(order[index], merge_key) == identity:
                order[index : length - 1] = order[index + 1 : length]
                length -= 1
            else:
                index += 1
    for item in appended[: len(order) - length]:
        order[length] = item
        length += 1
    return order


def _apply_list_directives(live: list, patched: list, merge_key: str) -> tuple[list, list, list]:
    """List items `{"$patch": "delete", key: v}` remove from `live`; `{"$patch": "replace"}`
    makes the rest of the patch list the whole list. Returns (live left, plain patch items,
    identities deleted)."""
    plain, replace, doomed = [], False, []
    for item in patched:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise UnmergeablePatch(f"map: {_show(item)} does not contain declared merge key: {merge_key}")
            doomed.append(_identity(item[merge_key]))
            live = [entry for entry in live if _identity(entry.get(merge_key)) != doomed[-1]]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise UnmergeablePatch("merging lists cannot yet be specified in the patch")
        else:
            raise MalformedPatch(f"unknown patch type: {directive} in map: {_show(item)}")
    if replace:
        return [_clean(item)[0] for item in plain], [], doomed
    return live, plain, doomed


def _merge_by_key(merged: list, patched: list, merge_key: str, item_type: str | None) -> list:
    positions = {_identity(item.get(merge_key)): index for index, item in enumerate(merged) if merge_key in item}
    for item in patched:
        if merge_key not in item:
            raise UnmergeablePatch(f"map: {_show(item)} does not contain declared merge key: {merge_key}")
        identity = _identity(item[merge_key])
        if identity in positions:
            merged[positions[identity]] = _merge_map(merged[positions[identity]], item, item_type)
        else:
            positions[identity] = len(merged)
            merged.append(_clean(item)[0])
    return merged


def _partition(merged: list, present_in: list, merge_key: str) -> tuple[list, list]:
    present = {_merge_identity(item, merge_key) for item in present_in}
    in_patch = [item for item in merged if _merge_identity(item, merge_key) in present]
    server_only = [item for item in merged if _merge_identity(item, merge_key) not in present]
    return in_patch, server_only


def _normalize_order(in_patch: list, server_only: list, patch_order: list, live_order: list, merge_key: str) -> list:
    """Upstream `normalizeElementOrder`: patch items in patch order, server-only items in live
    order, then interleave the two by their positions in the live list."""
    in_patch = _sorted_by(in_patch, patch_order, merge_key)
    server_only = _sorted_by(server_only, live_order, merge_key)
    live_index = _index_of(live_order, merge_key)
    result, left, right = [], 0, 0
    while left < len(server_only) or right < len(in_patch):
        if right >= len(in_patch):
            result.append(server_only[left])
            left += 1
            continue
        if left < len(server_only):
            left_at = live_index.get(_merge_identity(server_only[left], merge_key))
            right_at = live_index.get(_merge_identity(in_patch[right], merge_key))
            if left_at is not None and right_at is not None and left_at < right_at:
                result.append(server_only[left])
                left += 1
                continue
        result.append(in_patch[right])
        right += 1
    return result


def _sorted_by(items: list, order: list, merge_key: str) -> list:
    index = _index_of(order, merge_key)
    return sorted(items, key=lambda item: index.get(_merge_identity(item, merge_key), len(order)))


def _index_of(items: list, merge_key: str) -> dict:
    index: dict = {}
    for position, item in enumerate(items):
        index.setdefault(_merge_identity(item, merge_key), position)
    return index


# --- values -----------------------------------------------------------------------------


def _clean(value) -> tuple[object, bool]:
    """A value added by the patch, without nulls and directives; (value, keep)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        cleaned = {}
        for key, item in value.items():
            if item is None or key == RETAIN_KEYS or key.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
                continue
            item, keep = _clean(item)
            if keep:
                cleaned[key] = item
        return cleaned, True
    if isinstance(value, list):
        kept = (_clean(item) for item in value)
        return [item for item, keep in kept if keep], True
    return value, True


def _set_cleaned(target: dict, key: str, value) -> None:
    cleaned, keep = _clean(value)
    if keep:
        target[key] = cleaned
    else:
        target.pop(key, None)


def _strategy(meta: dict) -> str:
    """The field's patch strategy other than `retainKeys` ("merge", "replace" or "")."""
    strategies = [s for s in meta.get("patchStrategy", "").split(",") if s and s != "retainKeys"]
    return strategies[0] if strategies else ""


def _shape(value) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _element_shape(*lists: list) -> str:
    shapes = {_shape(item) for items in lists for item in items}
    if "list" in shapes:
        raise UnmergeablePatch("lists of lists are not supported")
    if len(shapes) > 1:
        raise UnmergeablePatch(f"list element types are not identical: {_show(list(lists))}")
    return shapes.pop()


def _deduplicate(items: list) -> list:
    seen, unique = set(), []
    for item in items:
        identity = _identity(item)
        if identity not in seen:
            seen.add(identity)
            unique.append(item)
    return unique


def _identity(value):
    """A hashable stand-in with JSON equality (True is not 1, 1 is 1.0)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True))
    return (type(value).__name__, value)


def _merge_identity(item, merge_key: str):
    if merge_key and isinstance(item, dict):
        return _identity(item.get(merge_key))
    return _identity(item)


def _is_delete(item) -> bool:
    return isinstance(item, dict) and item.get(DIRECTIVE) == "delete"


def _directive_field(key: str, prefix: str, message: str) -> str:
    name = key[len(prefix) :]
    if not name:
        raise MalformedPatch(message)
    return name


def _show(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."
