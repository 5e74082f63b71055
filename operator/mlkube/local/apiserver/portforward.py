"""`pods/portforward`: kubectl's port-forward tunnelled to the local process's TCP port.

kubectl 1.32 upgrades to WebSocket with the subprotocol `SPDY/3.1+portforward.k8s.io` and runs
a SPDY/3.1 session inside it (spdy.py). Each forwarded connection opens two streams carrying
the headers `streamtype` (`error` or `data`), `port` and `requestid`; the server answers each
with SYN_REPLY, connects the data stream to the pod's address (`status.podIP`, then
127.0.0.1, since a process may bind either) on that port, copies bytes both ways, reports a
failure as text on the error stream, and ends both streams with FIN. The same SPDY session over a
connection upgraded to SPDY/3.1 itself (kubectl's fallback, older kubectl) goes through upgrade.py. The kubernetes Python
client speaks `v4.channel.k8s.io` instead (`_Channels`: ports in the query, a data and an error
channel per port). Must not write storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from mlkube.local.apiserver import errors, execstream, spdy, upgrade

logger = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
SPDY_STREAM_PROTOCOL = "portforward.k8s.io"
CHANNEL_PROTOCOL = "v4.channel.k8s.io"
READ_CHUNK = 32 * 1024
CONNECT_TIMEOUT = 5.0


def pod_addresses(pod: dict[str, Any]) -> list[str]:
    """Where the pod's processes listen: its loopback IP (MLKUBE_BIND_HOST), else 127.0.0.1."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        phase = status.get("phase") or "Pending"
        raise errors.bad_request(f"unable to forward port because pod is not running. Current status={phase}")
    addresses = [status["podIP"]] if status.get("podIP") else []
    return addresses + ["127.0.0.1"]


