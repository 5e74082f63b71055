"""The router's HTTP/1.1 front door: plain inference requests on a lean path, every other request to aiohttp.

Owns `Connection`, the asyncio protocol of each client connection. It reads requests itself
while they are plain inference calls, and hands the connection, with every byte not yet
answered, to aiohttp's protocol (the router's `web.Application`) as soon as one is not.

A request stays on the lean path when it is exactly: an ASCII head of HTTP/1.1 with CRLF line
ends, no obsolete line folding, `POST` to one of the paths `is_hot` accepts (no query, no
percent-encoding), a single `Content-Length` of at most `max_body_bytes`, no
`Transfer-Encoding`, no `Expect`. It is then given to `handle(request, reply)`, which calls
`reply(answer)` once, now or later, on the event loop (a callback, not a coroutine: a task per
request costs more CPU than this whole module's parsing); the answer is written in one piece
with the headers aiohttp would send (`Content-Length`, `Date`, `Server`).
Anything else (health, metrics, stats, feedback, another model's name, a chunked or too large
body, a malformed head) goes to aiohttp, which answers it as it always did; from then on
aiohttp owns the connection. Why: aiohttp's server costs about 75 us of CPU per request on
this path, more than the routing itself (see `benchmarks/serving.py`).

Requests on one connection are answered in order, one at a time (pipelined requests wait in
the buffer). `Connection: close` is honoured. A head over 64 KiB is aiohttp's to refuse.

`serve()` runs it all: the listening socket, lean connections, aiohttp's application for the
rest, idle lean connections closed after aiohttp's keep-alive timeout, and on SIGTERM or SIGINT
a shutdown as `aiohttp.web.run_app` does it (the application's cleanup runs: the router's
flushes its capture buffer).

Must not: route, forward or capture (the router does); interpret bodies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import http
import logging
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

log = logging.getLogger("mlkube.serving.front")

HEAD_LIMIT = 64 * 1024
KEEPALIVE_SECONDS = 75.0  # aiohttp's keep-alive timeout
_HEAD_END = b"\r\n\r\n"
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A POST of a path without query, fragment or percent-encoding, then "name: value" lines.
_PLAIN_HEAD = re.compile(r"POST (/[^\x00-\x20?%#\x7f]*) HTTP/1\.1((?:\r\n" + _TOKEN + r":[^\r\n]*)*)").fullmatch
_SINGLE = frozenset(("content-length", "transfer-encoding", "host", "connection"))  # twice: not plain
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}


@dataclasses.dataclass(slots=True)
class Request:
    """A plain inference request: its path and its headers (lower-case names, ASCII values)."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass(slots=True)
