"""The three client-side patch formats the API server accepts on PATCH: JSON merge patch
(RFC 7386), JSON patch (RFC 6902) and Kubernetes strategic merge patch.

Owns: applying a decoded patch document to a decoded object and the two error kinds the
core maps to HTTP statuses (`PatchError` → 422, `BadPatch` → 400).
Must not: decode request bodies, touch storage, resourceVersions, managedFields, status
stripping or schema validation; those belong to the core. Inputs are never mutated.
The strategic-merge engine lives in `patch_strategic`; this module is its public face.
"""

from __future__ import annotations

import json

from mlkube.local.apiserver import patch_strategic, patch_types

MAX_JSON_PATCH_OPERATIONS = 10000


class PatchError(Exception):
    """A well-formed patch that cannot be applied to this object (failed `test`, missing path)."""


class BadPatch(Exception):
    """A patch document that is malformed (wrong shape, unknown op, bad pointer, bad directive)."""


def copy_json(value):
    """A deep copy of a JSON-shaped value (dicts, lists, scalars); faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def json_equal(left, right) -> bool:
    """JSON equality: 1 == 1.0, but True != 1 and "1" != 1 (Python's == conflates bool and int)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(item, right[key]) for key, item in left.items())
        )
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right


# --- RFC 7386 ---------------------------------------------------------------------------


def merge_patch(obj: dict, patch: dict) -> dict:
    """RFC 7386: objects merge recursively, `null` deletes a key, everything else replaces."""
    if not isinstance(patch, dict):
        raise BadPatch(f"a merge patch must be a JSON object, not {_json_type(patch)}")
    return _merge(copy_json(obj), patch)


def _merge(target, patch):
    """Merge into `target`, which the caller owns; values taken from `patch` are copied."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --- RFC 6902 ---------------------------------------------------------------------------


def json_patch(obj: dict, ops: list) -> dict:
    """RFC 6902 with all six operations, applied in order and atomically (the input is untouched)."""
    if not isinstance(ops, list):
        raise BadPatch(f"a JSON patch must be a JSON array of operations, not {_json_type(ops)}")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise BadPatch(f"the allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    doc = copy_json(obj)
    for index, op in enumerate(ops):
        doc = _apply_operation(doc, op, index)
    if not isinstance(doc, dict):
        raise PatchError(f"the JSON patch turned the object into {_json_type(doc)}")
    return doc


def _apply_operation(doc, op, index: int):
    if not isinstance(op, dict):
        raise BadPatch(f"JSON patch operation {index} must be an object, not {_json_type(op)}")
    name = op.get("op")
    if name not in _OPERATIONS:
        raise BadPatch(f'JSON patch operation {index}: unsupported "op" {name!r}; use add, remove, replace, move, copy or test')
    path = _required_string(op, "path", index, name)
    tokens = _parse_pointer(path, index, name)
    where = f'JSON patch operation {index} ({name} "{path}")'
    if name in ("add", "replace", "test") and "value" not in op:
        raise BadPatch(f'{where}: missing "value"')
    if name in ("move", "copy"):
        source = _required_string(op, "from", index, name)
        source_tokens = _parse_pointer(source, index, name)
        where = f'JSON patch operation {index} ({name} from "{source}" to "{path}")'
        value = _get(doc, source_tokens, where)
        if name == "move":
            if tokens[: len(source_tokens)] == source_tokens and len(tokens) > len(source_tokens):
                raise PatchError(f"{where}: cannot move a value into one of its own children")
            doc = _remove(doc, source_tokens, where)
        return _add(doc, tokens, copy_json(value), where)
    if name == "add":
        return _add(doc, tokens, copy_json(op["value"]), where)
    if name == "remove":
        return _remove(doc, tokens, where)
    if name == "replace":
        _get(doc, tokens, where)
        if not tokens:
            return copy_json(op["value"])
        return _add(_remove(doc, tokens, where), tokens, copy_json(op["value"]), where)
    actual = _get(doc, tokens, where)
    if not json_equal(actual, op["value"]):
        raise PatchError(f"{where}: test failed: the value is {_short(actual)}, not {_short(op['value'])}")
    return doc


_OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def _required_string(op: dict, field: str, index: int, name: str) -> str:
    value = op.get(field)
    if not isinstance(value, str):
        raise BadPatch(f'JSON patch operation {index} ({name}): "{field}" must be a string JSON pointer')
    return value


def _parse_pointer(pointer: str, index: int, name: str) -> list[str]:
    """RFC 6901 reference tokens; "" is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise BadPatch(f'JSON patch operation {index} ({name}): pointer "{pointer}" must start with "/"')
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise BadPatch(
                f'JSON patch operation {index} ({name}): pointer "{pointer}" has an invalid escape; use ~0 for "~" and ~1 for "/"'
            )
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def _array_index(token: str, length: int, where: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{where}: {token!r} is not a valid array index")
    position = int(token)
    if position > length or (position == length and not allow_end):
        raise PatchError(f"{where}: array index {position} is out of range (length {length})")
    return position


def _get(doc, tokens: list[str], where: str):
    current = doc
    for depth, token in enumerate(tokens):
        if isinstance(current, dict):
            if token not in current:
                raise PatchError(f'{where}: path "{_pointer(tokens[: depth + 1])}" does not exist')
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(token, len(current), where, allow_end=False)]
        else:
            raise PatchError(f'{where}: "{_pointer(tokens[:depth])}" is {_json_type(current)}, not an object or array')
    return current


def _add(doc, tokens: list[str], value, where: str):
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1], where)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), where, allow_end=True), value)
    else:
        raise PatchError(f'{where}: parent "{_pointer(tokens[:-1])}" is {_json_type(parent)}, not an object or array')
    return doc


def _remove(doc, tokens: list[str], where: str):
    if not tokens:
        raise PatchError(f"{where}: cannot remove the whole document")
    parent = _get(doc, tokens[:-1], where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{where}: path "{_pointer(tokens)}" does not exist')
        del parent[last]
    elif isinstance(parent, list):
        del parent[_array_index(last, len(parent), where, allow_end=False)]
    else:
        raise PatchError(f'{where}: parent "{_pointer(tokens[:-1])}" is {_json_type(parent)}, not an object or array')
    return doc


def _pointer(tokens: list[str]) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


# --- strategic merge patch --------------------------------------------------------------


def supports_strategic(api_version: str, kind: str) -> bool:
    """True for the built-in kinds whose patch strategies this server knows."""
    return patch_types.root_type(api_version, kind) is not None


def strategic_merge_patch(obj: dict, patch: dict, *, api_version: str, kind: str) -> dict:
    """Kubernetes strategic merge patch for a built-in kind (see `patch_strategic`)."""
    type_name = patch_types.root_type(api_version, kind)
    if type_name is None:
        raise BadPatch(f"strategic merge patch is not supported for {api_version}, Kind={kind}")
    if not isinstance(patch, dict):
        raise BadPatch(f"a strategic merge patch must be a JSON object, not {_json_type(patch)}")
    try:
        return patch_strategic.merge(copy_json(obj), copy_json(patch), type_name)
    except patch_strategic.MalformedPatch as error:
        raise BadPatch(str(error)) from error
    except patch_strategic.UnmergeablePatch as error:
        raise PatchError(str(error)) from error


# --- messages ---------------------------------------------------------------------------


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
