"""Watch streams: chunked NDJSON of ADDED/MODIFIED/DELETED/BOOKMARK/ERROR events.

Owns the watch start points (current state, resume from an RV, streaming lists with the
initial-events-end bookmark), selector transitions (an object that stops matching is DELETED for
that watcher), periodic bookmarks, timeouts (finite: decoding refuses nan/inf), the 410 ERROR event
inside a 200 stream, and ending every stream at once on shutdown. Like every response, a chunk is
sent only once the writes it reflects are on disk (`Store.sync`). Must not change objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import random
from typing import Any

from aiohttp import web

from mlkube.local.apiserver import errors, objects, registry, selectors, storage, tables

_STOP = object()


@dataclasses.dataclass(frozen=True)
class WatchRequest:
    rtype: registry.ResourceType
    namespace: str  # "" for every namespace (or a cluster-scoped type)
    selector: selectors.Selector
    resource_version: str = ""
    send_initial_events: bool = False
    bookmarks: bool = False
    timeout: float | None = None
    table: bool = False
    include_object: str = "Metadata"
    columns_sent: list[bool] = dataclasses.field(default_factory=list)  # a Table watch sends columns once

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return self.selector.matches(obj)


class Watches:
    """Every open watch stream, so that shutdown can end them all at once."""

    def __init__(self, store: storage.Store, objects_: objects.Objects, *, bookmark_interval: float = 15.0) -> None:
        self._store = store
        self._objects = objects_
        self._queues: set[asyncio.Queue] = set()
        self.bookmark_interval = bookmark_interval

    async def close_all(self, *, timeout: float = 1.0) -> None:
        """End every open stream cleanly (final chunk written) and wait for them, at most `timeout` seconds."""
        for queue in list(self._queues):
            queue.put_nowait(_STOP)
        deadline = asyncio.get_running_loop().time() + timeout
        while self._queues and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def serve(self, request: web.Request, watch: WatchRequest) -> web.StreamResponse:
        key = watch.rtype.storage_key
        queue: asyncio.Queue = asyncio.Queue()

        def deliver(event: storage.Event) -> None:
            if event.key == key:
                queue.put_nowait(event)

        # Snapshot and subscribe with no await in between: no event can fall between the two.
        initial: list[tuple[str, dict[str, Any]]] = []
        replay: list[storage.Event] = []
        failure: errors.APIError | None = None
        if watch.send_initial_events or watch.resource_version in ("", "0"):
            current = self._store.list(key, watch.namespace or None)
            current.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
            initial = [("ADDED", obj) for obj in current if watch.matches(obj)]
        else:
            try:
                replay = self._store.events_since(key, int(watch.resource_version))
            except errors.APIError as exc:
                failure = exc
        self._store.subscribe(deliver)
        self._queues.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if failure is not None:
                await response.write(_line({"type": "ERROR", "object": failure.status()}))
                return response
            chunks = [self._render(watch, kind, obj) for kind, obj in initial]
            chunks += [line for event in replay if (line := self._event_line(watch, event))]
            if watch.send_initial_events:
                chunks.append(self._bookmark(watch, initial_end=True))
            await self._store.sync()  # after rendering: covers every RV the chunks name
            if chunks:
                await response.write(b"".join(chunks))
            await self._pump(watch, queue, response)
        except ConnectionResetError:
            pass  # the client went away
        except errors.APIError as exc:  # the store failed to sync: end the stream with the reason
            with contextlib.suppress(ConnectionResetError):
                await response.write(_line({"type": "ERROR", "object": exc.status()}))
        finally:
            self._store.unsubscribe(deliver)
            self._queues.discard(queue)
        return response

    async def _pump(self, watch: WatchRequest, queue: asyncio.Queue, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        timeout = watch.timeout if watch.timeout is not None else random.uniform(1800, 3600)
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            now = loop.time()
            if now >= deadline:
                return
            wait = deadline - now
            if watch.bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                async with asyncio.timeout(wait):
                    item = await queue.get()
            except TimeoutError:
                if watch.bookmarks and loop.time() >= next_bookmark:
                    bookmark = self._bookmark(watch)
                    await self._store.sync()
                    await response.write(bookmark)
                    next_bookmark = loop.time() + self.bookmark_interval
                continue
            items = [item]
            while not queue.empty():
                items.append(queue.get_nowait())
            await self._store.sync()  # covers every queued event: they were committed before now
            chunks = []
            for event in items:
                if event is _STOP:
                    await response.write(b"".join(chunks))
                    await response.write_eof()  # before shutdown cancels the handler
                    return
                if line := self._event_line(watch, event):
                    chunks.append(line)
            if chunks:
                await response.write(b"".join(chunks))

    def _event_line(self, watch: WatchRequest, event: storage.Event) -> bytes | None:
        """The line this watcher gets for a committed event, after selector transitions (or None)."""
        now_matches = watch.matches(event.obj)
        if event.type == "MODIFIED":
            before = watch.matches(event.old)
            if before and not now_matches:
                kind = "DELETED"
            elif now_matches and not before:
                kind = "ADDED"
            elif now_matches:
                kind = "MODIFIED"
            else:
                return None
        elif now_matches:
            kind = event.type
        else:
            return None
        if watch.table:
            return self._render(watch, kind, event.obj)
        cache_key = (watch.rtype.version, kind)
        line = event.rendered.get(cache_key)
        if line is None:
            line = event.rendered[cache_key] = self._render(watch, kind, event.obj)
        return line

    def _render(self, watch: WatchRequest, kind: str, obj: dict[str, Any]) -> bytes:
        view = self._objects.view(watch.rtype, obj)
        if watch.table:
            view = tables.table(
                watch.rtype,
                [view],
                now=datetime.datetime.now(datetime.UTC),
                resource_version=view["metadata"]["resourceVersion"],
                include_object=watch.include_object,
                with_columns=not watch.columns_sent,
            )
            watch.columns_sent.append(True)
        return _line({"type": kind, "object": view})

    def _bookmark(self, watch: WatchRequest, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self._store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line(
            {"type": "BOOKMARK", "object": {"kind": watch.rtype.kind, "apiVersion": watch.rtype.api_version, "metadata": meta}}
        )


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
