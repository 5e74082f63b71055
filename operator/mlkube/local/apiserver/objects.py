"""Create, update, patch and delete semantics of every object, as kube-apiserver's generic registry applies them.

Owns metadata rules on write (name/generateName, uid, timestamps, namespace checks), optimistic
concurrency, no-op detection, generation, the status subresource split, finalizers and
deletionTimestamp, CRD schema processing (through schema.py), managedFields (through apply.py),
and the patch content types (through patch.py). Every method is synchronous, so each write is
atomic with respect to the event loop. Must not parse HTTP requests or render responses.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from mlkube.local.apiserver import apply, builtin_fields, crds, errors, kinds, metadata, patch, registry, scale, schema, storage

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"
MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
CUSTOM_PATCH_TYPES = [JSON_PATCH, MERGE, APPLY]


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False


@dataclasses.dataclass
class Result:
    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)


def clone(obj: Any) -> Any:
    """A deep copy of JSON data (faster than copy.deepcopy for these shapes)."""
    return json.loads(json.dumps(obj))


def _key(rtype: registry.ResourceType) -> tuple[str, str]:
    return rtype.group, rtype.plural


def _generation_fields(rtype: registry.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What a generation counts: everything outside metadata, except status when it is a subresource."""
    ignored = ("metadata", "apiVersion", "kind", "status") if rtype.has_status else ("metadata", "apiVersion", "kind")
    return {k: v for k, v in obj.items() if k not in ignored}


def _compact_metadata(obj: dict[str, Any]) -> None:
    """ObjectMeta's `omitempty`: empty maps and lists are not stored (so `{"x": null}` on no annotations is a no-op)."""
    meta = obj["metadata"]
    for field in ("labels", "annotations", "finalizers", "ownerReferences", "managedFields"):
        if field in meta and not meta[field]:
            del meta[field]


def _without_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