class Answer:
    """What the router answers: status, body, and the headers besides the framing ones."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


_INTERNAL_ERROR = Answer(500, b"500 Internal Server Error\n\nServer got itself in trouble", (("Content-Type", "text/plain"),))


class Connection(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(
        self,
        *,
        handle: Callable[[Request, Callable[[Answer], None]], None],
        is_hot: Callable[[str], bool],
        fallback: Callable[[], asyncio.Protocol],
        max_body_bytes: int,
        server_software: str,
        connections: set | None = None,
    ):
        self.handle = handle
        self.is_hot = is_hot
        self.fallback = fallback
        self.max_body_bytes = max_body_bytes
        self.server_line = f"Server: {server_software}\r\n"
        self.connections = connections if connections is not None else set()
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered
        self.keep_alive = True  # the request being answered leaves the connection open
        self.closing = False
        self.handed_over = False
        self.last_active = time.monotonic()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        self.buffer += data
        if not self.busy:
            self._next()

    def eof_received(self) -> bool:
        return False  # close once the answer in progress is written

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.closing = True

    # -- requests ---------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the next complete request in the buffer, or hand the connection over."""
        buffer = self.buffer
        end = buffer.find(_HEAD_END)
        if end < 0:
            if len(buffer) > HEAD_LIMIT:
                self._hand_over()
            return
        parsed = _parse_head(buffer[:end])
        if parsed is None:
            self._hand_over()
            return
        path, headers = parsed
        length = headers.get("content-length", "")
        if (
            not length.isdigit()
            or int(length) > self.max_body_bytes
            or "transfer-encoding" in headers
            or "expect" in headers
            or not self.is_hot(path)
        ):
            self._hand_over()
            return
        start = end + len(_HEAD_END)
        stop = start + int(length)
        if len(buffer) < stop:
            return  # the rest of the body is on its way
        body = bytes(buffer[start:stop])
        del buffer[:stop]
        self.busy = True
        self.keep_alive = headers.get("connection", "").lower() != "close"
        request = Request(path, headers, body)
        try:
            self.handle(request, self._reply)
        except Exception:  # a bug in the handler: the client hears 500, as from aiohttp
            log.exception("error handling %s", request.path)
            self.keep_alive = False
            self._reply(_INTERNAL_ERROR)

    def _reply(self, answer: Answer) -> None:
        """Write the answer to the request in progress, then go on with the next one."""
        if self.closing or not self.busy:
            return  # the client left, or a second answer to one request
        keep_alive = self.keep_alive
        self.transport.write(self._response(answer, keep_alive))
        if not keep_alive:
            self.closing = True
            self.transport.close()
            return
        self.busy = False
        self.last_active = time.monotonic()
        if self.buffer:
            self.loop.call_soon(self._next_if_idle)  # not recursively: a pipelined burst would nest

    def _next_if_idle(self) -> None:
        if not self.busy and not self.closing and not self.handed_over:
            self._next()

    def _response(self, answer: Answer, keep_alive: bool) -> bytes:
        fields = "".join([f"{name}: {value}\r\n" for name, value in answer.headers])
        close = "" if keep_alive else "Connection: close\r\n"
        status, body = answer.status, answer.body
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n{fields}Content-Length: {len(body)}\r\n"
            f"{_date_line()}{self.server_line}{close}\r\n"
        )
        return head.encode("latin-1") + body

    def _hand_over(self) -> None:
        """From now on aiohttp's protocol owns this connection, starting with the unanswered bytes."""
        self.handed_over = True
        self.connections.discard(self)
        protocol = self.fallback()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            protocol.data_received(data)

    def close_if_idle(self) -> bool:
        """Close the connection unless a request is being answered; True when it was closed."""
        if self.busy or self.transport is None:
            return False
        self.closing = True
        self.transport.close()
        return True


def _parse_head(head: bytes | bytearray) -> tuple[str, dict[str, str]] | None:
    """(path, headers) of a plain HTTP/1.1 POST head, or None for anything aiohttp should judge."""
    if not head.isascii():
        return None
    plain = _PLAIN_HEAD(head.decode("ascii"))  # also: no bare CR or LF, no folding, no space before a colon
    if plain is None:
        return None
    headers: dict[str, str] = {}
    for line in plain[2].split("\r\n")[1:]:
        name, _, value = line.partition(":")
        name = name.lower()
        if name in headers:
            if name in _SINGLE:
                return None
            continue  # the first one counts, as aiohttp's request.headers.get answers
        headers[name] = value.strip(" \t")
    return plain[1], headers


_date_cache: list[Any] = [0, ""]


def _date_line() -> str:
    """The `Date` header line, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n"
    return _date_cache[1]


async def serve(
    app: web.Application,
    *,
    answer: Callable[[Request, Callable[[Answer], None]], None],
    is_lean: Callable[[str], bool],
    max_body_bytes: int,
    host: str,
    port: int,
) -> None:
    """Serve until SIGTERM or SIGINT: lean requests by `answer`, the rest by `app`; then clean up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    connections: set[Connection] = set()

    def connection() -> Connection:
        return Connection(
            handle=answer,
            is_hot=is_lean,
            fallback=runner.server,
            max_body_bytes=max_body_bytes,
            server_software=SERVER_SOFTWARE,
            connections=connections,
        )

    server = await loop.create_server(connection, host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sweeper = loop.create_task(_close_idle(connections))
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        server.close()
        deadline = loop.time() + 10
        while any(not c.close_if_idle() for c in list(connections)) and loop.time() < deadline:
            await asyncio.sleep(0.05)  # let the answers in progress be written
        await runner.cleanup()


async def _close_idle(connections: set[Connection]) -> None:
    """Close lean connections idle for KEEPALIVE_SECONDS, as aiohttp closes its own."""
    while True:
        await asyncio.sleep(KEEPALIVE_SECONDS / 5)
        now = time.monotonic()
        for c in list(connections):
            if now - c.last_active > KEEPALIVE_SECONDS:
                c.close_if_idle()