async def serve(request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    addresses = pod_addresses(pod)
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if websocket and PROTOCOL in offered:
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await _Tunnel(_WebSocket(ws), addresses, pod["metadata"]["name"]).run()
        return ws
    if upgrade.wants(request, SPDY_STREAM_PROTOCOL):  # kubectl's fallback, and older kubectl
        raw = upgrade.RawStream(request)
        response = await raw.start(SPDY_STREAM_PROTOCOL)
        await _Tunnel(_Raw(raw), addresses, pod["metadata"]["name"]).run()
        return response
    if websocket and CHANNEL_PROTOCOL in offered:
        ports = _ports(request)
        ws = web.WebSocketResponse(protocols=(CHANNEL_PROTOCOL,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await _Channels(ws, addresses, pod["metadata"]["name"], ports).run()
        return ws
    raise errors.bad_request(
        f"port-forward needs an upgrade to WebSocket ({PROTOCOL} or {CHANNEL_PROTOCOL}) or to SPDY/3.1 ({SPDY_STREAM_PROTOCOL})"
    )


def _ports(request: web.Request) -> list[int]:
    """The `ports` query (repeated or comma-separated), as kubelet reads it for the channel protocol."""
    ports = []
    for value in request.query.getall("ports", []):
        for word in value.split(","):
            try:
                port = int(word)
            except ValueError:
                port = 0
            if not 0 < port < 65536:
                raise errors.bad_request(f"invalid port {word!r}: ports must be integers between 1 and 65535")
            ports.append(port)
    if not ports:
        raise errors.bad_request('query parameter "ports" is required')
    return ports


async def _connect(addresses: list[str], port: int, pod_name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to `port` at the first of the pod's addresses that accepts it."""
    failure: OSError = OSError(f"no address for pod {pod_name}")
    for address in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            failure = exc if isinstance(exc, OSError) else OSError(f"connect to {address}:{port} timed out")
    raise failure


class _Channels:
    """The `v4.channel.k8s.io` port-forward (the kubernetes Python client's): per requested port `i`, data
    channel 2i and error channel 2i+1, each opened by a frame holding the port (uint16, little-endian);
    every port is connected at once, a failure is reported as text on its error channel, and the
    socket closes when every forwarded connection has ended."""

    def __init__(self, ws: web.WebSocketResponse, addresses: list[str], pod_name: str, ports: list[int]) -> None:
        self._ws = ws
        self._addresses = addresses
        self._pod_name = pod_name
        self._ports = ports
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._settled = [asyncio.Event() for _ in ports]  # connected, or failed: data sent before waits for it
        self._lock = asyncio.Lock()

    async def _send(self, channel: int, payload: bytes) -> None:
        async with self._lock:
            if not self._ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await self._ws.send_bytes(bytes([channel]) + payload)

    async def run(self) -> None:
        for index, port in enumerate(self._ports):
            await self._send(2 * index, port.to_bytes(2, "little"))
            await self._send(2 * index + 1, port.to_bytes(2, "little"))
        forwards = asyncio.gather(*(self._forward(index, port) for index, port in enumerate(self._ports)))
        reader = asyncio.create_task(self._read_client())
        try:
            await asyncio.wait([forwards, reader], return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            forwards.cancel()
            await asyncio.gather(reader, forwards, return_exceptions=True)
            for writer in self._writers.values():
                writer.close()
            await self._ws.close()

    async def _read_client(self) -> None:
        async for message in self._ws:
            data = execstream.channel_message(message)
            if len(data) < 2:
                continue
            channel, payload = data[0], data[1:]
            if channel % 2 or channel // 2 >= len(self._ports):
                continue
            await self._settled[channel // 2].wait()
            writer = self._writers.get(channel // 2)
            if writer is not None and not writer.is_closing():
                writer.write(payload)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    async def _forward(self, index: int, port: int) -> None:
        try:
            reader, self._writers[index] = await _connect(self._addresses, port, self._pod_name)
        except OSError as exc:
            await self._send(2 * index + 1, f"error forwarding port {port} to pod {self._pod_name}: {exc}".encode())
            return
        finally:
            self._settled[index].set()
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(READ_CHUNK):
                await self._send(2 * index, chunk)


@dataclasses.dataclass
class _Forward:
    """One forwarded connection: its error and data streams and the TCP connection behind them."""

    port: int
    error_stream: int = 0
    data_stream: int = 0
    writer: asyncio.StreamWriter | None = None
    connected: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class _WebSocket:
    """The SPDY byte stream carried in WebSocket binary messages (kubectl 1.31+)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionResetError):
            await self._ws.send_bytes(data)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for message in self._ws:
            if message.type == WSMsgType.BINARY:
                yield bytes(message.data)

    async def close(self) -> None:
        await self._ws.close()


class _Raw:
    """The SPDY byte stream of a connection upgraded to SPDY/3.1 (kubectl's fallback)."""

    def __init__(self, raw: upgrade.RawStream) -> None:
        self._raw = raw

    @property
    def closed(self) -> bool:
        return self._raw.closed

    async def send(self, data: bytes) -> None:
        await self._raw.send(data)

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self._raw.receive():
            yield data

    async def close(self) -> None:
        await self._raw.close()


class _Tunnel:
    def __init__(self, pipe: _WebSocket | _Raw, addresses: list[str], pod_name: str) -> None:
        self._pipe = pipe
        self._addresses = addresses
        self._pod_name = pod_name
        self._codec = spdy.Codec()
        self._lock = asyncio.Lock()
        self._forwards: dict[str, _Forward] = {}
        self._by_stream: dict[int, _Forward] = {}

    async def _send(self, frame: bytes | None = None, *, reply_to: int = 0) -> None:
        """Send one frame; `reply_to` makes it a SYN_REPLY (encoded under the lock: header compression is stateful)."""
        async with self._lock:
            if reply_to:
                frame = self._codec.syn_reply(reply_to)
            if frame and not self._pipe.closed:
                await self._pipe.send(frame)

    async def run(self) -> None:
        try:
            async for chunk in self._pipe.chunks():
                try:
                    frames = self._codec.feed(chunk)
                except spdy.ProtocolError as exc:
                    logger.warning("port-forward to pod %s: %s", self._pod_name, exc)
                    break
                for frame in frames:
                    if not await self._handle(frame):
                        return
        finally:
            for forward in self._forwards.values():
                if forward.task is not None:
                    forward.task.cancel()
                if forward.writer is not None:
                    forward.writer.close()
            await self._pipe.close()

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one client frame; False ends the session (GOAWAY)."""
        if frame.kind == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.kind == 0:
            forward = self._by_stream.get(frame.stream_id)
            if forward is not None and frame.stream_id == forward.data_stream:
                await forward.connected.wait()
                if forward.writer is not None and not forward.writer.is_closing():
                    if frame.data:
                        forward.writer.write(frame.data)
                        with contextlib.suppress(ConnectionError):
                            await forward.writer.drain()
                    if frame.fin and forward.writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            forward.writer.write_eof()
        elif frame.kind == spdy.PING:
            await self._send(spdy.ping(frame.value))
        elif frame.kind == spdy.RST_STREAM:
            forward = self._by_stream.get(frame.stream_id)
            if forward is not None and forward.writer is not None:
                forward.writer.close()
        elif frame.kind == spdy.GOAWAY:
            return False
        return True

    async def _open(self, frame: spdy.Frame) -> None:
        headers = frame.headers
        stream_type, request_id = headers.get("streamtype", ""), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        if stream_type not in ("error", "data") or not 0 < port < 65536:
            await self._send(spdy.rst_stream(frame.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        forward = self._forwards.setdefault(request_id or str(frame.stream_id), _Forward(port))
        self._by_stream[frame.stream_id] = forward
        await self._send(reply_to=frame.stream_id)
        if stream_type == "error":
            forward.error_stream = frame.stream_id
        else:
            forward.data_stream = frame.stream_id
            forward.task = asyncio.create_task(self._forward(forward), name=f"port-forward {self._pod_name}:{port}")

    async def _forward(self, forward: _Forward) -> None:
        try:
            reader, forward.writer = await _connect(self._addresses, forward.port, self._pod_name)
        except OSError as exc:
            forward.connected.set()
            message = f"error forwarding port {forward.port} to pod {self._pod_name}: {exc}"
            if forward.error_stream:
                await self._send(spdy.data(forward.error_stream, message.encode(), fin=True))
            await self._send(spdy.data(forward.data_stream, fin=True))
            return
        forward.connected.set()
        try:
            while chunk := await reader.read(READ_CHUNK):
                await self._send(spdy.data(forward.data_stream, chunk))
        except ConnectionError:
            pass
        finally:
            await self._send(spdy.data(forward.data_stream, fin=True))
            if forward.error_stream:
                await self._send(spdy.data(forward.error_stream, fin=True))
            forward.writer.close()
