"""The runtime's main loop: watch the cluster, reconcile every controller, stop cleanly.

Owns the start-up (kill the processes a crashed runtime left behind, fill the caches), the
level-based loop (after any change, and at least every ``resync`` seconds for deadlines,
back-offs and TTLs, run the Job, Deployment and InferenceService controllers, then the
kubelet, then the Service proxy) and the shutdown (every container process stopped, every
listener closed). A failing controller is logged and retried on the next pass; it never
stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import pathlib
import threading
from collections.abc import Iterator

from mlkube.local.runtime import (
    containers,
    deployments,
    events,
    inferenceservices,
    jobs,
    kube,
    kubelet,
    node,
    pods,
    processes,
    replication,
    services,
    store,
)

log = logging.getLogger(__name__)

WATCHED = (
    kube.PODS,
    kube.SERVICES,
    kube.ENDPOINTS,
    kube.JOBS,
    kube.DEPLOYMENTS,
    kube.REPLICATIONCONTROLLERS,
    kube.DAEMONSETS,
    kube.NAMESPACES,
    kube.SERVICEACCOUNTS,
    kube.INFERENCESERVICES,
    kube.SERVINGRUNTIMES,
    kube.CLUSTERSERVINGRUNTIMES,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Timings of the runtime; the defaults are the kubelet's and the Job controller's."""

    backoff: containers.Backoff = dataclasses.field(default_factory=containers.Backoff)
    job_retry_base: float = 10.0
    resync: float = 1.0
    shutdown_grace_cap: float = 10.0
    memory_poll: float = 0.5


async def serve(
    kubeconfig: str | pathlib.Path, state_dir: str | pathlib.Path, stop: asyncio.Event, settings: Settings = Settings()
) -> None:
    """Run the runtime against the API server of ``kubeconfig`` until ``stop`` is set."""
    layout = pods.Layout(pathlib.Path(state_dir))
    with _exclusive(layout):
        await _serve(kubeconfig, layout, stop, settings)


@contextlib.contextmanager
def _exclusive(layout: pods.Layout) -> Iterator[None]:
    """Hold the state directory's runtime lock: a second runtime on the same directory
    would kill this one's processes as orphans."""
    path = layout.state_dir / "runtime" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise RuntimeError(
                f"another process runtime (pid {lock.read().strip() or '?'}) is using {layout.state_dir}; stop it first"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


async def _serve(kubeconfig: str | pathlib.Path, layout: pods.Layout, stop: asyncio.Event, settings: Settings) -> None:
    for owner in processes.kill_orphans(layout.records):
        log.info("killed container %s left running by a previous runtime", owner)
    dirty = asyncio.Event()
    async with kube.Client(str(kubeconfig)) as client:
        cluster = store.Store(client, dirty.set)
        watches = [asyncio.create_task(cluster.watch(r).run(), name=f"watch {r.plural}") for r in WATCHED]
        local_kubelet = kubelet.Kubelet(client, layout, backoff=settings.backoff, memory_poll=settings.memory_poll)
        proxy = services.Proxy()
        registrar = node.Registrar(client, str(layout.state_dir))
        controllers = Controllers(
            cluster,
            local_kubelet,
            proxy,
            settings,
            job_events=events.Recorder(client, "job-controller"),
            deployment_events=events.Recorder(client, "deployment-controller"),
            service_events=events.Recorder(client, "kube-proxy"),
            replication_events=events.Recorder(client, "replication-controller"),
            daemonset_events=events.Recorder(client, "daemonset-controller"),
            registrar=registrar,
        )
        try:
            await _until_synced(cluster, stop)
            while not stop.is_set():
                dirty.clear()
                await controllers.reconcile()
                await _first_of(dirty, stop, timeout=settings.resync)
                await asyncio.sleep(0.02)  # let a burst of events land in one pass
        finally:
            await local_kubelet.shutdown(grace_cap=settings.shutdown_grace_cap)
            await registrar.stop()
            await proxy.close()
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)


def run(
    kubeconfig: str | pathlib.Path, state_dir: str | pathlib.Path, stop_event: threading.Event, settings: Settings = Settings()
) -> None:
    """Blocking entry point: run the runtime in this thread until ``stop_event`` is set."""

    async def main() -> None:
        stop = asyncio.Event()
        waiter = asyncio.create_task(_watch_thread_event(stop_event, stop))
        try:
            await serve(kubeconfig, state_dir, stop, settings)
        finally:
            waiter.cancel()

    asyncio.run(main())


async def _watch_thread_event(source: threading.Event, target: asyncio.Event) -> None:
    while not source.is_set():
        await asyncio.sleep(0.1)
    target.set()


async def _until_synced(cluster: store.Store, stop: asyncio.Event) -> None:
    synced = asyncio.gather(*(i.synced.wait() for i in cluster.informers.values()))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([synced, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


@dataclasses.dataclass
class Controllers:
    """Everything one reconcile pass runs, in order."""

    cluster: store.Store
    local_kubelet: kubelet.Kubelet
    proxy: services.Proxy
    settings: Settings
    job_events: events.Recorder
    deployment_events: events.Recorder
    service_events: events.Recorder
    replication_events: events.Recorder
    daemonset_events: events.Recorder
    registrar: node.Registrar

    async def reconcile(self) -> None:
        cluster = self.cluster
        steps = [
            ("node", self.registrar.sync),
            ("replication", lambda: replication.sync(cluster, self.replication_events, self.daemonset_events)),
            ("jobs", lambda: jobs.sync(cluster, self.job_events, retry_base=self.settings.job_retry_base)),
            ("deployments", lambda: deployments.sync(cluster, self.deployment_events)),
            ("inferenceservices", lambda: inferenceservices.sync(cluster, self.proxy)),
            ("kubelet", self._kubelet),
            ("services", lambda: services.sync(cluster, self.proxy, self.service_events)),
        ]
        for name, step in steps:
            try:
                await step()
            except kube.APIError as e:
                log.warning("%s: %s (retrying)", name, e)
            except Exception:
                log.exception("%s controller failed (retrying)", name)

    async def _kubelet(self) -> None:
        self.local_kubelet.sync(self.cluster.list(kube.PODS))
