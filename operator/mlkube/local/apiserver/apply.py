"""Server-side apply and `metadata.managedFields`, as kube-apiserver's fieldmanager does them.

Owns: per-manager field ownership (one entry per manager + operation + subresource, and
apiVersion for `Update`), applying a configuration (merge, removal of fields the applier
dropped and nobody else owns, conflicts with other managers, `force`), recording the
fields a non-apply write changed, and the managedFields entries (FieldsV1, upstream's
order). Must not: strip status or other fields a subresource may not write, bump
resourceVersions, validate, or decide between 200 and 201; the core does. The typed walks
live in `apply_fields`.
"""

from __future__ import annotations

import dataclasses
import json

from mlkube.local.apiserver import apply_fields, patch

InvalidObject = apply_fields.InvalidObject

MAX_UPDATE_MANAGERS = 10  # upstream DefaultMaxUpdateManagers; older Update entries merge into:
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"  # owns what an object had before its first apply

# Paths kube-apiserver never records as owned (upstream fieldmanager `stripmeta.go`).
_UNOWNED = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {
        ("f:metadata", "f:" + name)
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    }
)


@dataclasses.dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    decoded: set | None = None  # the owned paths, decoded from `fields_v1` only when needed
    fields_v1: dict | None = None  # FieldsV1 as read, reused while the owned paths are unchanged

    @property
    def fields(self) -> set:
        if self.decoded is None:
            try:
                self.decoded = apply_fields.decode_fields(self.fields_v1)
            except apply_fields.InvalidObject:
                self.decoded = set()  # upstream drops managedFields it cannot decode
        return self.decoded

    @fields.setter
    def fields(self, paths: set) -> None:
        self.decoded, self.fields_v1 = paths, None

    def owns(self, path: tuple[str, ...]) -> bool:
        if self.decoded is None:
            return apply_fields.fields_contain(self.fields_v1, path)
        return path in self.decoded

    def is_empty(self) -> bool:
        return not self.fields_v1 if self.decoded is None else not self.decoded

    def lose(self, paths: set) -> None:
        lost = {path for path in paths if self.owns(path)}
        if lost:
            self.fields = self.fields - lost

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # Upstream `BuildManagerIdentifier`: appliers keep one entry whatever the apiVersion.
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def label(self, fallback_api_version: str) -> str:
        """Upstream `printManager`: `"x"`, `"x" with subresource "status"`, `... using v1`."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version or fallback_api_version}"
        return text

    def sort_key(self):
        # Upstream `sortEncodedManagedFields`.
        return (self.operation, self.time, self.manager, self.api_version, self.subresource)

    def encode(self) -> dict:
        if self.fields_v1 is not None:
            fields_v1 = json.loads(json.dumps(self.fields_v1))  # an unshared copy, at C speed
        else:
            fields_v1 = apply_fields.encode_fields(self.decoded)
        entry = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1,
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


class Conflict(Exception):
    """An apply would change fields other managers own; `force` would take them over."""

    def __init__(self, found: list[tuple[_Entry, tuple[str, ...]]]):
        # Upstream groups conflicts by the sorted manager identifier, paths in path order.
        found = sorted(found, key=lambda pair: (pair[0].identity, apply_fields.path_sort_key(pair[1])))
        self._found = [(entry, apply_fields.path_string(path)) for entry, path in found]
        self.conflicts: list[tuple[str, str]] = [(entry.manager, path) for entry, path in self._found]
        super().__init__(self.message(""))

    def message(self, api_version: str = "") -> str:
        """Upstream wording. `api_version` is used only for a manager recorded without one."""
        if len(self._found) == 1:
            entry, path = self._found[0]
            return f"Apply failed with 1 conflict: conflict with {entry.label(api_version)}: {path}"
        lines, current = [], None
        for entry, path in self._found:
            if entry.identity != current:
                current = entry.identity
                lines.append(f"conflicts with {entry.label(api_version)}:")
            lines.append(f"- {path}")
        return f"Apply failed with {len(self._found)} conflicts: " + "\n".join(lines)

    def causes(self, api_version: str = "") -> list[dict]:
        """Status.details.causes entries (reason FieldManagerConflict, field = the path)."""
        return [
            {"reason": "FieldManagerConflict", "message": f"conflict with {entry.label(api_version)}", "field": path}
            for entry, path in self._found
        ]


def apply(
    live: dict | None,
    config: dict,
    *,
    manager: str,
    api_version: str,
    force: bool,
    now: str,
    schema: dict | None = None,
    subresource: str = "",
    reset_fields: tuple[str, ...] = (),
) -> dict:
    """The object after `manager` applies `config` to `live` (None: create), managedFields included.

    `reset_fields` are the top-level fields this endpoint does not write (upstream strategies'
    `GetResetFields`: `("status",)` on the main endpoint of a kind with a status subresource,
    `("spec",)` on /status); they are neither owned nor checked for conflicts, and the core
    restores them. Raises `Conflict` when the apply changes a value another manager owns and
    `force` is false, and `InvalidObject` when `config` cannot be typed (e.g. a list item
    without keys).
    """
    reset = _reset(reset_fields)
    if not isinstance(config, dict):
        raise InvalidObject("an applied configuration must be an object")
    if (config.get("metadata") or {}).get("managedFields") is not None:
        raise InvalidObject("metadata.managedFields must be nil in an applied configuration")
    live = live or {}
    node = apply_fields.root_node(config.get("apiVersion", ""), config.get("kind", ""), schema)
    entries = _decode_entries(live)
    live_plain = patch.copy_json(_without_managed_fields(live))  # the result must share nothing with `live`
    if live and not entries:
        # Upstream attributes an untracked object's fields to a placeholder Update manager, so
        # that a first apply conflicts instead of silently taking them over.
        placeholder = _Entry(
            BEFORE_FIRST_APPLY, "Update", api_version, now, "", _owned(apply_fields.compare({}, live_plain, node)[0], reset)
        )
        entries = {placeholder.identity: placeholder}
    applier = _Entry(manager, "Apply", api_version, now, subresource, _owned(apply_fields.field_set(config, node), reset))
    previous = entries.pop(applier.identity, None)
    merged = apply_fields.merge(live_plain, config, node)
    if previous is not None:
        dropped = {path for path in previous.fields - applier.fields if not any(entry.owns(path) for entry in entries.values())}
        if dropped:
            owned = applier.fields.union(*(entry.fields for entry in entries.values()))
            merged = apply_fields.remove_paths(merged, apply_fields.tree(dropped), apply_fields.tree(owned), node)
    added, modified, removed = apply_fields.compare(live_plain, merged, node)
    changed = _owned(added | modified, reset)
    clashes = [(entry, path) for entry in entries.values() for path in changed if entry.owns(path)]
    if clashes and not force:
        raise Conflict(clashes)
    lost = changed | _owned(removed, reset)
    for entry in entries.values():
        entry.lose(lost)
    if previous is not None:
        if not (added or modified or removed):
            applier.time = previous.time  # upstream stamps the time only when the object changed
        if previous.fields_v1 is not None and applier.fields == previous.fields:
            applier.fields_v1 = previous.fields_v1
    entries[applier.identity] = applier
    merged.setdefault("metadata", {})["managedFields"] = _encode_entries(_capped(entries))
    return merged


def record_update(
    old: dict | None,
    new: dict,
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
    schema: dict | None = None,
    reset_fields: tuple[str, ...] = (),
) -> list[dict]:
    """managedFields after a non-apply write of `new` over `old` (None: create).

    `manager` takes every field whose value it added or changed; every manager (itself
    included) loses fields the write removed, and others lose the fields it changed. The
    base entries are `new`'s managedFields when the client sent some (`[{}]` clears them),
    else `old`'s. Pass the CRD `schema` so set and map lists are tracked per item, and
    `reset_fields` as for `apply`.
    """
    reset = _reset(reset_fields)
    old = old or {}
    sent = (new.get("metadata") or {}).get("managedFields")
    if sent == [{}]:
        entries = {}
    else:
        entries = _decode_entries(new if sent else old)
    node = apply_fields.root_node(new.get("apiVersion", ""), new.get("kind", ""), schema)
    old, new = _without_managed_fields(old), _without_managed_fields(new)
    try:
        added, modified, removed = apply_fields.compare(old, new, node)
    except apply_fields.InvalidObject:
        # A write the server accepted (e.g. duplicate env names, which Kubernetes allows)
        # must still be recorded: fall back to tracking every list as a whole.
        added, modified, removed = apply_fields.compare(old, new, apply_fields.UNTYPED)
    changed = _owned(added | modified, reset)
    lost = changed | _owned(removed, reset)
    for entry in entries.values():
        entry.lose(lost)
    if changed:
        writer = _Entry(manager, "Update", api_version, now, subresource, changed)
        earlier = entries.get(writer.identity)
        if earlier is not None:
            writer.fields |= earlier.fields
        entries[writer.identity] = writer
    return _encode_entries(_capped(entries))


def _capped(entries: dict[tuple, _Entry]) -> dict[tuple, _Entry]:
    """Upstream `capManagersManager`: beyond MAX_UPDATE_MANAGERS Update entries, the oldest
    merge into one `ancient-changes` entry per apiVersion."""
    updaters = sorted(
        (entry for entry in entries.values() if entry.operation == "Update" and not entry.is_empty()),
        key=lambda entry: (entry.time, entry.identity),
    )
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    first_of_version: dict[str, _Entry] = {}
    for entry in updaters:
        if excess <= 0:
            break
        first = first_of_version.setdefault(entry.api_version, entry)
        if first is entry:
            continue
        bucket = _Entry(ANCIENT_CHANGES, "Update", entry.api_version, entry.time, "", set())
        existing = entries.pop(bucket.identity, None)
        if existing is None:
            entries.pop(first.identity)
            existing = first
        bucket.fields = existing.fields | entry.fields
        entries.pop(entry.identity)
        entries[bucket.identity] = bucket
        excess -= 1
    return entries


def _reset(reset_fields: tuple[str, ...]) -> frozenset:
    return frozenset("f:" + name for name in reset_fields)


def _owned(paths: set, reset: frozenset) -> set:
    """`paths` without those nobody owns: server-set metadata and the endpoint's reset fields."""
    return {
        path
        for path in paths
        if path not in _UNOWNED and path[:2] != ("f:metadata", "f:managedFields") and not (path and path[0] in reset)
    }


def _without_managed_fields(obj: dict) -> dict:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {key: value for key, value in metadata.items() if key != "managedFields"}}


def _decode_entries(obj: dict) -> dict[tuple, _Entry]:
    """The entries of `obj`'s managedFields by manager identity; unreadable entries are dropped,
    as upstream resets managedFields it cannot decode."""
    entries: dict[tuple, _Entry] = {}
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or not raw.get("manager") or raw.get("operation") not in ("Apply", "Update"):
            continue
        fields_v1 = raw.get("fieldsV1")
        entry = _Entry(
            raw["manager"],
            raw["operation"],
            raw.get("apiVersion", ""),
            raw.get("time", ""),
            raw.get("subresource", ""),
            fields_v1=fields_v1 if isinstance(fields_v1, dict) else {},
        )
        if entry.identity in entries:
            entry.fields |= entries[entry.identity].fields
        entries[entry.identity] = entry
    return entries


def _encode_entries(entries: dict[tuple, _Entry]) -> list[dict]:
    kept = sorted((entry for entry in entries.values() if not entry.is_empty()), key=_Entry.sort_key)
    return [entry.encode() for entry in kept]
