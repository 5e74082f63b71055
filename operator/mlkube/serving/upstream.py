"""A lean HTTP/1.1 client with keep-alive connection pools, for the router's backend calls.

Why not aiohttp's client, nor asyncio streams: on this path (small JSON POSTs to a handful of
backends) their request, response and stream objects cost more CPU than the routing itself.
Here each pooled connection is an asyncio protocol that frames the response in its buffer and
resolves one future per exchange; a request is one write, its URL's request line is built once
(`benchmarks/serving.py` reports the router's CPU per request). It does only what the router
needs: `POST` (and `GET`) with a body, responses framed by Content-Length or chunked encoding,
keep-alive reuse, and one retry on a fresh connection when a pooled connection turns out to be
closed before any response byte arrived (the usual idle-timeout race; inference calls are safe
to repeat). A connection whose exchange failed, timed out or was cancelled is closed, never reused.

Must not: follow redirects, speak TLS or HTTP/2, or interpret bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse

MAX_IDLE_PER_HOST = 256
MAX_REMEMBERED_URLS = 1024
_HEADER_LIMIT = 64 * 1024


class UpstreamError(Exception):
    """The backend could not be reached or answered something that is not HTTP/1.1."""


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Stale(Exception):
    """A pooled connection was closed by the peer before it answered."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a backend, one exchange at a time."""

    def __init__(self, where: str):
        self.where = where  # host:port, for messages
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.head: tuple[int, dict[str, str], int] | None = None  # status, headers, length (-1: chunked)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        try:
            response = self._response()
        except UpstreamError as e:
            waiter.set_exception(e)
            return
        if response is not None:
            waiter.set_result(response)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if not self.buffer and self.head is None:
                waiter.set_exception(_Stale())
            else:
                waiter.set_exception(UpstreamError(f"{self.where} closed the connection mid-response"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _response(self) -> Response | None:
        """The response once the buffer holds all of it (and no more), else None."""
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _HEADER_LIMIT:
                    raise UpstreamError(f"{self.where} sent a response head over {_HEADER_LIMIT} bytes")
                return None
            status, headers = _parse_head(bytes(self.buffer[:end]), self.where)
            del self.buffer[: end + 4]
            if "content-length" in headers:
                length = headers["content-length"]
                if not length.isdigit():
                    raise UpstreamError(f"{self.where} sent Content-Length {length!r}")
                self.head = (status, headers, int(length))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                self.head = (status, headers, -1)
            else:
                raise UpstreamError(f"{self.where} sent a response without Content-Length or chunked encoding")
        status, headers, length = self.head
        if length >= 0:
            if len(self.buffer) < length:
                return None
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        else:
            complete = _dechunk(self.buffer, self.where)
            if complete is None:
                return None
            body, used = complete
            del self.buffer[:used]
        self.head = None
        return Response(status, headers, body)


class Pool:
    """Idle keep-alive connections per (host, port); safe for concurrent use on one event loop."""

    def __init__(self, *, max_idle_per_host: int = MAX_IDLE_PER_HOST):
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._starts: dict[tuple[str, str], tuple[tuple[str, int], bytes]] = {}

    async def request(
        self, method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 30.0
    ) -> Response:
        """Send one request and read the whole response; raises UpstreamError or TimeoutError."""
        start = self._starts.get((method, url))
        if start is None:
            start = self._start(method, url)
        key, request_line = start
        head = request_line + b"content-length: %d\r\n" % len(body)
        if headers:
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")
        message = head + b"\r\n" + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(loop, key, connection, message, deadline)
            except _Stale:
                break
        where = f"{key[0]}:{key[1]}"
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(lambda: _Connection(where), *key)
        except OSError as e:
            raise UpstreamError(f"cannot connect to {where}: {e.strerror or e}") from e
        try:
            return await self._exchange(loop, key, connection, message, deadline)
        except _Stale as e:
            raise UpstreamError(f"{where} closed the connection without answering") from e

    def _start(self, method: str, url: str) -> tuple[tuple[str, int], bytes]:
        """(host, port) and the request line and host header of `method url`, parsed once per URL."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UpstreamError(f"{url}: only http:// URLs are supported")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        start = ((parts.hostname, parts.port or 80), f"{method} {target} HTTP/1.1\r\nhost: {parts.netloc}\r\n".encode("latin-1"))
        if len(self._starts) >= MAX_REMEMBERED_URLS:
            self._starts.clear()  # the URLs of tables long gone
        self._starts[(method, url)] = start
        return start

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, key: tuple[str, int], connection: _Connection, message: bytes, deadline: float
    ) -> Response:
        waiter = loop.create_future()
        connection.waiter = waiter
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            connection.transport.write(message)
            response = await waiter
        except BaseException:  # failed, stale, timed out or cancelled: its state is unknown
            connection.close()
            raise
        finally:
            timer.cancel()
            connection.waiter = None
        if connection.buffer or response.headers.get("connection", "").lower() == "close":
            connection.close()  # closing, or bytes beyond the response: out of step
        else:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(connection)
            else:
                connection.close()
        return response

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _parse_head(head: bytes, where: str) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
        raise UpstreamError(f"{where} answered something that is not HTTP/1.x: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(status_line[1]), headers


def _dechunk(buffer: bytearray, where: str) -> tuple[bytes, int] | None:
    """(body, bytes used) of the chunked body at the start of `buffer`, or None while it is incomplete."""
    chunks, position = [], 0
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        try:
            size = int(bytes(buffer[position:end]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise UpstreamError(f"{where} sent a malformed chunk size") from None
        position = end + 2
        if size == 0:
            while True:  # trailer fields, ignored, up to the empty line
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    return None
                empty, position = end == position, end + 2
                if empty:
                    return b"".join(chunks), position
        if len(buffer) < position + size + 2:
            return None
        chunks.append(bytes(buffer[position : position + size]))
        position += size + 2