class Objects:
    """The write path and the read views of one store."""

    def __init__(self, store: storage.Store, types: registry.Registry) -> None:
        self.store = store
        self.registry = types

    # -- reads -----------------------------------------------------------------------------

    def view(self, rtype: registry.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as served at `rtype`'s version (conversion None, defaults applied on read)."""
        if not rtype.custom:
            return obj
        if rtype.version != rtype.storage_version:
            obj = {**obj, "apiVersion": rtype.api_version}
        return schema.default(obj, rtype.schema) if rtype.schema else obj

    def get(self, rtype: registry.ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return self.view(rtype, obj)

    # -- create ----------------------------------------------------------------------------

    def create(
        self, rtype: registry.ResourceType, namespace: str, body: Any, opts: WriteOptions, *, managed: bool = False
    ) -> Result:
        obj = self._checked_body(rtype, namespace, body)
        meta = obj["metadata"]
        if rtype.namespaced:
            meta["namespace"] = namespace
            self._check_namespace_open(rtype, namespace, meta.get("name") or meta.get("generateName", ""))
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.invalid(
                    rtype.kind,
                    rtype.group,
                    "",
                    [errors.Cause("FieldValueRequired", "Required value: name or generateName is required", "metadata.name")],
                )
            meta["name"] = self._unused_name(rtype, namespace, meta["generateName"])
        name = meta["name"]
        causes = metadata.name_causes(name, label=_key(rtype) == NAMESPACES)
        if self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", name) is not None:
            raise errors.already_exists(rtype.plural, rtype.group, name)
        for field in metadata.SERVER_FIELDS:
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        stamp = metadata.now()
        meta["creationTimestamp"] = metadata.format_time(stamp)
        if rtype.custom and rtype.has_status:
            obj.pop("status", None)
        causes += metadata.meta_causes(meta)
        causes += kinds.prepare_create(rtype, obj, services=self.store.list("/services"), network_seed=self.store.path)
        obj, warnings, schema_causes = self._schema_pass(rtype, obj, None, opts)
        causes += schema_causes
        if _key(rtype) == CRDS:
            causes += crds.causes(obj)
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, name, causes)
        if _key(rtype) == CRDS:
            obj = crds.with_status(obj, None)
            obj["metadata"].setdefault("finalizers", [])
            if crds.CLEANUP_FINALIZER not in obj["metadata"]["finalizers"]:
                obj["metadata"]["finalizers"].append(crds.CLEANUP_FINALIZER)
        if rtype.uses_generation:
            obj["metadata"]["generation"] = 1
        if not managed:
            obj["metadata"]["managedFields"] = apply.record_update(
                None, obj, manager=opts.field_manager, api_version=rtype.api_version, now=metadata.format_time(stamp)
            )
        _compact_metadata(obj)
        if opts.dry_run:
            return Result(obj, created=True, warnings=warnings)
        stored = self._to_storage(rtype, obj)
        if _key(rtype) == CRDS:
            # Served before the CRD's ADDED event: Kopf rescans discovery when it sees the event.
            self.registry.set_crd(name, crds.resource_types(stored))
        try:
            self.store.write(rtype.storage_key, stored, event_type="ADDED", old=None)
        except errors.APIError:
            if _key(rtype) == CRDS:  # refused by the store (too large, disk full): serve nothing new
                self.registry.remove_crd(name)
            raise
        return Result(self.view(rtype, stored), created=True, warnings=warnings)

    # -- update ----------------------------------------------------------------------------

    def replace(
        self, rtype: registry.ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions, *, subresource: str = ""
    ) -> Result:
        old = self._stored(rtype, namespace, name)
        new = self._checked_body(rtype, namespace, body, name=name)
        if rtype.custom and not new["metadata"].get("resourceVersion"):
            raise errors.invalid(
                rtype.kind,
                rtype.group,
                name,
                [
                    errors.Cause(
                        "FieldValueInvalid", "Invalid value: 0x0: must be specified for an update", "metadata.resourceVersion"
                    )
                ],
            )
        return self.update(rtype, old, new, opts, subresource=subresource)

    def patch(
        self,
        rtype: registry.ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Result:
        old = self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", name)
        if content_type == APPLY:
            return self._apply(rtype, namespace, name, old, body, opts, subresource=subresource)
        if old is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        new = self._patched(rtype, self.view(rtype, old), content_type, body, allow_strategic=not rtype.custom)
        return self.update(rtype, old, new, opts, subresource=subresource)

    def _patched(
        self, rtype: registry.ResourceType, live: dict[str, Any], content_type: str, body: Any, *, allow_strategic: bool
    ) -> dict[str, Any]:
        try:
            if content_type == MERGE:
                new = patch.merge_patch(live, body)
            elif content_type == JSON_PATCH:
                new = patch.json_patch(live, body)
            elif content_type == STRATEGIC and allow_strategic:
                new = patch.strategic_merge_patch(live, body, api_version=live["apiVersion"], kind=live["kind"])
            else:
                # kubectl prefixes "<type> is not supported by <gvk>: " itself.
                raise errors.unsupported_media_type(content_type, CUSTOM_PATCH_TYPES)
        except patch.BadPatch as exc:
            raise errors.bad_request(str(exc)) from exc
        except patch.PatchError as exc:
            raise errors.APIError(422, "Invalid", str(exc)) from exc
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise errors.bad_request("the patch must leave an object with metadata")
        return new

    def scale(
        self, rtype: registry.ResourceType, namespace: str, name: str, content_type: str, body: Any, opts: WriteOptions
    ) -> Result:
        """PUT (content_type "application/json") or PATCH of the scale subresource: only spec.replicas changes."""
        old = self._stored(rtype, namespace, name)
        current = scale.view(old)
        if content_type == "application/json":
            requested = body
            given_rv = ((body or {}).get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
            if given_rv and given_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rtype.plural, rtype.group, name)
        else:
            # A Scale has no lists, so a strategic merge patch of it is a JSON merge patch.
            content_type = MERGE if content_type == STRATEGIC else content_type
            requested = self._patched(rtype, current, content_type, body, allow_strategic=False)
        new = clone(old)
        new.setdefault("spec", {})["replicas"] = scale.replicas(requested, name=name)
        return Result(scale.view(self.update(rtype, old, new, opts, subresource="scale").obj))

    def _apply(
        self,
        rtype: registry.ResourceType,
        namespace: str,
        name: str,
        old: dict[str, Any] | None,
        config: Any,
        opts: WriteOptions,
        *,
        subresource: str,
    ) -> Result:
        if not opts.field_manager:
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [errors.Cause("FieldValueRequired", "Required value: is required for apply patch", "fieldManager")],
            )
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        config_meta = config.setdefault("metadata", {})
        if config_meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({config_meta.get('name')}) does not match the name on the URL ({name})"
            )
        config_meta["name"] = name
        live = None if old is None else self.view(rtype, old)
        if old is None and subresource:
            raise errors.not_found(rtype.plural, rtype.group, name)
        try:
            new = apply.apply(
                live,
                config,
                manager=opts.field_manager,
                api_version=rtype.api_version,
                force=opts.force,
                now=metadata.format_time(metadata.now()),
                schema=rtype.schema,
                subresource=subresource,
            )
        except apply.Conflict as exc:
            raise errors.APIError(
                409,
                "Conflict",
                exc.message(rtype.api_version),
                {
                    "causes": [
                        {
                            "reason": "FieldManagerConflict",
                            "message": f'conflict with "{manager}" using {rtype.api_version}',
                            "field": field,
                        }
                        for manager, field in exc.conflicts
                    ]
                },
            ) from exc
        if old is None:
            return self.create(rtype, namespace, new, opts, managed=True)
        return self.update(rtype, old, new, opts, subresource=subresource, managed=True)

    def update(
        self,
        rtype: registry.ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        opts: WriteOptions,
        *,
        subresource: str = "",
        managed: bool = False,
    ) -> Result:
        """Commit `new` over the stored `old`: the shared tail of PUT, every PATCH and internal writes."""
        new = clone(new)
        self._decodable(rtype, new)
        name = old["metadata"]["name"]
        given_rv = new["metadata"].get("resourceVersion")
        if given_rv and given_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.plural, rtype.group, name)
        new = self._split_status(rtype, old, new, subresource)
        meta, old_meta = new["metadata"], old["metadata"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["name"] = name
        if not managed:
            meta["managedFields"] = old_meta.get("managedFields", [])
        causes = metadata.meta_causes(meta)
        if old_meta.get("deletionTimestamp"):
            causes += metadata.new_finalizer_causes(old, new)
        causes += kinds.prepare_update(rtype, new, old) if not subresource else kinds.prepare_write(rtype, new)
        new, warnings, schema_causes = self._schema_pass(rtype, new, self.view(rtype, old), opts)
        causes += schema_causes
        if _key(rtype) == CRDS:
            causes += crds.causes(new)
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, name, causes)
        if _key(rtype) == CRDS:
            new = crds.with_status(new, old)
        new = self._to_storage(rtype, new)
        _compact_metadata(new)
        if rtype.uses_generation and _generation_fields(rtype, new) != _generation_fields(rtype, old):
            meta = new["metadata"]
            meta["generation"] = old_meta.get("generation", 0) + 1
        if _without_volatile(new) == _without_volatile(old):
            return Result(self.view(rtype, old), warnings=warnings)  # a no-op: no new RV, no event
        if not managed:
            new["metadata"]["managedFields"] = apply.record_update(
                self.view(rtype, old),
                new,
                manager=opts.field_manager,
                api_version=rtype.api_version,
                now=metadata.format_time(metadata.now()),
                subresource=subresource,
            )
        if opts.dry_run:
            return Result(self.view(rtype, new), warnings=warnings)
        if self._finished(rtype, new):
            return Result(self.view(rtype, self._remove(rtype, new, old)), warnings=warnings)
        if _key(rtype) == CRDS:
            self.registry.set_crd(name, crds.resource_types(new))
        try:
            self.store.write(rtype.storage_key, new, event_type="MODIFIED", old=old)
        except errors.APIError:
            if _key(rtype) == CRDS:  # refused by the store: keep serving what is stored
                self.registry.set_crd(name, crds.resource_types(old))
            raise
        return Result(self.view(rtype, new), warnings=warnings)

    def _split_status(
        self, rtype: registry.ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """The status subresource rule: the main endpoint keeps status, /status changes only status."""
        if subresource in ("status", "finalize"):
            result = clone(old)
            result["apiVersion"] = new.get("apiVersion", old["apiVersion"])
            if new["metadata"].get("managedFields") is not None:
                result["metadata"]["managedFields"] = new["metadata"]["managedFields"]
            if subresource == "status":
                if "status" in new:
                    result["status"] = new["status"]
                else:
                    result.pop("status", None)
            else:
                result.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            return result
        if rtype.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        return new

    # -- delete ----------------------------------------------------------------------------

    def delete(
        self,
        rtype: registry.ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str = "",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Result:
        old = self._stored(rtype, namespace, name)
        old_meta = old["metadata"]
        preconditions = preconditions or {}
        if preconditions.get("uid") and preconditions["uid"] != old_meta["uid"]:
            raise errors.conflict(
                rtype.plural,
                rtype.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {old_meta['uid']}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != old_meta["resourceVersion"]:
            raise errors.conflict(
                rtype.plural,
                rtype.group,
                name,
                "Precondition failed: ResourceVersion in "
                f"precondition: {preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{old_meta['resourceVersion']}",
            )
        if old_meta.get("deletionTimestamp"):
            return Result(self.view(rtype, old))
        new = clone(old)
        meta = new["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        wanted = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation)
        if wanted and wanted not in finalizers:
            finalizers.append(wanted)
        if finalizers:
            meta["finalizers"] = finalizers
        if _key(rtype) == NAMESPACES:
            new.setdefault("status", {})["phase"] = "Terminating"
        if not finalizers and not self._blocked_by_spec_finalizers(rtype, new):
            return Result(self.view(rtype, new if dry_run else self._remove(rtype, new, old)))
        meta["deletionTimestamp"] = metadata.format_time(metadata.now())
        meta["deletionGracePeriodSeconds"] = 0
        if meta.get("generation"):
            meta["generation"] += 1
        if dry_run:
            return Result(self.view(rtype, new))
        self.store.write(rtype.storage_key, new, event_type="MODIFIED", old=old)
        return Result(self.view(rtype, new))

    def delete_collection(
        self,
        rtype: registry.ResourceType,
        namespace: str,
        matches: list[dict[str, Any]],
        *,
        propagation: str = "",
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        deleted = []
        for obj in matches:
            meta = obj["metadata"]
            try:
                deleted.append(
                    self.delete(rtype, meta.get("namespace", ""), meta["name"], propagation=propagation, dry_run=dry_run).obj
                )
            except errors.APIError as exc:
                if exc.code != 404:
                    raise
        return deleted

    # -- helpers ---------------------------------------------------------------------------

    def _stored(self, rtype: registry.ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return obj

    def _blocked_by_spec_finalizers(self, rtype: registry.ResourceType, obj: dict[str, Any]) -> bool:
        return _key(rtype) == NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))

    def _finished(self, rtype: registry.ResourceType, obj: dict[str, Any]) -> bool:
        """Being deleted and nothing left holding the object."""
        meta = obj["metadata"]
        return (
            bool(meta.get("deletionTimestamp"))
            and not meta.get("finalizers")
            and not self._blocked_by_spec_finalizers(rtype, obj)
        )

    def _remove(self, rtype: registry.ResourceType, last: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        final = self.store.write(rtype.storage_key, last, event_type="DELETED", old=old)
        if _key(rtype) == CRDS:
            self.registry.remove_crd(final["metadata"]["name"])
        return final

    def _to_storage(self, rtype: registry.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        if rtype.custom and rtype.version != rtype.storage_version:
            obj["apiVersion"] = rtype.storage_api_version
        return obj

    def _checked_body(self, rtype: registry.ResourceType, namespace: str, body: Any, *, name: str = "") -> dict:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request must be a {rtype.kind} object")
        obj = clone(body)
        api_version, kind = obj.setdefault("apiVersion", rtype.api_version), obj.setdefault("kind", rtype.kind)
        if api_version != rtype.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
            )
        if kind != rtype.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if name and meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if name:
            meta["name"] = name
        self._decodable(rtype, obj)
        return obj

    def _decodable(self, rtype: registry.ResourceType, obj: dict[str, Any]) -> None:
        """400 for bodies kube-apiserver could not even decode into its Go types (CRD schemas)."""
        if _key(rtype) == CRDS and (problem := crds.decoding_error(obj)):
            raise errors.bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {problem}')

    def _check_namespace_open(self, rtype: registry.ResourceType, namespace: str, name: str) -> None:
        found = self.store.get("/namespaces", "", namespace)
        if found is None:
            raise errors.not_found("namespaces", "", namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rtype.plural,
                rtype.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _unused_name(self, rtype: registry.ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(8):
            candidate = metadata.generate_name(prefix)
            if self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", candidate) is None:
                return candidate
        raise errors.already_exists(rtype.plural, rtype.group, prefix)

    def _schema_pass(
        self, rtype: registry.ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, opts: WriteOptions
    ) -> tuple[dict[str, Any], list[str], list[errors.Cause]]:
        """Drop unknown fields (fieldValidation decides: 400, warnings or silence); for custom resources
        also default and validate against the CRD schema."""
        if rtype.custom and rtype.schema:
            pruned, dropped = schema.prune(obj, rtype.schema)
        elif not rtype.custom and _key(rtype) != CRDS:
            pruned, dropped = builtin_fields.prune_unknown(obj, group=rtype.group, version=rtype.version, kind=rtype.kind)
        else:
            return obj, [], []
        warnings: list[str] = []
        if dropped and opts.field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{path}"' for path in dropped)
            raise errors.bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: strict decoding error: {unknown}'
            )
        if dropped and opts.field_validation != "Ignore":
            warnings = [f'unknown field "{path}"' for path in dropped]
        if not rtype.custom:
            return pruned, warnings, []
        defaulted = schema.default(pruned, rtype.schema)
        causes = [errors.Cause(c.reason, c.message, c.field) for c in schema.validate(defaulted, rtype.schema, old=old)]
        return defaulted, warnings, causes
