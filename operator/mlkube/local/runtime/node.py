"""The local Node object: registered by the runtime as a kubelet registers its node.

Owns the Node's shape (labels, capacity = allocatable read from the machine, addresses,
nodeInfo, the pressure and Ready conditions) and its life: created or refreshed when the
runtime starts, `Ready` re-posted every `HEARTBEAT_SECONDS`, and `Ready=Unknown` when the
runtime stops (what the node lifecycle controller would conclude). The API server schedules
pods onto it (sets `spec.nodeName`) once it exists.
"""

from __future__ import annotations

import logging
import time

from mlkube.local.runtime import kube, machine, objects

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
POD_CIDR = "127.2.0.0/16"


def desired(state_dir: str, *, ready: bool = True, previous: dict | None = None) -> dict:
    """The Node object for this machine (pure apart from the machine readings)."""
    name = machine.node_name()
    stamp = objects.now()
    capacity = machine.capacity(state_dir)
    conditions = [
        objects.condition(kind, False, reason, message, previous=previous, at=stamp)
        for kind, reason, message in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    if ready:
        ready_condition = objects.condition(
            "Ready", True, "KubeletReady", "kubelet is posting ready status", previous=previous, at=stamp
        )
    else:
        ready_condition = {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": stamp,
        }
    conditions.append(ready_condition)
    for condition in conditions:
        condition["lastHeartbeatTime"] = stamp
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": machine.labels()},
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": machine.node_info(),
        },
    }


class Registrar:
    """Keeps the Node object of this machine current."""

    def __init__(self, client: kube.Client, state_dir: str) -> None:
        self._client = client
        self._state_dir = state_dir
        self._last_post = 0.0

    async def sync(self) -> None:
        """Register (or refresh) the Node on the first call, then post status every HEARTBEAT_SECONDS."""
        if self._last_post and time.monotonic() - self._last_post < HEARTBEAT_SECONDS:
            return
        await self._post(ready=True)

    async def stop(self) -> None:
        try:
            await self._post(ready=False)
        except kube.APIError as e:
            log.warning("could not mark node %s not ready: %s", machine.node_name(), e)

    async def _post(self, *, ready: bool) -> None:
        name = machine.node_name()
        try:
            current = await self._client.get(kube.NODES, None, name)
        except kube.NotFound:
            node = desired(self._state_dir, ready=ready)
            current = await self._client.create(kube.NODES, None, {k: v for k, v in node.items() if k != "status"})
            log.info("registered node %s", name)
        node = desired(self._state_dir, ready=ready, previous=(current.get("status") or {}).get("conditions"))
        await self._client.patch(kube.NODES, None, name, {"metadata": {"labels": node["metadata"]["labels"]}})
        await self._client.patch(kube.NODES, None, name, {"status": node["status"]}, sub="status")
        self._last_post = time.monotonic()
