"""`metrics.k8s.io/v1beta1`: PodMetrics and NodeMetrics measured from the local processes, for `kubectl top`.

Plays metrics-server: a pod's containers are the process groups the runtime started (their
pid is in the container's exec record, runtime/execenv.py); a container's usage is the CPU
time rate and resident memory of its group, the node's is the whole machine's (/proc/stat
busy time, MemTotal - MemAvailable), read by runtime/machine.py. CPU is a rate over a window:
the time since the previous request when it is between MIN_WINDOW and MAX_WINDOW seconds ago,
else a fresh MIN_WINDOW measurement (so the first `kubectl top` waits half a second). Pods
without a running container have no metrics (404 for a get, left out of a list), as upstream.
Read only: get and list; must not write storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from typing import Any

from aiohttp import web

from mlkube.local.apiserver import decoding, errors, storage
from mlkube.local.runtime import execenv, machine

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
MIN_WINDOW, MAX_WINDOW = 0.5, 60.0


@dataclasses.dataclass
class _Sample:
    at: float
    node: machine.Usage
    groups: dict[int, machine.Usage]


class Metrics:
    """The sampler (it keeps the previous sample, to measure CPU rates over the time between requests)."""

    def __init__(self, store: storage.Store, state_dir: str) -> None:
        self._store = store
        self._state_dir = state_dir
        self._previous: _Sample | None = None

    async def answer(self, request: web.Request, target: decoding.Target) -> dict[str, Any]:
        """The body of a get or list of PodMetrics or NodeMetrics."""
        if request.method != "GET" or target.subresource:
            raise errors.method_not_allowed()
        if decoding.flag(request.query.get("watch")):
            raise errors.method_not_allowed("watch is not supported on metrics.k8s.io resources")
        pods = target.rtype.plural == "pods"
        containers = self._containers(target.namespace or None, target.name) if pods else {}
        first, last = await self._window({pid for _, entries in containers.values() for _, pid in entries})
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        window = f"{last.at - first.at:.3f}s"
        if pods:
            items = [
                self._pod_metrics(pod, entries, first, last, stamp, window)
                for pod, entries in containers.values()
                if any(pid in last.groups for _, pid in entries)
            ]
        else:
            items = [self._node_metrics(node, first, last, stamp, window) for node in self._store.list("/nodes")]
            items = [i for i in items if not target.name or i["metadata"]["name"] == target.name]
        if target.name:
            if not items:
                raise errors.not_found(target.rtype.kind.lower(), GROUP, target.name)
            return items[0]
        selector = decoding.selector(request, target.rtype)
        items = [i for i in items if selector.matches(i)]
        return {"kind": f"{target.rtype.kind}List", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}

    def _containers(self, namespace: str | None, name: str) -> dict[str, tuple[dict, list[tuple[str, int]]]]:
        """uid -> (pod, [(container, process group)]) of the running containers of the selected pods."""
        found = {}
        for pod in self._store.list("/pods", namespace):
            if name and pod["metadata"]["name"] != name:
                continue
            entries = []
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if "running" in (status.get("state") or {}):
                    record = execenv.read(self._state_dir, pod["metadata"]["uid"], status["name"])
                    if record is not None:
                        entries.append((status["name"], record.pid))
            if entries:
                found[pod["metadata"]["uid"]] = (pod, entries)
        return found

    async def _window(self, pgids: set[int]) -> tuple[_Sample, _Sample]:
        """Two samples at least MIN_WINDOW apart: the previous request's, if recent and covering `pgids`, and now."""
        previous = self._previous
        fresh = previous is None or not MIN_WINDOW <= time.monotonic() - previous.at <= MAX_WINDOW
        if not fresh and previous is not None:
            unseen = pgids - set(previous.groups)
            fresh = bool(unseen and machine.group_usage(unseen))  # a container started since: measure afresh
        first = _sample(pgids) if fresh or previous is None else previous
        if fresh:
            await asyncio.sleep(MIN_WINDOW)
        self._previous = last = _sample(pgids)
        return first, last

    def _pod_metrics(
        self, pod: dict, entries: list[tuple[str, int]], first: _Sample, last: _Sample, stamp: str, window: str
    ) -> dict[str, Any]:
        meta = pod["metadata"]
        elapsed = max(last.at - first.at, 1e-6)
        containers = []
        for container, pid in entries:
            now, before = last.groups.get(pid), first.groups.get(pid)
            if now is None:
                continue
            rate = max(now.cpu_seconds - (before.cpu_seconds if before else now.cpu_seconds), 0.0) / elapsed
            containers.append({"name": container, "usage": _usage(rate, now.memory_bytes)})
        return {
            "kind": "PodMetrics",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "labels": dict(meta.get("labels") or {}),
                "creationTimestamp": stamp,
            },
            "timestamp": stamp,
            "window": window,
            "containers": containers,
        }

    @staticmethod
    def _node_metrics(node: dict, first: _Sample, last: _Sample, stamp: str, window: str) -> dict[str, Any]:
        rate = max(last.node.cpu_seconds - first.node.cpu_seconds, 0.0) / max(last.at - first.at, 1e-6)
        return {
            "kind": "NodeMetrics",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {
                "name": node["metadata"]["name"],
                "labels": dict(node["metadata"].get("labels") or {}),
                "creationTimestamp": stamp,
            },
            "timestamp": stamp,
            "window": window,
            "usage": _usage(rate, last.node.memory_bytes),
        }


def _sample(pgids: set[int]) -> _Sample:
    return _Sample(time.monotonic(), machine.machine_usage(), machine.group_usage(pgids))


def _usage(cores: float, memory_bytes: int) -> dict[str, str]:
    """Quantities as metrics-server writes them: CPU in nanocores, memory in Ki."""
    return {"cpu": f"{round(cores * 1e9)}n", "memory": f"{memory_bytes // 1024}Ki"}
