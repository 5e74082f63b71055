"""Pod logs (`GET .../pods/{name}/log`) served from the files the process runtime writes.

Layout: `STATE_DIR/logs/{namespace}/{pod}/{container}/{restartCount}.log`; the newest file is the
current container, the one before it `previous`. Owns container selection and the upstream
errors, tailLines, limitBytes, sinceSeconds (by file time), and `follow`, which streams until the
pod is gone or the container has terminated and its file stopped growing. Must not write logs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from mlkube.local.apiserver import errors

OBJECTS: web.AppKey[Any] = web.AppKey("objects", object)
"""The application's key of the server's ``objects.Objects`` (the store a log stream watches)."""

FOLLOW_POLL_SECONDS = 0.2


def _containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]


def _container(pod: dict[str, Any], requested: str) -> str:
    names = _containers(pod)
    pod_name = pod["metadata"]["name"]
    if not requested:
        main = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        if len(main) == 1:
            return main[0]
        raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(main)}]")
    if requested not in names:
        raise errors.bad_request(f"container {requested} is not valid for pod {pod_name}")
    return requested


def log_files(state_dir: str, namespace: str, pod: str, container: str) -> list[str]:
    """The container's log files, oldest restart first."""
    directory = os.path.join(state_dir, "logs", namespace, pod, container)
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".log") and n[:-4].isdigit()]
    except FileNotFoundError:
        return []
    return [os.path.join(directory, n) for n in sorted(names, key=lambda n: int(n[:-4]))]


def _terminated(pod: dict[str, Any], container: str) -> bool:
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if entry.get("name") == container:
            return "terminated" in (entry.get("state") or {})
    return status.get("phase") in ("Succeeded", "Failed")


def _select(data: bytes, *, tail: int | None, limit: int | None) -> bytes:
    if tail is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail:]) if tail > 0 else b""
    if limit is not None:
        data = data[:limit]
    return data


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise errors.bad_request(f"{name}: Invalid value: {value!r}: must be an integer") from exc
    if number < 0 or (name == "limitBytes" and number == 0):
        bound = "greater than 0" if name == "limitBytes" else "greater than or equal to 0"
        raise errors.bad_request(f"{name}: Invalid value: {number}: must be {bound}")
    return number


async def serve(request: web.Request, pod: dict[str, Any], *, state_dir: str) -> web.StreamResponse:
    namespace, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    container = _container(pod, request.query.get("container", ""))
    previous = request.query.get("previous", "").lower() in ("true", "1")
    follow = request.query.get("follow", "").lower() in ("true", "1")
    tail, limit, since = _int(request, "tailLines"), _int(request, "limitBytes"), _int(request, "sinceSeconds")
    files = log_files(state_dir, namespace, name, container)
    if previous:
        if len(files) < 2:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        path = files[-2]
    elif files:
        path = files[-1]
    else:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: no log has been written yet')
    # Local log files, read whole: a short read on the event loop, as the file is already on disk.
    with open(path, "rb") as handle:  # noqa: ASYNC230
        data = handle.read()
    offset = len(data)
    if since is not None and os.path.getmtime(path) < time.time() - since:  # noqa: ASYNC240
        data = b""
    data = _select(data, tail=tail, limit=limit)
    if not follow or previous:
        return web.Response(body=data, content_type="text/plain")
    return await _follow(request, pod, path, data, offset=offset, container=container, limit=limit)


async def _follow(
    request: web.Request, pod: dict[str, Any], path: str, first: bytes, *, offset: int, container: str, limit: int | None
) -> web.StreamResponse:
    """Stream the file as it grows until the pod is deleted or the container ended and the file stopped growing."""
    store = request.app[OBJECTS].store
    namespace, name, uid = pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod["metadata"]["uid"]

    def running() -> bool:
        current = store.get("/pods", namespace, name)
        return current is not None and current["metadata"]["uid"] == uid and not _terminated(current, container)

    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await response.write(first)
        await _copy_growing_file(
            response, path, offset=offset, budget=None if limit is None else limit - len(first), running=running
        )
    except ConnectionResetError:
        return response  # the client went away
    await response.write_eof()
    return response


async def _copy_growing_file(
    response: web.StreamResponse, path: str, *, offset: int, budget: int | None, running: Callable[[], bool]
) -> None:
    """Copy what is appended to `path` after `offset` (at most `budget` bytes) while `running()` holds."""
    with open(path, "rb") as handle:  # noqa: ASYNC230 (a local file, read in what has been appended)
        handle.seek(offset)
        while budget is None or budget > 0:
            chunk = handle.read()
            if chunk:
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                await response.write(chunk)
            elif not running():
                return
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
