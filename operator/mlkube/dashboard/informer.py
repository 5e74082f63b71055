"""List and watch the dashboard's kinds into its store, for as long as it runs.

One task per kind: list (the store's collection is replaced), then watch from the list's
resourceVersion, applying each change, resuming from the newest resourceVersion seen (bookmarks
included) when a watch ends, and listing again after a 410 Expired or a connection failure (after
a growing pause, at most ``MAX_PAUSE`` seconds). A kind the credentials may not list (403) is
reported once on stderr and listed again later, so the other kinds keep working.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.dashboard import store

RESOURCES = {
    "mlprojects": k8s.MLPROJECTS,
    "modelversions": k8s.MODELVERSIONS,
    "modeldeployments": k8s.MODELDEPLOYMENTS,
    "driftmonitors": k8s.DRIFTMONITORS,
    "trainingjobs": k8s.TRAININGJOBS,
    "events": k8s.EVENTS,
}
MAX_PAUSE = 30.0


async def run(client: k8s.Client, data: store.Store, namespace: str | None, *, watch_timeout: int = 300) -> None:
    """Follow every kind of ``store.KINDS`` in ``namespace`` (None: all namespaces) until cancelled."""
    await asyncio.gather(*(follow(client, data, kind, namespace, watch_timeout=watch_timeout) for kind in store.KINDS))


async def follow(client: k8s.Client, data: store.Store, kind: str, namespace: str | None, *, watch_timeout: int) -> None:
    """List then watch one kind, forever (see the module docstring)."""
    resource = RESOURCES[kind]
    pause, warned = 0.5, False
    while True:
        try:
            items, version = await client.snapshot(resource, namespace)
            data.replace(kind, items, now=timestamps.now())
            pause = 0.5
            while version:
                version = await _watch(client, data, kind, resource, namespace, version, timeout=watch_timeout)
        except k8s.ApiError as error:
            if not warned:
                print(f"mlkube dashboard: cannot list {kind}: {error.message}", file=sys.stderr)
                warned = True
        except (TimeoutError, aiohttp.ClientError, ValueError):
            pass  # the API server went away or cut a stream mid-line: list again
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE)


async def _watch(
    client: k8s.Client, data: store.Store, kind: str, resource: k8s.Resource, namespace: str | None, version: str, *, timeout: int
) -> str:
    """One watch stream; returns the resourceVersion to resume from, or "" to list again."""
    async for event_type, obj in client.watch(resource, namespace, resource_version=version, timeout=timeout):
        if event_type == "ERROR":
            return ""
        version = (obj.get("metadata") or {}).get("resourceVersion") or version
        data.apply(kind, event_type, obj, now=timestamps.now())
    return version
