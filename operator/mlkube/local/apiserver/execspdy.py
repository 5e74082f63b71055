"""`kubectl exec` over a connection upgraded to SPDY/3.1 (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, kubectl before 1.30).

The remotecommand `v4.channel.k8s.io` protocol on SPDY: the client opens one stream per channel,
named by its `streamtype` header (`error`, `stdin`, `stdout`, `stderr`, `resize`), before any data
flows. `SpdyChannels` answers each, then presents the session to execstream as the channel-numbered
messages the WebSocket protocol uses: stdin data, a stdin FIN as the v5 "close stdin" message,
resize JSON; what execstream sends on a channel goes out as DATA on that stream, and closing ends
every stream the server writes with FIN. Must not write storage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mlkube.local.apiserver import spdy, upgrade

STREAM_PROTOCOL = "v4.channel.k8s.io"
STREAM_TYPES = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}
CLOSE, STDIN = 255, 0
OPEN_TIMEOUT = 10.0  # seconds for the client to open the streams it asked for


class SpdyChannels:
    def __init__(self, raw: upgrade.RawStream, expected: set[int]) -> None:
        self._raw = raw
        self._codec = spdy.Codec()
        self._expected = expected
        self._streams: dict[int, int] = {}  # channel -> stream id
        self._channels: dict[int, int] = {}  # stream id -> channel
        self._pending: list[spdy.Frame] = []  # frames read while waiting for the streams
        self._lock = asyncio.Lock()
        self.closed = False

    async def _write(self, data: bytes | None = None, *, reply_to: int = 0) -> None:
        async with self._lock:
            if reply_to:
                data = self._codec.syn_reply(reply_to)
            if data and not self._raw.closed:
                await self._raw.send(data)

    async def _frames(self) -> AsyncIterator[spdy.Frame]:
        while self._pending:
            yield self._pending.pop(0)
        while chunk := await self._raw.receive():
            try:
                frames = self._codec.feed(chunk)
            except spdy.ProtocolError:
                return
            for frame in frames:
                if frame.kind == spdy.PING:
                    await self._write(spdy.ping(frame.value))
                elif frame.kind == spdy.GOAWAY:
                    return
                else:
                    yield frame

    async def open(self) -> bool:
        """Answer the client's streams until every expected one is open; False if it never opens them."""

        async def until_open() -> None:
            async for frame in self._frames():
                if frame.kind == spdy.SYN_STREAM:
                    channel = STREAM_TYPES.get(frame.headers.get("streamtype", ""))
                    if channel is None:
                        await self._write(spdy.rst_stream(frame.stream_id, spdy.RST_PROTOCOL_ERROR))
                        continue
                    self._streams[channel], self._channels[frame.stream_id] = frame.stream_id, channel
                    await self._write(reply_to=frame.stream_id)
                    if self._expected <= set(self._streams):
                        return
                else:
                    self._pending.append(frame)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until_open(), OPEN_TIMEOUT)
        return self._expected <= set(self._streams)

    async def send(self, channel: int, payload: bytes) -> None:
        stream = self._streams.get(channel)
        if stream is not None and payload:
            await self._write(spdy.data(stream, payload))

    async def messages(self) -> AsyncIterator[bytes]:
        """Client data as channel-prefixed messages; a FIN on stdin is the v5 close of stdin."""
        async for frame in self._frames():
            channel = self._channels.get(frame.stream_id)
            if frame.kind == 0 and channel in (STDIN, STREAM_TYPES["resize"]):
                if frame.data:
                    yield bytes([channel]) + frame.data
                if frame.fin and channel == STDIN:
                    yield bytes([CLOSE, STDIN])
            elif frame.kind == spdy.RST_STREAM and channel == STDIN:
                yield bytes([CLOSE, STDIN])

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for channel in (STREAM_TYPES["stdout"], STREAM_TYPES["stderr"], STREAM_TYPES["error"]):
            if channel in self._streams:
                await self._write(spdy.data(self._streams[channel], fin=True))
        await self._raw.close()
