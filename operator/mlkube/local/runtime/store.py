"""The runtime's view of the cluster: list-and-watch caches and writes that keep them fresh.

Owns one :class:`Informer` per watched resource (list, then watch from the list's
resourceVersion; list again on 410 or a dropped stream; wait while a CRD is not installed)
and the :class:`Store` the controllers read from and write through. Every write puts the
server's answer into the cache at once, so a controller's next pass sees its own pod
creations and deletions before the watch event arrives (no duplicate pods). Must not decide
anything about the objects themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mlkube.local.runtime import kube, objects

log = logging.getLogger(__name__)


def _newer_or_same(candidate: dict, current: dict | None) -> bool:
    if current is None:
        return True
    new = candidate["metadata"].get("resourceVersion", "")
    old = current["metadata"].get("resourceVersion", "")
    if new.isdigit() and old.isdigit():
        return int(new) >= int(old)
    return True


class Informer:
    """A cache of every object of one resource, kept by list and watch."""

    def __init__(
        self, client: kube.Client, resource: kube.Resource, on_change: Callable[[], None], *, retry_delay: float = 1.0
    ) -> None:
        self.resource = resource
        self.objects: dict[tuple[str, str], dict] = {}
        self.synced = asyncio.Event()
        self._client = client
        self._on_change = on_change
        self._retry_delay = retry_delay

    def upsert(self, obj: dict) -> None:
        k = objects.key(obj)
        if _newer_or_same(obj, self.objects.get(k)):
            self.objects[k] = obj
            self._on_change()

    def discard(self, obj: dict) -> None:
        k = objects.key(obj)
        current = self.objects.get(k)
        if current is not None and _newer_or_same(obj, current):
            del self.objects[k]
            self._on_change()

    async def run(self) -> None:
        """List, then watch from the list's version; resume a watch the server ended from
        the last version seen, and list again only after a 410 or an error."""
        version = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                async for event in self._client.watch(self.resource, version):
                    version = (event.get("object") or {}).get("metadata", {}).get("resourceVersion") or version
                    self._apply(event)
            except kube.Gone:
                version = None
            except kube.NotFound:
                # The resource is not served (yet): a CRD that is not installed.
                version = None
                self.objects.clear()
                self.synced.set()
                await asyncio.sleep(self._retry_delay * 2)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("watch of %s interrupted: %r", self.resource.plural, e)
                version = None
                await asyncio.sleep(self._retry_delay)

    async def _list(self) -> str:
        listing = await self._client.list(self.resource)
        items = listing.get("items") or []
        kind = listing.get("kind", "").removesuffix("List")
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", self.resource.api_version)
        self.objects = {objects.key(item): item for item in items}
        self.synced.set()
        self._on_change()
        return listing["metadata"]["resourceVersion"]

    def _apply(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind in ("ADDED", "MODIFIED"):
            self.upsert(obj)
        elif kind == "DELETED":
            self.discard(obj)


class Store:
    """Reads from the informers, writes through the API and into the informers."""

    def __init__(self, client: kube.Client, on_change: Callable[[], None]) -> None:
        self.client = client
        self._on_change = on_change
        self.informers: dict[kube.Resource, Informer] = {}

    def watch(self, resource: kube.Resource) -> Informer:
        informer = Informer(self.client, resource, self._on_change)
        self.informers[resource] = informer
        return informer

    def list(self, resource: kube.Resource, namespace: str | None = None) -> list[dict]:
        items = self.informers[resource].objects.values()
        return [o for o in items if namespace is None or (o["metadata"].get("namespace") or "") == namespace]

    def get(self, resource: kube.Resource, namespace: str, name: str) -> dict | None:
        return self.informers[resource].objects.get((namespace, name))

    def owned(self, resource: kube.Resource, owner: dict) -> list[dict]:
        uid, namespace = owner["metadata"]["uid"], owner["metadata"].get("namespace") or ""
        return [o for o in self.list(resource, namespace) if objects.controller_uid(o) == uid]

    def _remember(self, resource: kube.Resource, obj: dict) -> dict:
        if resource in self.informers and obj.get("metadata", {}).get("name"):
            obj.setdefault("apiVersion", resource.api_version)
            self.informers[resource].upsert(obj)
        return obj

    async def create(self, resource: kube.Resource, obj: dict) -> dict:
        namespace = obj["metadata"].get("namespace")
        return self._remember(resource, await self.client.create(resource, namespace, obj))

    async def patch(self, resource: kube.Resource, obj: dict, body: dict) -> dict:
        namespace, name = objects.key(obj)
        return self._remember(resource, await self.client.patch(resource, namespace or None, name, body))

    async def write_status(self, resource: kube.Resource, obj: dict, status: dict) -> None:
        """Merge-patch ``status`` over the object's status when it differs."""
        patch = objects.merge_patch(obj.get("status") or {}, status)
        if patch is None:
            return
        namespace, name = objects.key(obj)
        self._remember(resource, await self.client.patch(resource, namespace or None, name, {"status": patch}, sub="status"))

    async def delete(self, resource: kube.Resource, obj: dict, *, grace_seconds: int | None = None) -> None:
        namespace, name = objects.key(obj)
        try:
            answer = await self.client.delete(
                resource, namespace or None, name, grace_seconds=grace_seconds, uid=obj["metadata"].get("uid")
            )
        except (kube.NotFound, kube.Conflict):
            answer = {}
        informer = self.informers.get(resource)
        if answer.get("kind") not in (None, "Status") and objects.is_terminating(answer):
            self._remember(resource, answer)
        elif informer is not None and objects.key(obj) in informer.objects:
            del informer.objects[objects.key(obj)]
            self._on_change()
