"""A connection taken over after `101 Switching Protocols` for a protocol aiohttp does not parse (SPDY/3.1).

kubectl falls back to a plain SPDY upgrade (`Connection: Upgrade`, `Upgrade: SPDY/3.1`,
`X-Stream-Protocol-Version: ...`) when WebSockets are turned off (KUBECTL_PORT_FORWARD_WEBSOCKETS=false)
and older kubectl versions only speak it. Owns answering 101 with the negotiated stream
protocol and exchanging raw bytes afterwards: what arrives is queued (`receive` returns b""
at the end), what is sent is written to the socket with a bounded write buffer. Uses aiohttp's
protocol hooks the way its own WebSocketResponse does (`set_parser`).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

WRITE_BUFFER_LIMIT = 1 << 20  # bytes queued in the socket before send waits


def wants(request: web.Request, protocol: str) -> bool:
    """Whether the request asks to upgrade to SPDY/3.1 offering `protocol` as its stream protocol."""
    offered = {p.strip() for p in request.headers.getall("X-Stream-Protocol-Version", []) for p in p.split(",")}
    return (
        request.headers.get("Upgrade", "").lower() == "spdy/3.1"
        and "upgrade" in request.headers.get("Connection", "").lower()
        and protocol in offered
    )


class RawStream:
    """The byte stream of an upgraded connection; `start` answers 101 first."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = False

    async def start(self, protocol: str) -> web.StreamResponse:
        response = web.StreamResponse(
            status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol}
        )
        response.force_close()
        await response.prepare(self._request)
        self._request.protocol.set_parser(self)  # type: ignore[arg-type]  # any object with feed_data/feed_eof
        self._request.protocol.keep_alive(False)
        return response

    # -- the parser interface aiohttp feeds -----------------------------------------------------
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(b"")

    # -- the stream ------------------------------------------------------------------------------
    async def receive(self) -> bytes:
        """The next bytes from the client; b"" once the connection has ended."""
        data = await self._queue.get()
        if not data:
            self.closed = True
        return data

    async def send(self, data: bytes) -> None:
        transport = self._request.transport
        if self.closed or transport is None or transport.is_closing():
            self.closed = True
            return
        transport.write(data)
        while transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT and not transport.is_closing():
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.closed = True
        transport = self._request.transport
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()
