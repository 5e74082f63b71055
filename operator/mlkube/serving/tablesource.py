"""Where the router's routing table comes from: a watched ConfigMap, or a polled file.

Owns: delivering the current `routes.json` text to a callback, on the router's event loop.
- `ConfigMapSource` reads ConfigMap `NAMESPACE/NAME` through the Kubernetes API (the pod's
  service account, its files resolved through `mlkube.common.containerpath` so the local runtime's
  re-rooted mount works too; else the kubeconfig from `KUBECONFIG`), then WATCHES it, so a
  change reaches the router within a watch event's latency (well under 2 s) and a restarted
  router starts from the stored table. The watch runs in a daemon thread because the
  `kubernetes` client is blocking; it re-reads and re-watches after errors, expiries (410) and
  a missing ConfigMap.
- `FileSource` polls a file's mtime every 0.5 s (tests, benchmarks, local experiments).

Must not: parse or validate the table (the router does), or write to the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from mlkube.common import containerpath

log = logging.getLogger("mlkube.serving.tablesource")

ROUTES_KEY = "routes.json"
RETRY_SECONDS = 1.0
WATCH_SECONDS = 60


class FileSource:
    """Calls `deliver(text)` with the file's content at start and whenever its mtime changes."""

    def __init__(self, path: str, deliver: Callable[[str], None], *, interval: float = 0.5):
        self.path = path
        self.deliver = deliver
        self.interval = interval
        self._mtime: float | None = None
        self._task: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.poll()
        self._task = loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def poll(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime == self._mtime:
                return
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            log.warning("routes file %s unreadable: %s", self.path, e)
            return
        self._mtime = mtime
        self.deliver(text)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.poll()


class ConfigMapSource:
    """Calls `deliver(text)` on `loop` with the ConfigMap's `routes.json` now and on every change."""

    def __init__(self, namespace: str, name: str, deliver: Callable[[str], None]):
        self.namespace = namespace
        self.name = name
        self.deliver = deliver
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        threading.Thread(target=self._run, name=f"watch-{self.name}", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _hand_over(self, data: dict | None) -> None:
        text = (data or {}).get(ROUTES_KEY)
        if text is None:
            log.warning("ConfigMap %s/%s has no key %s; keeping the current table", self.namespace, self.name, ROUTES_KEY)
            return
        self._loop.call_soon_threadsafe(self.deliver, text)

    def _run(self) -> None:
        from kubernetes import client, config, watch
        from kubernetes.client import exceptions

        try:
            _load_in_cluster_config()
        except config.ConfigException:
            config.load_kube_config()  # honours KUBECONFIG
        api = client.CoreV1Api()
        while not self._stopped.is_set():
            try:
                current = api.read_namespaced_config_map(self.name, self.namespace)
                self._hand_over(current.data)
                stream = watch.Watch().stream(
                    api.list_namespaced_config_map,
                    self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=current.metadata.resource_version,
                    timeout_seconds=WATCH_SECONDS,
                )
                for event in stream:
                    if self._stopped.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._hand_over(event["object"].data)
                    elif event["type"] == "ERROR":  # e.g. the resource version expired: re-read
                        break
                    elif event["type"] == "DELETED":
                        log.warning("ConfigMap %s/%s deleted; keeping the current table", self.namespace, self.name)
            except exceptions.ApiException as e:
                if e.status == 404:
                    log.info("waiting for ConfigMap %s/%s", self.namespace, self.name)
                elif e.status != 410:  # 410: the watch expired; re-read and re-watch at once
                    log.warning("reading ConfigMap %s/%s failed: %s %s", self.namespace, self.name, e.status, e.reason)
                if e.status != 410:
                    time.sleep(RETRY_SECONDS)
            except Exception as e:
                log.warning("watching ConfigMap %s/%s failed: %s", self.namespace, self.name, e)
                time.sleep(RETRY_SECONDS)


def _load_in_cluster_config() -> None:
    """The service account the kubelet mounts, at its container path (re-rooted in local mode)."""
    from kubernetes.config import incluster_config

    incluster_config.InClusterConfigLoader(
        token_filename=str(containerpath.resolve(incluster_config.SERVICE_TOKEN_FILENAME)),
        cert_filename=str(containerpath.resolve(incluster_config.SERVICE_CERT_FILENAME)),
    ).load_and_set()
