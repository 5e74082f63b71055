"""Services on loopback: a TCP proxy on each ``clusterIP:port`` and the Endpoints objects.

Owns what kube-proxy and the endpoints controller do for a local node. For every Service
with a selector and a ``spec.clusterIP`` (127.1.x.y, allocated by the API server), one
listener per TCP port accepts connections and forwards each, round robin, to a ready pod the
selector matches (``targetPort`` by number or by container port name, on the pod's loopback
``podIP``). With no ready pod, connections are closed at once. The ``Endpoints`` object of
each such Service lists the ready and not-ready addresses. Must not touch pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging

from mlkube.local.runtime import events, kube, objects, podspec, store

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "mlkube-local-runtime"}
COPY_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Listener:
    namespace: str
    service: str
    address: str
    port: int


def endpoints_for(service: dict, pods: list[dict]) -> dict:
    """The Endpoints object of ``service`` given the pods of its namespace (pure)."""
    meta, spec = service["metadata"], service.get("spec") or {}
    subsets: dict[tuple, dict] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or objects.is_terminating(pod) or not objects.matches(spec.get("selector"), pod["metadata"].get("labels")):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ports = []
        for port in spec.get("ports") or []:
            number = podspec.container_port(pod, port.get("targetPort", port["port"]))
            if number is not None:
                ports.append(
                    {
                        **({"name": port["name"]} if port.get("name") else {}),
                        "port": number,
                        "protocol": port.get("protocol", "TCP"),
                    }
                )
        if not ports:
            continue
        subset = subsets.setdefault(tuple(p["port"] for p in ports), {"ports": ports})
        address = {
            "ip": ip,
            "targetRef": {
                "kind": "Pod",
                "namespace": meta.get("namespace"),
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }
        field = "addresses" if objects.is_true(pod, "Ready") else "notReadyAddresses"
        subset.setdefault(field, []).append(address)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace") or "default",
            "labels": {**(meta.get("labels") or {}), **MANAGED_BY},
        },
        "subsets": list(subsets.values()),
    }


def backends(endpoints: dict, port: dict) -> list[tuple[str, int]]:
    """Ready (address, port) pairs of ``endpoints`` for one Service port."""
    result = []
    for subset in endpoints.get("subsets") or []:
        matching = [p for p in subset["ports"] if p.get("name") == port.get("name")]
        for address in subset.get("addresses") or []:
            for p in matching:
                result.append((address["ip"], p["port"]))
    return result


def is_proxied(service: dict) -> bool:
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    return bool(spec.get("selector")) and bool(ip) and ip != "None" and spec.get("type") != "ExternalName"


class Proxy:
    """The listeners of every Service and the backends they forward to."""

    def __init__(self) -> None:
        self.failures: dict[Listener, str] = {}  # listeners that could not bind, and why
        self._servers: dict[Listener, asyncio.Server] = {}
        self._backends: dict[Listener, list[tuple[str, int]]] = {}
        self._turns: dict[Listener, itertools.count] = {}

    async def sync(self, wanted: dict[Listener, list[tuple[str, int]]]) -> None:
        self._backends = wanted
        for listener in list(self._servers):
            if listener not in wanted:
                self._servers.pop(listener).close()
        for listener in wanted.keys() - self._servers.keys():
            try:
                self._servers[listener] = await asyncio.start_server(
                    lambda r, w, at=listener: self._forward(at, r, w),
                    host=listener.address,
                    port=listener.port,
                    reuse_address=True,
                )
                self.failures.pop(listener, None)
            except OSError as e:
                if listener not in self.failures:
                    log.warning(
                        "service %s/%s: cannot listen on %s:%d: %s",
                        listener.namespace,
                        listener.service,
                        listener.address,
                        listener.port,
                        e,
                    )
                self.failures[listener] = e.strerror or str(e)
        for listener in list(self.failures):
            if listener not in wanted:
                del self.failures[listener]

    def is_serving(self, address: str, port: int) -> bool:
        return any(s.address == address and s.port == port for s in self._servers)

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()

    async def _forward(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        choices = self._backends.get(listener) or []
        turn = next(self._turns.setdefault(listener, itertools.count()))
        # Round robin; a backend that refuses (a pod stopping) passes the turn on.
        for attempt in range(len(choices)):
            host, port = choices[(turn + attempt) % len(choices)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
                writer.close()
            return
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(COPY_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def sync(cluster: store.Store, proxy: Proxy, recorder: events.Recorder) -> None:
    """Point the listeners at the ready pods, then write every Service's Endpoints."""
    wanted: dict[Listener, list[tuple[str, int]]] = {}
    services = {objects.key(s): s for s in cluster.list(kube.SERVICES) if is_proxied(s)}
    desired = {key: endpoints_for(service, cluster.list(kube.PODS, key[0])) for key, service in services.items()}
    for key, service in services.items():
        for port in service["spec"].get("ports") or []:
            if port.get("protocol", "TCP") == "TCP":
                listener = Listener(key[0], key[1], service["spec"]["clusterIP"], port["port"])
                wanted[listener] = backends(desired[key], port)
    # Traffic first (no await before the backends are replaced), bookkeeping second.
    failed_before = dict(proxy.failures)
    await proxy.sync(wanted)
    for listener, reason in proxy.failures.items():
        service = services.get((listener.namespace, listener.service))
        if service is not None and failed_before.get(listener) != reason:
            recorder.record(
                service,
                "FailedToListen",
                f"cannot listen on {listener.address}:{listener.port}: {reason} (another local cluster or process holds it?)",
                warning=True,
            )
    for key, endpoints in desired.items():
        current = cluster.get(kube.ENDPOINTS, *key)
        if current is None:
            with contextlib.suppress(kube.Conflict):
                await cluster.create(kube.ENDPOINTS, endpoints)
        elif (current.get("subsets") or []) != endpoints["subsets"] or not objects.matches(
            {"matchLabels": MANAGED_BY}, current["metadata"].get("labels")
        ):
            await cluster.patch(
                kube.ENDPOINTS,
                current,
                {"metadata": {"labels": endpoints["metadata"]["labels"]}, "subsets": endpoints["subsets"]},
            )
    for endpoints in cluster.list(kube.ENDPOINTS):
        managed = objects.matches({"matchLabels": MANAGED_BY}, endpoints["metadata"].get("labels"))
        if managed and objects.key(endpoints) not in services:
            await cluster.delete(kube.ENDPOINTS, endpoints)
