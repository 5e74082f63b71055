"""A lean HTTP/1.1 client with keep-alive connection pools, for the router's backend calls.

Why not aiohttp's client, nor asyncio streams: on this path (small JSON POSTs to a handful of
backends) their request, response and stream objects cost more CPU than the routing itself.
Here each pooled connection is an asyncio protocol that frames the response in its buffer and
hands it to the exchange's callback (`Pool.send`), with no task or future per exchange; a
request is one write, its URL's request line is built once (`benchmarks/serving.py` reports the
router's CPU per request). `Pool.request` is the same exchange awaited, for callers that are
coroutines. It does only what the router needs: `POST` (and `GET`) with a body, responses framed
by Content-Length or chunked encoding, keep-alive reuse, and one retry on a fresh connection
when a pooled connection turns out to be closed before any response byte arrived (the usual
idle-timeout race; inference calls are safe to repeat). A connection whose exchange failed or
timed out is closed, never reused. Deadlines are checked every SWEEP_SECONDS while exchanges are in
flight (one timer per pool, not one per request), so a timeout fires up to that much late.

Must not: follow redirects, speak TLS or HTTP/2, or interpret bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import urllib.parse
from collections.abc import Callable

log = logging.getLogger("mlkube.serving.upstream")

MAX_IDLE_PER_HOST = 256
MAX_REMEMBERED_URLS = 1024
SWEEP_SECONDS = 0.05  # how often deadlines are checked while exchanges are in flight
_HEADER_LIMIT = 64 * 1024


class UpstreamError(Exception):
    """The backend could not be reached or answered something that is not HTTP/1.1."""


@dataclasses.dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


Outcome = Response | UpstreamError | TimeoutError
"""What an exchange ends with: the response, or why there is none."""


class _Exchange:
    """One request on its way: the bytes to send, where, until when, and whom to tell."""

    __slots__ = ("connection", "deadline", "done", "finished", "key", "message", "pool", "reused")

    def __init__(self, pool: Pool, key: tuple[str, int], message: bytes, deadline: float, done: Callable[[Outcome], None]):
        self.pool, self.key, self.message, self.deadline, self.done = pool, key, message, deadline, done
        self.connection: _Connection | None = None
        self.reused = False  # sent on a pooled connection (which the peer may have closed meanwhile)
        self.finished = False

    def finish(self, outcome: Outcome) -> None:
        """Tell the caller, once; a callback's own failure is logged, never raised into the event loop."""
        if self.finished:
            return
        self.finished = True
        del self.pool._in_flight[self]
        try:
            self.done(outcome)
        except Exception:
            log.exception("the callback of a backend exchange failed")

    def abandon(self, outcome: Outcome) -> None:
        """Finish without the response: its connection, in an unknown state, is closed."""
        connection = self.connection
        if connection is not None:
            connection.exchange = None
            connection.close()
        self.finish(outcome)


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a backend, one exchange at a time."""

    def __init__(self, where: str):
        self.where = where  # host:port, for messages
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.exchange: _Exchange | None = None
        self.head: tuple[int, dict[str, str], int] | None = None  # status, headers, length (-1: chunked)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        try:
            response = self._whole(data) if not self.buffer and self.head is None else None
            if response is None:
                self.buffer += data
                response = self._response()
        except UpstreamError as e:
            self.exchange = None
            self.close()
            exchange.finish(e)
            return
        if response is None:
            return
        self.exchange = None
        if self.buffer or response.headers.get("connection", "").lower() == "close":
            self.close()  # closing, or bytes beyond the response: out of step
        else:
            exchange.pool._release(exchange.key, self)
        exchange.finish(response)

    def _whole(self, data: bytes) -> Response | None:
        """The response when `data` is exactly one whole response framed by Content-Length (the usual
        case: one read), without copying it through the buffer; else None."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        status, headers = _parse_head(data[:end], self.where)
        length = headers.get("content-length", "")
        if not length.isdigit() or end + 4 + int(length) != len(data):
            return None
        return Response(status, headers, data[end + 4 :])

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        if not self.buffer and self.head is None:
            exchange.pool._retry(exchange, self.where)  # closed before it answered: the idle-timeout race
        else:
            exchange.finish(UpstreamError(f"{self.where} closed the connection mid-response"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _response(self) -> Response | None:
        """The response once the buffer holds all of it, else None."""
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
        self._connecting: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it serves, once known
        self._in_flight: dict[_Exchange, None] = {}  # exchanges not finished, for their deadlines
        self._sweeper: asyncio.TimerHandle | None = None

    async def request(
        self, method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 30.0
    ) -> Response:
        """Send one request and read the whole response; raises UpstreamError or TimeoutError."""
        future = asyncio.get_running_loop().create_future()

        def done(outcome: Outcome) -> None:
            if not future.done():  # not cancelled meanwhile (the exchange itself runs to its end)
                future.set_result(outcome)

        self.send(method, url, body, header_lines(headers) if headers else b"", timeout, done)
        outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def send(
        self, method: str, url: str, body: bytes, header_lines: bytes, timeout: float, done: Callable[[Outcome], None]
    ) -> None:
        """Start one exchange; `done` is called once, on the event loop, with its outcome (never from
        here). `header_lines`: the request's headers besides host and content-length, each line
        ending in CRLF."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._adopt(asyncio.get_running_loop())
        start = self._starts.get((method, url))
        if start is None:
            try:
                start = self._start(method, url)
            except UpstreamError as e:
                loop.call_soon(done, e)
                return
        key, request_line = start
        message = b"%scontent-length: %d\r\n%s\r\n%s" % (request_line, len(body), header_lines, body)
        exchange = _Exchange(self, key, message, loop.time() + timeout, done)
        self._in_flight[exchange] = None
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                exchange.reused = True
                self._write(exchange, connection)
                return
        self._connect(exchange)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """Serve `loop` from now on; what belonged to a closed loop (its connections, its timer, the
        exchanges it would have ended) is dropped."""
        self._loop, self._sweeper = loop, None
        self._idle.clear()
        self._in_flight.clear()
        return loop

    def _sweep(self) -> None:
        """Expire the exchanges past their deadline; again in SWEEP_SECONDS while any is in flight."""
        now = self._loop.time()
        for exchange in [exchange for exchange in self._in_flight if exchange.deadline <= now]:
            exchange.abandon(TimeoutError())
        self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep) if self._in_flight else None

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

    @staticmethod
    def _write(exchange: _Exchange, connection: _Connection) -> None:
        exchange.connection = connection
        connection.exchange = exchange
        connection.transport.write(exchange.message)

    def _connect(self, exchange: _Exchange) -> None:
        task = asyncio.get_running_loop().create_task(self._open(exchange))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _open(self, exchange: _Exchange) -> None:
        where = f"{exchange.key[0]}:{exchange.key[1]}"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(exchange.deadline):
                _, connection = await loop.create_connection(lambda: _Connection(where), *exchange.key)
        except OSError as e:
            exchange.finish(UpstreamError(f"cannot connect to {where}: {e.strerror or e}"))
            return
        except TimeoutError:
            exchange.finish(TimeoutError())
            return
        if exchange.finished:  # timed out meanwhile
            connection.close()
            return
        self._write(exchange, connection)

    def _retry(self, exchange: _Exchange, where: str) -> None:
        """A connection closed before any byte of its answer: once more on a fresh one, unless it was fresh."""
        if exchange.reused:
            exchange.reused, exchange.connection = False, None
            self._connect(exchange)
        else:
            exchange.finish(UpstreamError(f"{where} closed the connection without answering"))

    def _release(self, key: tuple[str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self.max_idle_per_host:
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        for task in self._connecting:
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for exchange in list(self._in_flight):
            exchange.abandon(UpstreamError("the client pool was closed before the backend answered"))


def header_lines(headers: dict[str, str]) -> bytes:
    """`headers` as `Pool.send` takes them: one `name: value` line each, ending in CRLF."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers.items()]).encode("latin-1")


def _parse_head(head: bytes, where: str) -> tuple[int, dict[str, str]]:
    status_line, _, fields = head.decode("latin-1").partition("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise UpstreamError(f"{where} answered something that is not HTTP/1.x: {status_line[:80]!r}")
    headers = {}
    for line in fields.split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return int(code), headers


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
