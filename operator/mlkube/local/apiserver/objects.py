"""Create, update, patch and delete semantics of every object, as kube-apiserver's generic registry applies them.

Owns metadata rules on write (name/generateName, uid, timestamps, namespace checks), optimistic
concurrency, no-op detection, generation, finalizers and deletionTimestamp, the order of a write's
steps and committing it to the store (and the CRD registry). Delegates the store-free body checks,
unknown fields, CRD schema processing and the status subresource split to `bodies`, patch content
types and apply preconditions to `patch_requests`, and managedFields to `apply`. Every method is
synchronous, so each write is atomic with respect to the event loop. Must not parse HTTP requests
or render responses.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from mlkube.local.apiserver import apply, bodies, crds, errors, kinds, metadata, patch_requests, registry, scale, schema, storage

NAMESPACES = ("", "namespaces")
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"


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


def _key(rtype: registry.ResourceType) -> tuple[str, str]:
    return rtype.group, rtype.plural


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
        obj = bodies.checked_body(rtype, namespace, body)
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
        causes += kinds.prepare_create(
            rtype,
            obj,
            services=self.store.list("/services"),
            network_seed=self.store.path,
            nodes=self.store.list("/nodes") if rtype.storage_key == "/pods" else (),
        )
        obj, warnings, schema_causes = bodies.schema_pass(rtype, obj, None, field_validation=opts.field_validation)
        causes += schema_causes
        if bodies.is_crd(rtype):
            causes += crds.causes(obj)
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, name, causes)
        if bodies.is_crd(rtype):
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
        bodies.compact_metadata(obj)
        if opts.dry_run:
            return Result(obj, created=True, warnings=warnings)
        stored = bodies.to_storage(rtype, obj)
        if bodies.is_crd(rtype):
            # Served before the CRD's ADDED event: Kopf rescans discovery when it sees the event.
            self.registry.set_crd(name, crds.resource_types(stored))
        try:
            self.store.write(rtype.storage_key, stored, event_type="ADDED", old=None)
        except errors.APIError:
            if bodies.is_crd(rtype):  # refused by the store (too large, disk full): serve nothing new
                self.registry.remove_crd(name)
            raise
        return Result(self.view(rtype, stored), created=True, warnings=warnings)

    # -- update ----------------------------------------------------------------------------

    def replace(
        self, rtype: registry.ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions, *, subresource: str = ""
    ) -> Result:
        old = self._stored(rtype, namespace, name)
        new = bodies.checked_body(rtype, namespace, body, name=name)
        bodies.check_resource_version(rtype, new)
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
        if content_type == patch_requests.APPLY:
            return self._apply(rtype, namespace, name, old, body, opts, subresource=subresource)
        if old is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        new = patch_requests.patched(self.view(rtype, old), content_type, body, allow_strategic=not rtype.custom)
        return self.update(rtype, old, new, opts, subresource=subresource)

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
            content_type = patch_requests.MERGE if content_type == patch_requests.STRATEGIC else content_type
            requested = patch_requests.patched(current, content_type, body, allow_strategic=False)
        new = bodies.clone(old)
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
        config = patch_requests.apply_config(config, name=name, field_manager=opts.field_manager)
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
            raise patch_requests.conflict_error(exc, api_version=rtype.api_version) from exc
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
        new = bodies.clone(new)
        bodies.check_decodable(rtype, new)
        name = old["metadata"]["name"]
        given_rv = new["metadata"].get("resourceVersion")
        if given_rv and given_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.plural, rtype.group, name)
        new = bodies.split_status(rtype, old, new, subresource)
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
        new, warnings, schema_causes = bodies.schema_pass(
            rtype, new, self.view(rtype, old), field_validation=opts.field_validation
        )
        causes += schema_causes
        if bodies.is_crd(rtype):
            causes += crds.causes(new)
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, name, causes)
        if bodies.is_crd(rtype):
            new = crds.with_status(new, old)
        new = bodies.to_storage(rtype, new)
        bodies.compact_metadata(new)
        if rtype.uses_generation and bodies.generation_fields(rtype, new) != bodies.generation_fields(rtype, old):
            meta = new["metadata"]
            meta["generation"] = old_meta.get("generation", 0) + 1
        if bodies.without_volatile(new) == bodies.without_volatile(old):
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
        if bodies.is_crd(rtype):
            self.registry.set_crd(name, crds.resource_types(new))
        try:
            self.store.write(rtype.storage_key, new, event_type="MODIFIED", old=old)
        except errors.APIError:
            if bodies.is_crd(rtype):  # refused by the store: keep serving what is stored
                self.registry.set_crd(name, crds.resource_types(old))
            raise
        return Result(self.view(rtype, new), warnings=warnings)

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
        new = bodies.clone(old)
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
        if bodies.is_crd(rtype):
            self.registry.remove_crd(final["metadata"]["name"])
        return final

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
