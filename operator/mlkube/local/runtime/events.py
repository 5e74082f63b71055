"""Kubernetes Events the runtime records: what ``kubectl describe`` and ``kubectl events`` show.

Owns the shape of a core/v1 Event (involved object, source component, timestamps) and posting
it without making the caller wait: an Event is information, so failing to record one is
logged and never fails the caller.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from mlkube.local.runtime import kube, objects

log = logging.getLogger(__name__)
HOST = "local"


def event(involved: dict, *, reason: str, message: str, type_: str, component: str, field_path: str | None = None) -> dict:
    """A core/v1 Event about ``involved`` (pure)."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    reference = {
        "apiVersion": involved.get("apiVersion", "v1"),
        "kind": involved.get("kind", ""),
        "name": meta["name"],
        "namespace": namespace,
        "uid": meta.get("uid", ""),
    }
    if field_path:
        reference["fieldPath"] = field_path
    now = objects.now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
        "involvedObject": reference,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component, "host": HOST},
        "reportingComponent": component,
        "reportingInstance": HOST,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class Recorder:
    """Posts Events in the background for one component (``kubelet``, ``job-controller``...).

    A repeat of the same event (same object, reason and message) increments the ``count``
    and ``lastTimestamp`` of the first one, as the upstream event correlator does, so a
    crash loop does not grow the event list without bound.
    """

    REMEMBERED = 4096

    def __init__(self, client: kube.Client, component: str) -> None:
        self._client = client
        self._component = component
        self._pending: set[asyncio.Task] = set()
        self._posted: collections.OrderedDict[tuple, dict] = collections.OrderedDict()
        self._lock = asyncio.Lock()  # one post at a time: a repeat must find its first

    def record(self, involved: dict, reason: str, message: str, *, warning: bool = False, field_path: str | None = None) -> None:
        body = event(
            involved,
            reason=reason,
            message=message,
            component=self._component,
            type_="Warning" if warning else "Normal",
            field_path=field_path,
        )
        task = asyncio.create_task(self._post(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: dict) -> None:
        ref = body["involvedObject"]
        key = (ref["uid"], ref.get("fieldPath"), body["reason"], body["message"], body["type"])
        namespace = body["metadata"]["namespace"]
        async with self._lock:
            await self._post_or_count(key, namespace, body)

    async def _post_or_count(self, key: tuple, namespace: str, body: dict) -> None:
        try:
            first = self._posted.get(key)
            if first is not None:
                first["count"] += 1
                self._posted.move_to_end(key)
                await self._client.patch(
                    kube.EVENTS, namespace, first["name"], {"count": first["count"], "lastTimestamp": body["lastTimestamp"]}
                )
                return
            created = await self._client.create(kube.EVENTS, namespace, body)
            self._posted[key] = {"name": created["metadata"]["name"], "count": 1}
            if len(self._posted) > self.REMEMBERED:
                self._posted.popitem(last=False)
        except kube.APIError as e:
            self._posted.pop(key, None)
            log.debug("could not record event %s: %s", body["reason"], e)
