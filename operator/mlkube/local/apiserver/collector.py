"""Garbage collection by ownerReferences, foreground/orphan deletion, namespace and CRD termination.

Owns the controllers a real control plane runs for deletion: the garbage collector (Background,
Foreground, Orphan; dependents whose owners are all gone), the namespace controller (delete the
contents of a Terminating namespace, then finalize it) and the CRD finalizer (delete a CRD's custom
resources, then release it). Wakes on relevant store events; writes only through objects.Objects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mlkube.local.apiserver import bodies, crds, errors, kinds, objects, storage

logger = logging.getLogger(__name__)
GC_MANAGER = objects.WriteOptions(field_manager="generic-garbage-collector")
NAMESPACE_MANAGER = objects.WriteOptions(field_manager="namespace-controller")
CRD_MANAGER = objects.WriteOptions(field_manager="apiextensions-apiserver")


class Collector:
    def __init__(self, objects_: objects.Objects) -> None:
        self._objects = objects_
        self._wake = asyncio.Event()

    def notify(self, event: storage.Event) -> None:
        """Store subscriber: wake up for deletions and for objects that have owners."""
        meta = event.obj["metadata"]
        if event.type == "DELETED" or meta.get("deletionTimestamp") or meta.get("ownerReferences"):
            self._wake.set()

    async def run(self) -> None:
        self._wake.set()  # a first pass after startup: finish what a restart interrupted
        while True:
            await self._wake.wait()
            await asyncio.sleep(0.02)  # coalesce a burst of deletions into one pass
            self._wake.clear()
            try:
                self.collect()
            except Exception:
                logger.exception("garbage collection pass failed")

    def collect(self) -> None:
        """One pass; repeats while it made progress (a deletion may orphan further dependents)."""
        for _ in range(20):
            if not self._pass():
                return

    def _pass(self) -> bool:
        store = self._objects.store
        everything = list(store.walk())
        dependents: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for key, obj in everything:
            for ref in obj["metadata"].get("ownerReferences") or []:
                dependents.setdefault(ref.get("uid", ""), []).append((key, obj))
        progress = False
        for key, obj in everything:
            meta = obj["metadata"]
            if meta.get("ownerReferences") and not meta.get("deletionTimestamp") and self._orphaned(obj):
                progress |= self._delete(key, obj, "Background")
        for key, obj in everything:
            meta = obj["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            finalizers = meta.get("finalizers") or []
            if objects.ORPHAN in finalizers:
                progress |= self._orphan(key, obj, dependents.get(meta["uid"], []))
            elif objects.FOREGROUND in finalizers:
                progress |= self._foreground(key, obj, dependents.get(meta["uid"], []))
            if key == "/namespaces":
                progress |= self._terminate_namespace(obj, everything)
            elif key == "apiextensions.k8s.io/customresourcedefinitions" and crds.CLEANUP_FINALIZER in finalizers:
                progress |= self._cleanup_crd(obj)
        return progress

    def _orphaned(self, obj: dict[str, Any]) -> bool:
        """True when no ownerReference points at a live object (in the same namespace, or cluster-scoped)."""
        namespace = obj["metadata"].get("namespace", "")
        for ref in obj["metadata"]["ownerReferences"]:
            found = self._objects.store.by_uid(ref.get("uid", ""))
            if found is not None and found[1]["metadata"].get("namespace", "") in ("", namespace):
                return False
        return True

    def _delete(self, key: str, obj: dict[str, Any], propagation: str) -> bool:
        rtype = self._objects.registry.storage_type(key)
        if rtype is None:
            return False
        meta = obj["metadata"]
        try:
            self._objects.delete(
                rtype, meta.get("namespace", ""), meta["name"], propagation=propagation, preconditions={"uid": meta["uid"]}
            )
        except errors.APIError as exc:
            if exc.code not in (404, 409):
                logger.warning("could not delete %s %s: %s", key, meta["name"], exc)
            return False
        return True

    def _update(
        self, key: str, old: dict[str, Any], new: dict[str, Any], opts: objects.WriteOptions, *, subresource: str = ""
    ) -> bool:
        rtype = self._objects.registry.storage_type(key)
        if rtype is None:
            return False
        try:
            self._objects.update(rtype, old, new, opts, subresource=subresource)
        except errors.APIError as exc:
            logger.warning("could not update %s %s: %s", key, old["metadata"]["name"], exc)
            return False
        return True

    def _without_finalizer(self, key: str, obj: dict[str, Any], finalizer: str, opts: objects.WriteOptions) -> bool:
        new = bodies.clone(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        return self._update(key, obj, new, opts)

    def _orphan(self, key: str, owner: dict[str, Any], dependents: list[tuple[str, dict[str, Any]]]) -> bool:
        uid = owner["metadata"]["uid"]
        for dep_key, dependent in dependents:
            current = self._objects.store.by_uid(dependent["metadata"]["uid"])
            if current is None:
                continue
            new = bodies.clone(current[1])
            new["metadata"]["ownerReferences"] = [r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._update(dep_key, current[1], new, GC_MANAGER)
        return self._without_finalizer(key, owner, objects.ORPHAN, GC_MANAGER)

    def _foreground(self, key: str, owner: dict[str, Any], dependents: list[tuple[str, dict[str, Any]]]) -> bool:
        progress = False
        blocking = 0
        uid = owner["metadata"]["uid"]
        for dep_key, dependent in dependents:
            if not dependent["metadata"].get("deletionTimestamp"):
                progress |= self._delete(dep_key, dependent, "Foreground")
            still_there = self._objects.store.by_uid(dependent["metadata"]["uid"]) is not None
            refs = [r for r in dependent["metadata"].get("ownerReferences") or [] if r.get("uid") == uid]
            if still_there and any(r.get("blockOwnerDeletion") for r in refs):
                blocking += 1
        if blocking == 0:
            progress |= self._without_finalizer(key, owner, objects.FOREGROUND, GC_MANAGER)
        return progress

    def _terminate_namespace(self, namespace: dict[str, Any], everything: list[tuple[str, dict[str, Any]]]) -> bool:
        name = namespace["metadata"]["name"]
        remaining = [
            (key, obj)
            for key, obj in everything
            if obj["metadata"].get("namespace") == name
            and self._objects.store.get(key, name, obj["metadata"]["name"]) is not None
        ]
        progress = False
        for key, obj in remaining:
            if not obj["metadata"].get("deletionTimestamp"):
                progress |= self._delete(key, obj, "Background")
        if any(self._objects.store.get(key, name, obj["metadata"]["name"]) is not None for key, obj in remaining):
            return progress
        spec_finalizers = (namespace.get("spec") or {}).get("finalizers") or []
        if kinds.NAMESPACE_FINALIZER not in spec_finalizers:
            return progress
        new = bodies.clone(namespace)
        new["spec"]["finalizers"] = [f for f in spec_finalizers if f != kinds.NAMESPACE_FINALIZER]
        return self._update("/namespaces", namespace, new, NAMESPACE_MANAGER, subresource="finalize") or progress

    def _cleanup_crd(self, crd: dict[str, Any]) -> bool:
        names = crds.accepted_names(crd)
        key = f"{crd['spec']['group']}/{names['plural']}"
        progress = False
        remaining = self._objects.store.list(key)
        for obj in remaining:
            if not obj["metadata"].get("deletionTimestamp"):
                progress |= self._delete(key, obj, "Background")
        if self._objects.store.list(key):
            return progress
        return (
            self._without_finalizer("apiextensions.k8s.io/customresourcedefinitions", crd, crds.CLEANUP_FINALIZER, CRD_MANAGER)
            or progress
        )
