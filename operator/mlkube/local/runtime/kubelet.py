"""The kubelet of the local node: which pods run, their loopback IPs, and pod deletion.

Owns the set of pod workers. Given the current pods, it starts a worker for each pod that
should run, hands out pod IPs from 127.2.0.0/16, and stops the processes of deleted pods:
SIGTERM, SIGKILL after the grace period, then (for a graceful deletion, where the object
still exists with a ``deletionTimestamp``) the final delete, and removal of the pod's files.
Must not decide which pods exist: controllers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import shutil

from mlkube.local.runtime import containers, events, kube, objects, pods

log = logging.getLogger(__name__)

POD_NETWORK = ipaddress.ip_network("127.2.0.0/16")
TERMINAL = ("Succeeded", "Failed")


class Kubelet:
    def __init__(
        self, client: kube.Client, layout: pods.Layout, *, backoff: containers.Backoff, memory_poll: float = 0.5
    ) -> None:
        self._client = client
        self._layout = layout
        self._backoff = backoff
        self._memory_poll = memory_poll
        self._recorder = events.Recorder(client, "kubelet")
        self.workers: dict[str, pods.PodWorker] = {}
        self._stopping: dict[str, asyncio.Task] = {}
        self._ips: dict[str, str] = {}
        self._seen: dict[str, dict] = {}
        # Start each state directory's addresses in its own 127.2.X.0/24, so that two local
        # clusters on one machine rarely hand out the same pod IP.
        digest = hashlib.sha256(str(layout.state_dir.resolve()).encode()).digest()
        self._next_ip = digest[0] * 256 + 1

    def sync(self, current: list[dict]) -> None:
        """Make the running pods match ``current`` (every pod object in the cluster)."""
        by_uid = {p["metadata"]["uid"]: p for p in current}
        self._keep_previous_ips(by_uid)
        for uid, pod in by_uid.items():
            self._seen[uid] = pod
            if uid in self._stopping:
                continue
            if objects.is_terminating(pod):
                self._stop_later(uid, current, delete=True)
            elif uid in self.workers:
                self.workers[uid].pod["metadata"] = pod["metadata"]
            elif (pod.get("status") or {}).get("phase") in TERMINAL:
                self._ips.setdefault(uid, pod["status"].get("podIP", ""))
            else:
                self._start(pod)
        for uid in list(self._seen):
            if uid not in by_uid and uid not in self._stopping:
                self._stop_later(uid, current, delete=False)

    def _stop_later(self, uid: str, current: list[dict], *, delete: bool) -> None:
        others = {objects.key(p) for p in current if p["metadata"]["uid"] != uid}
        self._stopping[uid] = asyncio.create_task(self._stop(uid, self._seen[uid], others, delete=delete), name=f"stop pod {uid}")

    async def shutdown(self, *, grace_cap: float) -> None:
        """Stop every pod's processes (the runtime is stopping); keep the pods' files."""
        await asyncio.gather(
            *(worker.terminate(min(_grace(worker.pod), grace_cap)) for worker in self.workers.values()), return_exceptions=True
        )
        for task in self._stopping.values():
            task.cancel()
        self.workers.clear()

    def _start(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        ip = self._allocate_ip(uid, (pod.get("status") or {}).get("podIP"))
        worker = pods.PodWorker(
            pod,
            client=self._client,
            layout=self._layout,
            pod_ip=ip,
            backoff=self._backoff,
            recorder=self._recorder,
            memory_poll=self._memory_poll,
        )
        self.workers[uid] = worker
        worker.start()

    def _keep_previous_ips(self, by_uid: dict[str, dict]) -> None:
        """Reserve the IPs pods already report (after a runtime restart) before any pod
        gets a new one, so that each keeps its address."""
        taken = set(self._ips.values())
        for uid, pod in by_uid.items():
            ip = (pod.get("status") or {}).get("podIP")
            if uid not in self._ips and ip and ip not in taken and ipaddress.ip_address(ip) in POD_NETWORK:
                self._ips[uid] = ip
                taken.add(ip)

    def _allocate_ip(self, uid: str, previous: str | None) -> str:
        if uid in self._ips:
            return self._ips[uid]
        taken = set(self._ips.values())
        if previous and previous not in taken and ipaddress.ip_address(previous) in POD_NETWORK:
            self._ips[uid] = previous
            return previous
        size = POD_NETWORK.num_addresses - 2
        for step in range(size):
            candidate = str(POD_NETWORK[(self._next_ip + step - 1) % size + 1])
            if candidate not in taken:
                self._next_ip = (self._next_ip + step) % size + 1
                self._ips[uid] = candidate
                return candidate
        raise RuntimeError(f"no free pod IP left in {POD_NETWORK}")

    async def _stop(self, uid: str, pod: dict, other_names: set[tuple[str, str]], *, delete: bool) -> None:
        try:
            worker = self.workers.get(uid)
            if worker is not None:
                await worker.terminate(_grace(pod))
            if delete:
                namespace, name = objects.key(pod)
                with contextlib.suppress(kube.NotFound, kube.Conflict):
                    await self._client.delete(kube.PODS, namespace, name, grace_seconds=0, uid=uid)
            # A pod directory can hold a model copy: remove it off the event loop.
            await asyncio.to_thread(self._remove_files, uid, pod, other_names)
        except kube.APIError as e:
            log.warning("could not finish deleting pod %s: %s", uid, e)
        finally:
            self.workers.pop(uid, None)
            self._ips.pop(uid, None)
            self._stopping.pop(uid, None)
            self._seen.pop(uid, None)

    def _remove_files(self, uid: str, pod: dict, other_names: set[tuple[str, str]]) -> None:
        shutil.rmtree(self._layout.pod_dir(uid), ignore_errors=True)
        if objects.key(pod) not in other_names:
            namespace, name = objects.key(pod)
            shutil.rmtree(self._layout.log_dir(namespace or "default", name), ignore_errors=True)


def _grace(pod: dict) -> float:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if meta.get("deletionGracePeriodSeconds") is not None:
        grace = min(grace, meta["deletionGracePeriodSeconds"])
    return float(grace)
